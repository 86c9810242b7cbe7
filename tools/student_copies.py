"""Write the student copies of the lessons: each worked solution replaced by a stub for the student to fill in.

    python tools/student_copies.py            (every notebooks/NN_*.ipynb -> exercises/NN_*.ipynb)

An exercise in a lesson is a markdown cell opening with ``### Exercise N: title`` followed by exactly one
code cell tagged ``solution`` whose first line is ``# Worked solution``. In the student copy that cell
becomes a stub that names the exercise, stops a run there with ``NotImplementedError``, and keeps the
solution's closing ``assert`` lines, so the student knows which names to define and when they are done.
Every other cell, with its output, is the lesson's; the first cell also says where the solutions are,
and its Colab link opens the student copy. The copies are a pure function of the lessons, so
``tests/test_student_copies.py`` can tell when the committed ones are stale.
"""
from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import nbformat

from colab import LINK, colab_url, link_line

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "notebooks"
EXERCISES = ROOT / "exercises"
SOLUTION_TAG = "solution"
SOLUTION_FIRST_LINE = "# Worked solution"
STUB_TAG = "exercise"
EXERCISE_HEADING = re.compile(r"### Exercise (\d+)\s*:\s*(.+)")


def lessons() -> list[Path]:
    """The lessons, in reading order: ``notebooks/NN_*.ipynb``."""
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def exercises(nb, name: str = "notebook") -> list[tuple[int, str, int]]:
    """The exercises of a lesson as (number, title, index of the solution cell), checking the convention.

    Raises ValueError, naming the notebook and the cell, where a solution cell does not follow an exercise
    heading, an exercise heading is not followed by a solution cell, or a solution does not open with
    ``# Worked solution``.
    """
    found = []
    for i, cell in enumerate(nb.cells):
        heading = EXERCISE_HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            if after is None or not is_solution(after):
                raise ValueError(f"{name}, cell {i} ({heading.group(0)!r}): the cell after an exercise heading must be "
                                 f"a code cell tagged {SOLUTION_TAG!r}")
            found.append((int(heading.group(1)), heading.group(2).strip(), i + 1))
        elif is_solution(cell):
            previous = nb.cells[i - 1] if i > 0 else None
            if previous is None or previous.cell_type != "markdown" or not EXERCISE_HEADING.match(previous.source):
                raise ValueError(f"{name}, cell {i}: a cell tagged {SOLUTION_TAG!r} must follow a markdown cell "
                                 f"opening with '### Exercise N: title'")
        if is_solution(cell) and not cell.source.startswith(SOLUTION_FIRST_LINE):
            raise ValueError(f"{name}, cell {i}: a solution cell must open with {SOLUTION_FIRST_LINE!r}, "
                             f"found {cell.source.splitlines()[0] if cell.source else ''!r}")
    return found


def closing_check(source: str) -> str:
    """The ``assert`` statements that end a solution, if something comes before them; else ''.

    They tell the student which names to define and when the exercise is done, without the code that
    computes them. A solution made only of asserts gives none, since those would be the answer.
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


def stub(number: int, title: str, solution: str) -> str:
    """The student's version of a solution cell."""
    lines = [f"# Exercise {number}: {title}",
             "# Your solution goes here, in place of the `raise` line (the task is in the cell above).",
             f'raise NotImplementedError("Exercise {number}: write your solution in this cell")']
    check = closing_check(solution)
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
        raise ValueError(f"{name}: no exercise found (a markdown cell '### Exercise N: title' followed by a code "
                         f"cell tagged {SOLUTION_TAG!r})")
    student = copy.deepcopy(nb)
    for number, title, i in found:
        cell = student.cells[i]
        cell.source, cell.outputs, cell.execution_count = stub(number, title, cell.source), [], None
        cell.metadata["tags"] = [STUB_TAG if t == SOLUTION_TAG else t for t in cell.metadata["tags"]]
    first = student.cells[0]
    if first.cell_type != "markdown" or not first.source.startswith("# "):
        raise ValueError(f"{name}: the first cell must be a markdown cell opening with the title '# NN · Title'")
    target = EXERCISES / name
    note = (f"*Student copy: each exercise's worked solution is replaced by a stub for you to fill in. "
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
