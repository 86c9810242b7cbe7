"""How much of each helper module is the idea a lesson teaches, and how much is checks and plumbing.

    python tools/idea_share.py [vae_helpers/models.py ...]   (default: every module of vae_helpers)

A rough, mechanical count of non-blank lines, imports left out: a line is a *check* if it belongs to a
``raise``, to an ``if`` whose only statement raises, to a call of a ``checks.`` helper or of a
``_check*``/``check*`` function, or to the body of such a function; *plumbing* if it belongs to one of the
functions or classes named in PLUMBING; the rest, docstrings of the math included, is the *idea*. A reader
who also counts device moves, evaluation-mode bookkeeping or batching as plumbing gets lower shares.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: functions and classes that exist for Lightning, caching, files or logging rather than for the idea
PLUMBING = {"on_save_checkpoint", "on_load_checkpoint", "_mismatch_message", "_describe", "quiet", "HistoryLogger",
            "_cache_key", "default_cache_dir", "_log_epoch_means", "_terms", "_non_finite_message", "TermMeans",
            "ReseedEachEpoch", "ProgressBar", "_nvml_loads", "without_failed_nvml_check", "_md5",
            "_md5_of_version", "_missing_data_message", "mnist_problems",
            # names of plumbing that earlier versions of the package had, so that old and new count alike
            "_NoProfiler", "__setattr__", "_cuda_check_without_failed_nvml"}


def classify(source: str) -> dict[str, int]:
    tree, kind = ast.parse(source), {}

    def mark(node, label):
        for line in range(node.lineno, node.end_lineno + 1):
            kind.setdefault(line, label)

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for line in range(node.lineno, node.end_lineno + 1):
                kind[line] = "import"
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            if node.name.startswith(("_check", "check")):
                mark(node, "check")
            elif node.name in PLUMBING:
                mark(node, "plumbing")
        elif isinstance(node, ast.Raise):
            mark(node, "check")
        elif isinstance(node, ast.If) and len(node.body) == 1 and isinstance(node.body[0], ast.Raise) and not node.orelse:
            mark(node, "check")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            if ast.unparse(node.value.func).startswith(("checks.", "_check", "self.check_")):
                mark(node, "check")
    counts = {"idea": 0, "check": 0, "plumbing": 0}
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip() and kind.get(number) != "import":
            counts[kind.get(number, "idea")] += 1
    return counts


def main(paths: list[str]) -> None:
    files = [Path(p) for p in paths] or sorted((ROOT / "vae_helpers").glob("[!_]*.py"))
    for path in files:
        counts = classify(path.read_text())
        total = sum(counts.values())
        print(f"{path.name:20s} {total:4d} lines   idea {counts['idea'] / total:4.0%}   checks {counts['check']:3d}   "
              f"plumbing {counts['plumbing']:3d}")


if __name__ == "__main__":
    main(sys.argv[1:])
