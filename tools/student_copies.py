"""Write the student copies of the lessons: each worked solution replaced by a stub for the student to fill in.

    python tools/student_copies.py            (every notebooks/NN_*.ipynb -> exercises/NN_*.ipynb)

An exercise in a lesson is three cells in a row:

- a markdown cell opening with ``### Exercise N (level): title``, level one of warm-up, core or challenge,
  that states the task and exactly what to produce (names, shapes, units);
- a code cell tagged ``solution`` whose first line is ``# Worked solution``, with no ``assert`` in it;
- a code cell tagged ``check`` whose first line is ``# Check``: the asserts that compare the answer
  with reference values.

In the student copy the solution becomes a stub that names the exercise and stops a run there with
``NotImplementedError``; the check cell stays as it is, without its outputs, so every check of the worked
solution is there for the student to pass. Every other cell, with its output, is the lesson's; the first
cell also says where the solutions are, and its Colab link opens the student copy. The copies are a pure function of the lessons, so
``tests/test_student_copies.py`` can tell when the committed ones are stale.
"""
from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from colab import LINK, colab_url, link_line

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "notebooks"
EXERCISES = ROOT / "exercises"
SOLUTION_TAG = "solution"
SOLUTION_FIRST_LINE = "# Worked solution"
CHECK_TAG = "check"
CHECK_FIRST_LINE = "# Check"
STUB_TAG = "exercise"
LEVELS = ("warm-up", "core", "challenge")
EXERCISE_HEADING = re.compile(r"### Exercise (\d+)(?: \(([a-z-]+)\))?\s*:\s*(.+)")  # the level is checked below


def lessons() -> list[Path]:
    """The lessons, in reading order: ``notebooks/NN_*.ipynb``."""
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def tagged(cell, tag: str) -> bool:
    return cell.cell_type == "code" and tag in cell.get("metadata", {}).get("tags", [])


def is_solution(cell) -> bool:
    return tagged(cell, SOLUTION_TAG)


def is_check(cell) -> bool:
    return tagged(cell, CHECK_TAG)


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lesson: its number, level and title, and the indices of its three cells."""
    number: int
    level: str
    title: str
    task: int
    solution: int
    check: int


def asserts_in(source: str) -> int:
    """How many ``assert`` statements ``source`` holds, at any depth (0 where it is not plain Python)."""
    try:
        return sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(source)))
    except SyntaxError:
        return 0


def exercises(nb, name: str = "notebook") -> list[Exercise]:
    """The exercises of a lesson, in order, checking the convention.

    Raises ValueError, naming the notebook and the cell, where a solution cell does not follow an exercise
    heading, an exercise heading names no level or is not followed by a solution cell, a solution does not
    open with ``# Worked solution``, holds an ``assert`` or is not followed by a check cell, or a check
    cell does not follow a solution or open with ``# Check``.
    """
    found = []
    for i, cell in enumerate(nb.cells):
        heading = EXERCISE_HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            if after is None or not is_solution(after):
                raise ValueError(f"{name}, cell {i} ({heading.group(0)!r}): the cell after an exercise heading must be "
                                 f"a code cell tagged {SOLUTION_TAG!r}")
            level = heading.group(2)
            if level not in LEVELS:
                raise ValueError(f"{name}, cell {i} ({heading.group(0)!r}): the heading must name the exercise's level, "
                                 f"'### Exercise N (level): title' with level one of {', '.join(LEVELS)}")
            if i + 2 >= len(nb.cells) or not is_check(nb.cells[i + 2]):
                raise ValueError(f"{name}, cell {i + 1}: a solution must be followed by a code cell tagged "
                                 f"{CHECK_TAG!r} that holds its checks")
            check = i + 2
            if asserts_in(after.source):
                raise ValueError(f"{name}, cell {i + 1}: a solution keeps every assert in its check cell, so that the "
                                 f"student copy has them all")
            found.append(Exercise(int(heading.group(1)), level, heading.group(3).strip(), i, i + 1, check))
        elif is_solution(cell):
            previous = nb.cells[i - 1] if i > 0 else None
            if previous is None or previous.cell_type != "markdown" or not EXERCISE_HEADING.match(previous.source):
                raise ValueError(f"{name}, cell {i}: a cell tagged {SOLUTION_TAG!r} must follow a markdown cell "
                                 f"opening with '### Exercise N (level): title'")
        elif is_check(cell):
            if i == 0 or not is_solution(nb.cells[i - 1]):
                raise ValueError(f"{name}, cell {i}: a cell tagged {CHECK_TAG!r} must follow a solution cell")
            if not cell.source.startswith(CHECK_FIRST_LINE):
                raise ValueError(f"{name}, cell {i}: a check cell must open with {CHECK_FIRST_LINE!r}")
        if is_solution(cell) and not cell.source.startswith(SOLUTION_FIRST_LINE):
            raise ValueError(f"{name}, cell {i}: a solution cell must open with {SOLUTION_FIRST_LINE!r}, "
                             f"found {cell.source.splitlines()[0] if cell.source else ''!r}")
    return found


def stub(number: int, title: str) -> str:
    """The student's version of a solution cell."""
    return "\n".join([f"# Exercise {number}: {title}",
                      "# Your solution goes here, in place of the `raise` line (the task is in the cell above; "
                      "the cell below checks your answer).",
                      f'raise NotImplementedError("Exercise {number}: write your solution in this cell")'])


def student_copy(nb, lesson: Path):
    """The student copy of the lesson ``nb``, read from ``lesson``; ``nb`` itself is left as it is."""
    name = lesson.name
    found = exercises(nb, name)
    if not found:
        raise ValueError(f"{name}: no exercise found (a markdown cell '### Exercise N (level): title' followed by a "
                         f"code cell tagged {SOLUTION_TAG!r})")
    student = copy.deepcopy(nb)
    for exercise in found:
        cell = student.cells[exercise.solution]
        cell.source = stub(exercise.number, exercise.title)
        cell.outputs, cell.execution_count = [], None
        cell.metadata["tags"] = [STUB_TAG if t == SOLUTION_TAG else t for t in cell.metadata["tags"]]
        check = student.cells[exercise.check]  # its outputs were the worked solution's
        check.outputs, check.execution_count = [], None
    first = student.cells[0]
    if first.cell_type != "markdown" or not first.source.startswith("# "):
        raise ValueError(f"{name}: the first cell must be a markdown cell opening with the title '# NN · Title'")
    target = EXERCISES / name
    note = (f"*Student copy: each exercise's worked solution is replaced by a stub for you to fill in; "
            f"the check cell after it tells you when your answer is right. "
            f"The lesson with the solutions is [`notebooks/{name}`](../notebooks/{name}).*")
    title, _, rest = first.source.partition("\n")
    if LINK.search(rest):
        rest = LINK.sub(lambda _: link_line(colab_url(target)), rest, count=1)
    first.source = f"{title}\n\n{note}\n\n{rest.lstrip(chr(10))}".rstrip("\n")
    return student


def render(lesson: Path) -> str:
    """The student copy of ``lesson`` as the text of an .ipynb file."""
    return nbformat.writes(student_copy(nbformat.read(lesson, as_version=4), lesson)) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    paths = lessons()
    if not paths:
        print(f"no lessons found in {LESSONS}", file=sys.stderr)
        return 1
    EXERCISES.mkdir(exist_ok=True)
    failed = []
    for path in paths:
        target = EXERCISES / path.name
        try:
            text = render(path)
        except ValueError as error:  # report every lesson that breaks the convention, not only the first
            failed.append(str(error))
            continue
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"{target.relative_to(ROOT)} written")
    for orphan in sorted(set(EXERCISES.glob("*.ipynb")) - {EXERCISES / p.name for p in paths}):
        orphan.unlink()
        print(f"{orphan.relative_to(ROOT)} removed: its lesson is gone")
    print(f"student copies: {len(paths) - len(failed)} in {EXERCISES.relative_to(ROOT)}/")
    for error in failed:
        print(f"no student copy: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
