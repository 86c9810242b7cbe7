"""Write the student copies of the lessons: each worked solution replaced by a stub for the student to fill in.

    python tools/student_copies.py            (every notebooks/NN_*.ipynb -> exercises/NN_*.ipynb)

An exercise in a lesson is three cells in a row:

- a markdown cell opening with ``### Exercise N (level): title``, level one of warm-up, core or challenge,
  that states the task and exactly what to produce (names, shapes, units);
- a code cell tagged ``solution`` whose first line is ``# Worked solution``, with no ``assert`` in it;
- a code cell tagged ``check`` whose first line is ``# Check``: the asserts that compare the answer
  with reference values.

In the student copy the solution becomes a stub (``STUB``, the same for every exercise) that stops a run
there with ``NotImplementedError``; the check cell stays as it is, without its outputs, so every check of the
worked solution is there for the student to pass. Every other cell, with its output, is the lesson's; the
first cell also says where the solutions are, and its Colab link opens the student copy. The copies are a
pure function of the lessons, so ``tests/test_student_copies.py`` can tell when the committed ones are stale.

Grading with nbgrader. Before it writes the copies, the tool stamps each lesson's exercise cells with
nbgrader's cell metadata (schema 3), from the tags and the heading, and writes a lesson back only where that
metadata changed (nothing else in the lesson is touched, so running it twice changes nothing):

- the solution cell: an autograded answer, ``{"solution": true, "grade": false, "locked": false,
  "task": false, "grade_id": "<lesson>-ex<N>-solution", "schema_version": 3}``; the whole cell is the
  answer, so the lesson needs no ``### BEGIN SOLUTION`` markers;
- the check cell: an autograder test, ``{"solution": false, "grade": true, "locked": true, "task": false,
  "grade_id": "<lesson>-ex<N>-check", "points": POINTS[level], "schema_version": 3}``.

Any other cell's nbgrader metadata is removed. The student copy carries what ``nbgrader generate_assignment``
adds to those cells (``checksum``, ``cell_type``, and ``deletable``/``editable`` false), and
``nbgrader_config.py`` makes nbgrader write ``STUB`` and keep the lesson's figures, so that nbgrader's
release of a lesson is this copy but for the first cell and the stub's tag (``tests/test_grading.py``).
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from colab import LINK, colab_url, link_line
# the tags and points the checker reads, from the one place that defines them
from vae_helpers.check_exercises import ANSWER_TAG, CHECK_TAG, POINTS, SOLUTION_TAG, WORKED_SOLUTION

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "notebooks"
EXERCISES = ROOT / "exercises"
SOLUTION_FIRST_LINE = WORKED_SOLUTION
CHECK_FIRST_LINE = "# Check"
STUB_TAG = ANSWER_TAG
LEVELS = tuple(POINTS)
EXERCISE_HEADING = re.compile(r"### Exercise (\d+)(?: \(([a-z-]+)\))?\s*:\s*(.+)")  # the level is checked below
#: the student's version of every solution cell; ``nbgrader_config.py`` gives nbgrader the same stub
STUB = ("# Your solution: write it in this cell, in place of the `raise` line.\n"
        "# The task is in the cell above; the check cell below tells you whether your answer is right.\n"
        'raise NotImplementedError("write your solution in this cell")')
NBGRADER_SCHEMA = 3


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


def grade_ids(lesson_stem: str, number: int) -> tuple[str, str]:
    """The nbgrader ids of exercise ``number``'s solution and check cells: unique within the course."""
    return f"{lesson_stem}-ex{number}-solution", f"{lesson_stem}-ex{number}-check"


def nbgrader_metadata(lesson_stem: str, exercise: Exercise) -> tuple[dict, dict]:
    """The nbgrader metadata of an exercise's solution cell (an answer) and check cell (a test worth points)."""
    solution_id, check_id = grade_ids(lesson_stem, exercise.number)
    answer = {"solution": True, "grade": False, "locked": False, "task": False, "grade_id": solution_id,
              "schema_version": NBGRADER_SCHEMA}
    test = {"solution": False, "grade": True, "locked": True, "task": False, "grade_id": check_id,
            "points": POINTS[exercise.level], "schema_version": NBGRADER_SCHEMA}
    return answer, test


def stamp(nb, lesson_stem: str, name: str = "notebook") -> bool:
    """Give the exercise cells of the lesson ``nb`` their nbgrader metadata, in place; True if anything changed.

    Only the ``nbgrader`` key of the cells' metadata is written: it is set on solution and check cells and
    removed from every other cell. Raises ValueError as ``exercises`` does.
    """
    wanted = {}
    for exercise in exercises(nb, name):
        wanted[exercise.solution], wanted[exercise.check] = nbgrader_metadata(lesson_stem, exercise)
    changed = False
    for i, cell in enumerate(nb.cells):
        if i in wanted and cell.metadata.get("nbgrader") != wanted[i]:
            cell.metadata["nbgrader"] = wanted[i]
            changed = True
        elif i not in wanted and "nbgrader" in cell.metadata:
            del cell.metadata["nbgrader"]
            changed = True
    return changed


def checksum(cell) -> str:
    """nbgrader's checksum of a graded or answer cell (``nbgrader.utils.compute_checksum``), without nbgrader.

    nbgrader writes it into the student version, and its ``validate`` uses it to tell a changed test cell.
    """
    meta = cell.metadata["nbgrader"]
    locked = not meta["solution"] and (meta["grade"] or meta["locked"])
    parts = [cell.source, cell.cell_type, str(meta["grade"]), str(meta["solution"]), str(locked), meta["grade_id"]]
    if meta["grade"]:
        parts.append(str(float(meta["points"])))
    digest = hashlib.md5()
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def release_metadata(cell) -> None:
    """What ``nbgrader generate_assignment`` adds to an answer or test cell: its checksum and locks, in place."""
    cell.metadata["nbgrader"]["checksum"] = checksum(cell)
    cell.metadata["nbgrader"]["cell_type"] = cell.cell_type
    cell.metadata["deletable"] = False
    if cell.metadata["nbgrader"]["grade"]:  # a test: the student runs it, and cannot change it
        cell.metadata["editable"] = False


def student_copy(nb, lesson: Path):
    """The student copy of the lesson ``nb``, read from ``lesson``; ``nb`` itself is left as it is.

    The copy's exercise cells get their nbgrader metadata whether or not the lesson has been stamped yet.
    """
    name = lesson.name
    found = exercises(nb, name)
    if not found:
        raise ValueError(f"{name}: no exercise found (a markdown cell '### Exercise N (level): title' followed by a "
                         f"code cell tagged {SOLUTION_TAG!r})")
    student = copy.deepcopy(nb)
    stamp(student, lesson.stem, name)
    for exercise in found:
        cell = student.cells[exercise.solution]
        cell.source = STUB
        cell.outputs, cell.execution_count = [], None
        cell.metadata["tags"] = [STUB_TAG if t == SOLUTION_TAG else t for t in cell.metadata["tags"]]
        check = student.cells[exercise.check]  # its outputs were the worked solution's
        check.outputs, check.execution_count = [], None
        release_metadata(cell)
        release_metadata(check)
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


def stamp_lesson(lesson: Path) -> bool:
    """Stamp the lesson file's exercise cells with their nbgrader metadata; write it only if that changed."""
    nb = nbformat.read(lesson, as_version=4)
    if not stamp(nb, lesson.stem, lesson.name):
        return False
    lesson.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return True


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
            if stamp_lesson(path):
                print(f"{path.relative_to(ROOT)}: nbgrader metadata of its exercise cells written")
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
