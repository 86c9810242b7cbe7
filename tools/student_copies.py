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
EXERCISE_HEADING = re.compile(r"### Exercise (\d+)(?: \(([a-z-]+)\))?\s*:\s*(.+)")


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
    level: str | None
    title: str
    task: int
    solution: int
    check: int | None


def asserts_in(source: str) -> int:
    """How many ``assert`` statements ``source`` holds, at any depth (0 where it is not plain Python)."""
    try:
        return sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(source)))
    except SyntaxError:
        return 0


def exercises(nb, name: str = "notebook") -> list[Exercise]:
    """The exercises of a lesson, in order, checking the convention.

    Raises ValueError, naming the notebook and the cell, where a solution cell does not follow an exercise
    heading, an exercise heading is not followed by a solution cell, a solution does not open with
    ``# Worked solution`` or holds an ``assert`` while a check cell follows it, or a check cell does not
    follow a solution or open with ``# Check``.
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
            if level is not None and level not in LEVELS:
                raise ValueError(f"{name}, cell {i}: an exercise's level must be one of {', '.join(LEVELS)}, "
                                 f"found {level!r}")
            check = i + 2 if i + 2 < len(nb.cells) and is_check(nb.cells[i + 2]) else None
            if check is not None and asserts_in(after.source):
                raise ValueError(f"{name}, cell {i + 1}: a solution with a check cell keeps every assert in the check "
                                 f"cell, so that the student copy has them all")
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


def closing_check(source: str) -> str:
    """The ``assert`` statements that end a solution, if something comes before them; else ''.

    Only for an exercise without a check cell: the asserts at the end tell the student which names to
    define, without the code that computes them. A solution made only of asserts gives none.
    """
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython syntax (%magics): give no check rather than a wrong one
        return ""
    start = len(body)
    while start > 0 and isinstance(body[start - 1], ast.Assert):
        start -= 1
    if start == len(body) or start == 0:
        return ""
    lines = source.splitlines()
    first = body[start].lineno - 1
    while first > 0 and lines[first - 1].lstrip().startswith("#") and first - 1 >= body[start - 1].end_lineno:
        first -= 1  # a comment right above the checks says what they check
    return "\n".join(lines[first:]).strip()


def stub(number: int, title: str, solution: str, has_check: bool = False) -> str:
    """The student's version of a solution cell."""
    where = "the task is in the cell above"
    if has_check:
        where += "; the cell below checks your answer"
    lines = [f"# Exercise {number}: {title}",
             f"# Your solution goes here, in place of the `raise` line ({where}).",
             f'raise NotImplementedError("Exercise {number}: write your solution in this cell")']
    check = "" if has_check else closing_check(solution)
    if check:
        several = sum(line.startswith("assert") for line in check.splitlines()) > 1
        checks = "these checks from the worked solution pass" if several else "this check from the worked solution passes"
        lines += ["", f"# When your solution works, {checks}:", check]
    return "\n".join(lines)


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
        cell.source = stub(exercise.number, exercise.title, cell.source, exercise.check is not None)
        cell.outputs, cell.execution_count = [], None
        cell.metadata["tags"] = [STUB_TAG if t == SOLUTION_TAG else t for t in cell.metadata["tags"]]
        if exercise.check is not None:  # the check's outputs were the worked solution's
            check = student.cells[exercise.check]
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
