"""environment.yml (the conda route) lists the same packages, with the same lower bounds, as pyproject.toml."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"torch": "pytorch"}            # where conda-forge's name differs from PyPI's
NOT_ON_CONDA_FORGE = {"sphinx-mathjax-offline", "sphinx-revealjs", "jupyterlab-rise"}  # from the `pip:` section
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)\s*(.*)$")


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    return {m.group(1).lower(): m.group(2).replace(" ", "") for m in map(REQUIREMENT.match, wanted)}


def conda_requirements() -> tuple[dict[str, str], dict[str, str]]:
    """(conda packages, pip packages) of environment.yml, each {name: version bound}."""
    conda, pip, in_pip = {}, {}, False
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("\ndependencies:"):].splitlines():  # the channels are not packages
        item = re.match(r"^(\s*)- (.+?)\s*$", line)
        if not item or line.lstrip().startswith("#"):
            continue
        indent, text = len(item.group(1)), item.group(2)
        if text == "pip:":
            in_pip = True
            continue
        if indent <= 2:
            in_pip = False
        if text.startswith("-e ") or text in ("pip",) or text.startswith("python="):
            continue
        name, bound = REQUIREMENT.match(text).groups()
        (pip if in_pip else conda)[name.lower()] = bound.replace(" ", "")
    return conda, pip


def test_conda_and_pip_list_the_same_packages_with_the_same_bounds():
    wanted = {CONDA_NAMES.get(name, name): bound for name, bound in pip_requirements().items()}
    conda, pip = conda_requirements()
    listed = {**conda, **pip}
    missing = sorted(set(wanted) - set(listed))
    extra = sorted(set(listed) - set(wanted))
    assert not missing and not extra, f"environment.yml lacks {missing} and has {extra} beyond pyproject.toml"
    differ = {name: (wanted[name], listed[name]) for name in wanted if wanted[name] != listed[name]}
    assert not differ, f"version bounds differ (pyproject.toml, environment.yml): {differ}"


def test_only_packages_conda_forge_lacks_come_from_pip():
    _, pip = conda_requirements()
    assert set(pip) == NOT_ON_CONDA_FORGE, f"environment.yml's pip: section should hold exactly {NOT_ON_CONDA_FORGE}"
