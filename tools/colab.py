"""Give every notebook an "Open in Colab" link and a first code cell that installs the package on Colab.

    python tools/colab.py [notebooks/01_bayes_rule.ipynb ...]   (default: every notebooks/NN_*.ipynb)

The repository's address is kept in one place, ``[project.urls] Repository`` in pyproject.toml; the
link opens ``<that repository>/blob/main/<the notebook's path>`` on Colab. The install cell does
nothing outside Colab, so a notebook runs the same under ``make course``, ``make test`` and JupyterLab.
Running this twice changes nothing the second time. ``tools/run_notebooks.py`` runs it before it
executes a notebook, so the execution counts stay in order.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "main"
COLAB = "https://colab.research.google.com/github"
LINK_TEXT = "Open in Colab"
LINK = re.compile(r"\[" + re.escape(LINK_TEXT) + r"\]\(" + re.escape(COLAB) + r"/[^)\s]*\)")
#: The tag that marks the install cell, so that it is updated in place rather than added twice.
INSTALL_TAG = "colab-install"
#: What Colab already has of our dependencies (the Jupyter ones it replaces with its own, and JupyterLab's
#: slide extension, which Colab's own interface does not use).
ON_COLAB_ALREADY = {"torch", "torchvision", "seaborn", "pandas", "scikit-learn", "tqdm",
                    "jupyterlab", "jupyterlab-rise", "ipykernel", "nbclient", "nbformat"}


def project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def repository_url() -> str:
    """``https://github.com/OWNER/NAME`` from ``[project.urls] Repository`` in pyproject.toml."""
    url = project().get("urls", {}).get("Repository", "")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"pyproject.toml: [project.urls] Repository must be https://github.com/OWNER/NAME, got {url!r}")
    return url


def colab_url(path: Path) -> str:
    """The Colab address that opens ``path`` (a file in this repository) from the repository's main branch."""
    relative = Path(path).resolve().relative_to(ROOT).as_posix()
    return f"{COLAB}/{repository_url().removeprefix('https://github.com/')}/blob/{BRANCH}/{relative}"


def install_source() -> str:
    """The install cell: on Colab, what Colab lacks of our dependencies, then this package without its dependencies."""
    missing = [dep for dep in project()["dependencies"]
               if re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower() not in ON_COLAB_ALREADY]
    lines = ["# Runs only on Colab: installs the course's helper package there.",
             "import sys",
             "",
             'if "google.colab" in sys.modules:']
    if missing:
        lines.append("    %pip install -q " + " ".join(f'"{dep}"' for dep in missing))
    lines.append(f'    %pip install -q --no-deps "{project()["name"]} @ git+{repository_url()}"')
    return "\n".join(lines)


def link_line(url: str) -> str:
    return f"[{LINK_TEXT}]({url})"


def set_colab_link(source: str, url: str) -> str:
    """``source`` (a markdown cell opening with ``# title``) with the Colab link to ``url`` under its title."""
    if LINK.search(source):
        return LINK.sub(lambda _: link_line(url), source, count=1)
    title, _, rest = source.partition("\n")
    return f"{title}\n\n{link_line(url)}\n\n{rest.lstrip(chr(10))}".rstrip("\n")


def add_colab(nb: nbformat.NotebookNode, path: Path) -> bool:
    """Add or update, in ``nb`` (read from ``path``), the Colab link and the install cell; True if it changed.

    The link goes under the title of the first cell, which must be a markdown cell opening with ``# ``;
    the install cell becomes the first code cell.
    """
    cells = nb.cells
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.startswith("# "):
        raise ValueError(f"{path}: the first cell must be a markdown cell opening with the title '# NN · Title'")
    before = nbformat.writes(nb)
    cells[0].source = set_colab_link(cells[0].source, colab_url(path))

    install = [c for c in cells if INSTALL_TAG in c.get("metadata", {}).get("tags", [])]
    if len(install) > 1:
        raise ValueError(f"{path}: {len(install)} cells are tagged {INSTALL_TAG!r}, expected at most one")
    if install:
        cell = install[0]
        cells.remove(cell)
        if cell.source != install_source():
            cell.source, cell.outputs, cell.execution_count = install_source(), [], None
    else:
        cell = nbformat.v4.new_code_cell(install_source(), metadata={"tags": [INSTALL_TAG]})
        if "id" not in cells[0]:  # notebooks older than nbformat 4.5 have no cell ids
            del cell["id"]
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    cells.insert(first_code, cell)
    return nbformat.writes(nb) != before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if add_colab(nb, path):
            nbformat.write(nb, path)
            print(f"{path.name}: Colab link and install cell updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
