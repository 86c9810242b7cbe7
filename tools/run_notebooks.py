"""Execute the course's notebooks in place, top to bottom in a fresh kernel each, and print their times.

    python tools/run_notebooks.py [notebooks/01_bayes_rule.ipynb ...]   (default: every notebooks/NN_*.ipynb)

Before it runs a notebook it gives it its Colab link and install cell (``tools/colab.py``), so that the
committed notebook's execution counts run in order from that cell on.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

from colab import add_colab

ROOT = Path(__file__).resolve().parent.parent


def drop_figure_reprs(nb) -> None:
    """Remove the '<Figure size ...>' text that matplotlib stores beside each figure's PNG.

    Viewers that cannot show the image would print that text instead; the image is what a reader needs.
    """
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data and str(data.get("text/plain", "")).startswith("<Figure size"):
                del data["text/plain"]


def execute(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    add_colab(nb, path)
    start = time.perf_counter()
    # the kernel talks over local sockets (IPC), not TCP, so it has no reason to print a security warning
    with tempfile.TemporaryDirectory() as sockets:
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
        NotebookClient(nb, config=ipc, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    drop_figure_reprs(nb)
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    total = 0.0
    for path in paths:
        print(f"{path.name:<40} ", end="", flush=True)
        seconds = execute(path)
        total += seconds
        print(f"{seconds:6.1f} s")
    print(f"{'total':<40} {total:6.1f} s ({len(paths)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
