"""Execute the course's notebooks in place, top to bottom in a fresh kernel each, and print their times.

    python tools/run_notebooks.py [notebooks/01_bayes_rule.ipynb ...]   (default: every notebooks/NN_*.ipynb)

It names each notebook as it starts it (``[3/9] 03_elbo.ipynb ...``) and prints its time when it ends, then
the total. Before it runs a notebook it gives it its Colab link and install cell (``tools/colab.py``), so that
the committed notebook's execution counts run in order from that cell on.

The kernels run with ``VAE_PROGRESS=0`` in their environment, which turns off the progress bar that
``vae_helpers.fit`` shows a learner running a lesson live: the committed notebooks show results, not bars.
As a second guard, any line of stderr output that looks like a progress bar (a carriage return, and ``it/s``,
``s/it`` or ``%|``) is removed from the executed cells.
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
#: the kernels' environment: the parent's, with the training helpers' progress bars off
KERNEL_ENV = {"VAE_PROGRESS": "0"}
#: what a progress bar's line holds besides the carriage returns it is redrawn with: a rate, or the bar itself
PROGRESS_MARKS = ("it/s", "s/it", "%|")


def drop_figure_reprs(nb) -> None:
    """Remove the '<Figure size ...>' text that matplotlib stores beside each figure's PNG.

    Viewers that cannot show the image would print that text instead; the image is what a reader needs.
    """
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data and str(data.get("text/plain", "")).startswith("<Figure size"):
                del data["text/plain"]


def is_progress_bar(line: str) -> bool:
    return "\r" in line and any(mark in line for mark in PROGRESS_MARKS)


def drop_progress_bars(nb) -> None:
    """Remove the lines of stderr output that look like progress bars, and any stderr output left empty.

    A bar redraws itself with carriage returns, so all its states up to the next newline are one line here.
    """
    for cell in nb.cells:
        if "outputs" not in cell:
            continue
        kept = []
        for out in cell.outputs:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "\n".join(line for line in out.text.split("\n") if not is_progress_bar(line))
                if not text.strip():
                    continue
                out.text = text
            kept.append(out)
        cell.outputs = kept


def execute(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    add_colab(nb, path)
    start = time.perf_counter()
    # the kernel talks over local sockets (IPC), not TCP, so it has no reason to print a security warning
    with tempfile.TemporaryDirectory() as sockets:
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
        NotebookClient(nb, config=ipc, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute(env={**os.environ, **KERNEL_ENV})
    seconds = time.perf_counter() - start
    drop_figure_reprs(nb)
    drop_progress_bars(nb)
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    total = 0.0
    for number, path in enumerate(paths, 1):
        # named as it starts, so that a long or failing lesson is known before it ends
        print(f"{f'[{number}/{len(paths)}] {path.name} ...':<48} ", end="", flush=True)
        seconds = execute(path)
        total += seconds
        print(f"{seconds:6.1f} s", flush=True)
    print(f"{'total':<48} {total:6.1f} s ({len(paths)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
