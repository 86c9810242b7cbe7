"""Check your answers in a student copy of a lesson, without nbgrader: how did each exercise do?

    python -m vae_helpers.check_exercises exercises/05_autoencoder_vs_vae.ipynb [--timeout SECONDS]

It runs the saved notebook top to bottom in a fresh kernel, as "Restart and run all" would, but carries
on after an error, so that every exercise gets its turn; the file itself is not changed. Then it prints
one line per exercise:

    Exercise 1 (warm-up): Rarer heads-heavy coins — passed
    Exercise 2 (warm-up): Two experiments, one posterior — failed: bayes_update is not Bayes' rule ...
    Exercise 3 (core): The linear-Gaussian posterior and evidence in code — not attempted

``passed``: the exercise's check cell ran without error. ``failed``: the check raised (an assert's
message, or the assert itself where it has none), or your solution cell raised something other than the
stub's error. ``not attempted``: the solution cell still raises the stub's ``NotImplementedError``. An
error in a cell of the lesson itself (not an exercise) is reported as such, where it happened, since the
exercises after it may fail because of it. A summary line counts the exercises and points passed (points
1, 2, 3 for warm-up, core, challenge, as nbgrader grades them).

Exit status: 0 when every exercise passed and no cell of the lesson raised, 1 otherwise, 2 when the
file cannot be checked (missing, not a notebook, or not a student copy).

Save the notebook first: the checker runs the file as it is on disk. An exercise is a markdown cell
``### Exercise N (level): title``, the cell you write your answer in (nbgrader's answer cell, tagged
``exercise``), and the check cell after it (nbgrader's test cell, tagged ``check``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Kept light on purpose: nbformat and nbclient are imported when a notebook is checked, not with the package.

HEADING = re.compile(r"### Exercise (\d+) \(([a-z-]+)\)\s*:\s*(.+)")
#: an exercise's points when graded, by its level (the student copies' nbgrader metadata; used here where a
#: cell has none)
POINTS = {"warm-up": 1, "core": 2, "challenge": 3}
STUB_ERROR = "NotImplementedError"
ANSWER_TAG, CHECK_TAG, SOLUTION_TAG = "exercise", "check", "solution"
WORKED_SOLUTION = "# Worked solution"
#: what the kernels get in their environment: the training helpers' progress bars off
KERNEL_ENV = {"VAE_PROGRESS": "0"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NotAStudentCopy(ValueError):
    """The file given to the checker is missing, not a notebook, or not a student copy of a lesson."""


@dataclass
class Exercise:
    """One exercise of a student copy: its heading, its points, and its answer and check cells (indices)."""
    number: int
    level: str
    title: str
    points: float
    answer: int
    check: int


@dataclass
class Result:
    exercise: Exercise
    status: str            # "passed", "failed", "not attempted" or "not run"
    message: str = ""

    def line(self) -> str:
        e = self.exercise
        return f"Exercise {e.number} ({e.level}): {e.title} — {self.status}" + (f": {self.message}" if self.message else "")


@dataclass
class Report:
    path: Path
    results: list[Result]
    lesson_errors: list[tuple[int, str]] = field(default_factory=list)  # (cell index, what it raised)
    stopped: str = ""      # why the run ended before the last cell, if it did

    @property
    def ok(self) -> bool:
        return all(r.status == "passed" for r in self.results) and not self.lesson_errors and not self.stopped

    def lines(self) -> list[str]:
        """The report: exercises and errors of the lesson's own cells in notebook order, then the summary."""
        events = [(r.exercise.answer, r.line()) for r in self.results]
        events += [(i, f"Cell {i + 1} (part of the lesson, not an exercise) raised {error}; "
                       f"the exercises after it may fail because of it") for i, error in self.lesson_errors]
        out = [text for _, text in sorted(events, key=lambda event: event[0])]
        if self.stopped:
            out.append(f"The run stopped early: {self.stopped}")
        passed = [r for r in self.results if r.status == "passed"]
        got, total = sum(r.exercise.points for r in passed), sum(r.exercise.points for r in self.results)
        counts = ", ".join(f"{n} {status}" for status in ("failed", "not attempted", "not run")
                           if (n := sum(r.status == status for r in self.results)))
        out.append(f"{self.path.name}: {len(passed)} of {len(self.results)} exercises passed "
                   f"({got:g} of {total:g} points)" + (f"; {counts}" if counts else ""))
        return out


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_answer(cell) -> bool:
    return cell.get("cell_type") == "code" and (_nbgrader(cell).get("solution", False) or ANSWER_TAG in _tags(cell))


def _is_check(cell) -> bool:
    return cell.get("cell_type") == "code" and (_nbgrader(cell).get("grade", False) or CHECK_TAG in _tags(cell))


def read_student_copy(path):
    """The notebook at ``path`` and its exercises; raises NotAStudentCopy, naming the path, if it is not one."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise NotAStudentCopy(f"{path}: no such file (give the path of a student copy, "
                              f"e.g. exercises/05_autoencoder_vs_vae.ipynb)")
    if path.suffix != ".ipynb":
        raise NotAStudentCopy(f"{path}: not a notebook (.ipynb file)")
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise NotAStudentCopy(f"{path}: cannot be read as a notebook ({error})") from None
    found = []
    for i, cell in enumerate(nb.cells[:-1]):
        heading = HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if not heading or not _is_answer(nb.cells[i + 1]):
            continue
        check = next((j for j in range(i + 2, min(i + 3, len(nb.cells))) if _is_check(nb.cells[j])), None)
        if check is None:
            raise NotAStudentCopy(f"{path}, cell {i + 2}: exercise {heading.group(1)}'s answer cell is not followed "
                                  f"by its check cell (was it deleted or moved?)")
        level = heading.group(2)
        points = _nbgrader(nb.cells[check]).get("points", POINTS.get(level, 1))
        found.append(Exercise(int(heading.group(1)), level, heading.group(3).strip(), points, i + 1, check))
    if not found:
        raise NotAStudentCopy(f"{path}: no exercises found (a markdown cell '### Exercise N (level): title', "
                              f"an answer cell and a check cell); is it a student copy from exercises/?")
    lesson = [e for e in found if SOLUTION_TAG in _tags(nb.cells[e.answer])
              and nb.cells[e.answer].source.startswith(WORKED_SOLUTION)]
    if len(lesson) == len(found):
        raise NotAStudentCopy(f"{path}: this is a lesson with its worked solutions, not a student copy; "
                              f"check your copy, exercises/{path.name}")
    return nb, found


def _error(cell) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _failing_line(error: dict) -> str:
    """The last line a traceback points at (``----> 3 assert ...``), without its colours."""
    lines = [ANSI.sub("", line) for frame in error.get("traceback", []) for line in frame.splitlines()]
    marked = [m.group(1).strip() for line in lines if (m := re.match(r"\s*-+>\s*\d+\s+(.*)", line))]
    return marked[-1] if marked else "(the assert's line is not in the traceback)"


def _describe(error: dict) -> str:
    message = error.get("evalue", "").strip()
    if error.get("ename") == "AssertionError":
        return message or f"this assert failed: {_failing_line(error)}"
    return f"{error.get('ename')}: {message}" if message else error.get("ename", "an error")


def judge(nb, exercises: list[Exercise], path, stopped: str = "", ran=None) -> Report:
    """The report on an executed notebook ``nb``; ``ran``: the indices of the cells that were run (default all)."""
    places = {i for e in exercises for i in (e.answer, e.check)}
    ran = set(range(len(nb.cells))) if ran is None else ran
    results = []
    for e in exercises:
        answer, check = _error(nb.cells[e.answer]), _error(nb.cells[e.check])
        if e.check not in ran:
            results.append(Result(e, "not run", "the run stopped before its check"))
        elif answer and answer.get("ename") == STUB_ERROR:
            results.append(Result(e, "not attempted"))
        elif answer:
            results.append(Result(e, "failed", f"your solution raised {_describe(answer)}"))
        elif check:
            results.append(Result(e, "failed", _describe(check)))
        else:
            results.append(Result(e, "passed"))
    lesson_errors = [(i, _describe(_error(cell))) for i, cell in enumerate(nb.cells)
                     if i not in places and cell.cell_type == "code" and _error(cell)]
    return Report(Path(path), results, lesson_errors, stopped)


def check_notebook(path, timeout: int = 1800) -> Report:
    """Run the student copy at ``path`` in a fresh kernel, carrying on after errors, and judge each exercise.

    ``timeout``: seconds any one cell may take. The file on disk is not changed.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise ValueError(f"timeout must be a whole number of seconds >= 1, got {timeout!r}")
    nb, exercises = read_student_copy(path)
    for cell in nb.cells:  # what is left from the student's own runs must not count
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    ran: set[int] = set()
    stopped = ""
    # local sockets (IPC) rather than TCP, as tools/run_notebooks.py runs the lessons
    with tempfile.TemporaryDirectory() as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
        client = NotebookClient(nb, config=config, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(Path(path).resolve().parent)}},
                                on_cell_start=lambda cell, cell_index: ran.add(cell_index))
        try:
            client.execute(env={**os.environ, **KERNEL_ENV})
        except CellTimeoutError:
            stopped = f"cell {max(ran) + 1} ran longer than {timeout} s (see --timeout)"
        except DeadKernelError:
            stopped = f"the kernel died in cell {max(ran) + 1} (out of memory?)"
    if stopped:  # the cell that stopped the run did not finish
        ran.discard(max(ran))
    return judge(nb, exercises, path, stopped, ran)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_helpers.check_exercises",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path, help="your student copy, e.g. exercises/05_autoencoder_vs_vae.ipynb")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds any one cell may take (default 1800)")
    args = parser.parse_args(argv)
    if args.timeout < 1:
        parser.error(f"--timeout must be at least 1 second, got {args.timeout}")
    try:
        read_student_copy(args.notebook)  # fail fast, before a kernel starts
    except NotAStudentCopy as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Running {args.notebook} top to bottom in a fresh kernel ...", flush=True)
    report = check_notebook(args.notebook, timeout=args.timeout)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
