"""Build the course's website from the executed notebooks: build/site/index.html.

    python tools/build_site.py [--fresh]

The Sphinx source is ``site/`` (configuration, landing page, style). It is copied, with every
``notebooks/NN_*.ipynb`` as it is committed (executed, outputs included), into ``build/site_src``, and
Sphinx (myst-nb, sphinx-book-theme) builds ``build/site`` from there. Copies keep their modification
times, so a second build rereads only what changed. The notebooks are not executed here: run
``make course`` (or ``tools/run_notebooks.py``) first to refresh their outputs. Each chapter's slide deck is
built too (``tools/slides.py``, only the stale ones), into ``build/site/slides/``, which each chapter's page
and the landing page link to.
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import time
from pathlib import Path

import slides

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "site"
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
STAGE = BUILD / "site_src"
SITE = BUILD / "site"
DOCTREES = BUILD / "site_doctrees"


def chapters() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _sync(pairs: dict[Path, Path], folder: Path, keep: set[Path] = frozenset()) -> None:
    """Make ``folder`` hold exactly the files ``pairs`` maps to (copied from their sources) and ``keep``."""
    for source, target in pairs.items():
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    wanted = set(pairs.values()) | set(keep)
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def stage() -> list[Path]:
    """Copy the site's source and the notebooks into ``build/site_src``; returns the staged chapters."""
    if not (SOURCE / "conf.py").exists():
        raise FileNotFoundError(f"{SOURCE / 'conf.py'} is missing: the site's source folder is site/")
    found = chapters()
    if not found:
        raise FileNotFoundError(f"no notebooks/NN_*.ipynb found in {NOTEBOOKS}: the site has no chapters")
    pairs = {p: STAGE / p.relative_to(SOURCE) for p in SOURCE.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    pairs |= {p: STAGE / "notebooks" / p.name for p in found}
    STAGE.mkdir(parents=True, exist_ok=True)
    _sync(pairs, STAGE)
    return [STAGE / "notebooks" / p.name for p in found]


def build(fresh: bool = False, quiet: bool = False) -> Path:
    """Stage and build the site; returns the path of its landing page. Raises RuntimeError if Sphinx fails."""
    stage()
    if fresh:
        shutil.rmtree(SITE, ignore_errors=True)
        shutil.rmtree(DOCTREES, ignore_errors=True)
    # -a writes every page, so each page's sidebar and next/previous links follow the current chapters
    # (sources that did not change are not read again).
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-a", "-q", "-d", str(DOCTREES), str(STAGE), str(SITE)]
    result = subprocess.run(command, cwd=ROOT, capture_output=quiet, text=True)
    if result.returncode != 0:
        details = f"\n{result.stdout}\n{result.stderr}" if quiet else ""
        raise RuntimeError(f"sphinx-build failed with exit status {result.returncode}{details}")
    current = {f"{p.stem}.html" for p in chapters()}
    for page in (SITE / "notebooks").glob("*.html"):
        if page.name not in current:  # the page of a notebook that is gone
            page.unlink()
    slides.build(fresh=fresh, quiet=quiet)
    return SITE / "index.html"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="rebuild every page, not only what changed")
    args = parser.parse_args()
    start = time.perf_counter()
    index = build(fresh=args.fresh)
    print(f"site built in {time.perf_counter() - start:.1f} s ({len(chapters())} chapters, each with its slides)")
    print(f"open it in a browser: {index.relative_to(ROOT)}  (file://{index})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
