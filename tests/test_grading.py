"""Grading the exercises: nbgrader's metadata in the lessons, nbgrader's release against our student copies,
and the checker a student runs without nbgrader (``python -m vae_helpers.check_exercises``).

Two tests execute a lesson, lesson 01, the quickest (the checker's command, and nbgrader's autograde on the
same filled-in copy); the checker's logic is tested on small notebooks made here.
"""
from __future__ import annotations

import ast
import copy
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vae_helpers import check_exercises as ce

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import student_copies as sc  # noqa: E402

LESSONS = sc.lessons()
POINTS = {"warm-up": 1, "core": 2, "challenge": 3}
REGENERATE = "run `python tools/student_copies.py`, which stamps the lessons and rewrites the copies"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def ids():
    return [p.stem for p in LESSONS]


# The lessons' nbgrader metadata.

@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_exercise_cells_carry_nbgrader_metadata_with_points_by_level(lesson):
    from nbgrader.nbgraderformat import MetadataValidator

    nb = read(lesson)
    found = sc.exercises(nb, lesson.name)
    graded = set()
    for e in found:
        answer, check = nb.cells[e.solution].metadata.get("nbgrader"), nb.cells[e.check].metadata.get("nbgrader")
        assert answer == {"solution": True, "grade": False, "locked": False, "task": False, "schema_version": 3,
                          "grade_id": f"{lesson.stem}-ex{e.number}-solution"}, \
            f"{lesson.name}, exercise {e.number}: the solution cell's nbgrader metadata; {REGENERATE}"
        assert check == {"solution": False, "grade": True, "locked": True, "task": False, "schema_version": 3,
                         "grade_id": f"{lesson.stem}-ex{e.number}-check", "points": POINTS[e.level]}, \
            f"{lesson.name}, exercise {e.number}: the check cell's nbgrader metadata; {REGENERATE}"
        graded |= {e.solution, e.check}
    stray = [i for i, cell in enumerate(nb.cells) if i not in graded and "nbgrader" in cell.metadata]
    assert not stray, f"{lesson.name}: cells {stray} have nbgrader metadata but are not an exercise's; {REGENERATE}"
    MetadataValidator().validate_nb(nb)  # nbgrader's own schema, and unique grade ids within the notebook


def test_grade_ids_are_unique_across_the_course():
    seen: dict[str, str] = {}
    for lesson in LESSONS:
        for cell in read(lesson).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id:
                assert grade_id not in seen, f"{grade_id} in {lesson.name} and in {seen[grade_id]}"
                seen[grade_id] = lesson.name
    assert len(seen) == 2 * sum(len(sc.exercises(read(p), p.name)) for p in LESSONS)


def test_stamping_is_idempotent_and_touches_only_the_nbgrader_key():
    nb = new_notebook(cells=[new_markdown_cell("# 99 · A lesson"),
                             new_code_cell("x = 1", metadata={"nbgrader": {"grade": False, "solution": False,
                                                                            "locked": True, "grade_id": "old",
                                                                            "schema_version": 3}}),
                             new_markdown_cell("### Exercise 1 (challenge): A", metadata={"slideshow": {"slide_type": "slide"}}),
                             new_code_cell("# Worked solution\ny = 2", metadata={"tags": ["solution"], "other": 1}),
                             new_code_cell("# Check\nassert y == 2", metadata={"tags": ["check"]})])
    before = copy.deepcopy(nb)
    assert sc.stamp(nb, "99_lesson") is True and sc.stamp(nb, "99_lesson") is False
    assert "nbgrader" not in nb.cells[1].metadata  # a cell that is not an exercise's loses it
    assert nb.cells[4].metadata.nbgrader["points"] == 3 and nb.cells[3].metadata.nbgrader["grade_id"] == "99_lesson-ex1-solution"
    for old, new in zip(before.cells, nb.cells):
        old.metadata.pop("nbgrader", None)
        new.metadata.pop("nbgrader", None)
    assert nb == before


# nbgrader's release of the lessons against the committed student copies.

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Every lesson released by ``nbgrader generate_assignment`` with the course's nbgrader_config.py."""
    course = tmp_path_factory.mktemp("course")
    (course / "source" / "lessons").mkdir(parents=True)
    for lesson in LESSONS:
        shutil.copy(lesson, course / "source" / "lessons" / lesson.name)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    # nbgrader runs the alembic command of its environment to set up its database
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "lessons"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return course / "release" / "lessons"


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_nbgrader_release_is_the_student_copy_but_for_the_first_cell_and_the_stubs_tag(lesson, release):
    assert (sc.EXERCISES / lesson.name).exists(), f"{lesson.name} has no student copy; {REGENERATE}"
    ours, theirs, source = read(sc.EXERCISES / lesson.name), read(release / lesson.name), read(lesson)
    assert theirs.metadata == ours.metadata
    assert [c.get("id") for c in theirs.cells] == [c.get("id") for c in ours.cells] == [c.get("id") for c in source.cells]
    answers = {e.solution for e in sc.exercises(source, lesson.name)}
    for i, (mine, nbg) in enumerate(zip(ours.cells, theirs.cells)):
        where = f"{lesson.name}, cell {i}"
        if i == 0:  # ours adds where the solutions are and links Colab to the copy; nbgrader keeps the lesson's
            assert nbg == source.cells[0], where
            assert mine.source.splitlines()[0] == nbg.source.splitlines()[0], where
            continue
        assert mine.source == nbg.source, f"{where}: sources differ"
        assert mine.get("outputs") == nbg.get("outputs") and mine.get("execution_count") == nbg.get("execution_count"), \
            f"{where}: outputs differ"
        mine_meta, nbg_meta = copy.deepcopy(mine.metadata), copy.deepcopy(nbg.metadata)
        if i in answers:  # the one intended difference: our stub is tagged 'exercise', nbgrader keeps 'solution'
            assert sc.SOLUTION_TAG in nbg_meta.tags and sc.STUB_TAG in mine_meta.tags, where
            nbg_meta.tags = [sc.STUB_TAG if t == sc.SOLUTION_TAG else t for t in nbg_meta.tags]
            assert nbg.source == sc.STUB
        assert mine_meta == nbg_meta, f"{where}: metadata differ (nbgrader's: {nbg.metadata})"
    figures = [c for c in ours.cells if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert figures, f"{lesson.name}: no figure kept, so the comparison of outputs shows nothing"
    # the checker reads nbgrader's release as it reads our copy
    assert ce.read_student_copy(release / lesson.name)[1] == ce.read_student_copy(sc.EXERCISES / lesson.name)[1]


# The checker, on small student copies made here.

def small_lesson(*exercises, between=()):
    """A lesson: exercises given as (level, worked solution, check), and extra cells before the last one."""
    cells = [new_markdown_cell("# 99 · A small lesson\n\nIntro."), new_code_cell("base = 10")]
    for n, (level, solution, check) in enumerate(exercises, 1):
        cells += [new_markdown_cell(f"### Exercise {n} ({level}): Task {n}\n\nSet `answer_{n}`."),
                  new_code_cell(f"# Worked solution\n{solution}", metadata={"tags": ["solution"]}),
                  new_code_cell(f"# Check\n{check}", metadata={"tags": ["check"]})]
    return new_notebook(cells=cells[:-3] + list(between) + cells[-3:],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def student_copy_with(tmp_path, lesson_nb, answers: dict[int, str], name="99_small.ipynb") -> Path:
    """The student copy of ``lesson_nb`` with the given exercises' stubs replaced by ``answers[number]``."""
    student = sc.student_copy(lesson_nb, sc.LESSONS / name)
    for e in sc.exercises(lesson_nb, name):
        if e.number in answers:
            student.cells[e.solution].source = answers[e.number]
    path = tmp_path / name
    nbformat.write(student, path)
    return path


def test_checker_reports_passed_failed_and_not_attempted_and_a_lesson_cell_error(tmp_path, capsys):
    lesson = small_lesson(("warm-up", "answer_1 = base + 1", "assert answer_1 == 11, 'answer_1 is not base + 1'"),
                          ("core", "answer_2 = 2", "assert answer_2 == 2 * base, 'answer_2 must be twice base'"),
                          ("core", "answer_3 = 3", "assert answer_3 == 3 * base"),
                          ("challenge", "answer_4 = 4", "assert answer_4 == 4"),
                          ("warm-up", "answer_5 = 5", "assert answer_5 == 5"),
                          between=[new_code_cell("import math\nmath.sqrt(-1)")])
    path = student_copy_with(tmp_path, lesson, {1: "answer_1 = base + 1", 2: "answer_2 = base", 3: "answer_3 = 3",
                                                 5: "answer_5 = 1 / 0"})
    status = ce.main([str(path)])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert out[1:] == [
        "Exercise 1 (warm-up): Task 1 — passed",
        "Exercise 2 (core): Task 2 — failed: answer_2 must be twice base",
        "Exercise 3 (core): Task 3 — failed: this assert failed: assert answer_3 == 3 * base",
        "Exercise 4 (challenge): Task 4 — not attempted",
        "Cell 15 (part of the lesson, not an exercise) raised ValueError: math domain error; "
        "the exercises after it may fail because of it",
        "Exercise 5 (warm-up): Task 5 — failed: your solution raised ZeroDivisionError: division by zero",
        "99_small.ipynb: 1 of 5 exercises passed (1 of 9 points); 3 failed, 1 not attempted",
    ]


def test_checker_exits_zero_when_every_exercise_passed(tmp_path, capsys):
    lesson = small_lesson(("warm-up", "answer_1 = 1", "assert answer_1 == 1"),
                          ("core", "answer_2 = 2", "assert answer_2 == 2"))
    path = student_copy_with(tmp_path, lesson, {1: "answer_1 = 1", 2: "answer_2 = 2"})
    assert ce.main([str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "99_small.ipynb: 2 of 2 exercises passed (3 of 3 points)"


def test_checker_says_which_cell_ran_too_long(tmp_path):
    lesson = small_lesson(("warm-up", "answer_1 = 1", "assert answer_1 == 1"),
                          ("core", "answer_2 = 2", "assert answer_2 == 2"))
    path = student_copy_with(tmp_path, lesson, {1: "import time\ntime.sleep(30)\nanswer_1 = 1"})
    report = ce.check_notebook(path, timeout=3)
    assert [r.status for r in report.results] == ["not run", "not run"] and not report.ok
    assert report.stopped == "cell 4 ran longer than 3 s (see --timeout)"


def not_json(directory: Path) -> Path:
    (directory / "broken.ipynb").write_text("{not json", encoding="utf-8")
    return directory / "broken.ipynb"


def without_exercises(directory: Path) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), directory / "plain.ipynb")
    return directory / "plain.ipynb"


@pytest.mark.parametrize("make, message", [
    (lambda directory: directory / "missing.ipynb", "missing.ipynb: no such file"),
    (lambda directory: ROOT / "README.md", "README.md: not a notebook"),
    (not_json, "broken.ipynb: cannot be read as a notebook"),
    (without_exercises, "plain.ipynb: no exercises found"),
    (lambda directory: LESSONS[0], f"{LESSONS[0].name}: this is a lesson with its worked solutions, not a student "
                                   f"copy; check your copy, exercises/{LESSONS[0].name}"),
], ids=["missing", "not-a-notebook", "not-json", "no-exercises", "a-lesson"])
def test_checker_refuses_what_is_not_a_student_copy(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert ce.main([str(path)]) == 2  # before any kernel starts
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    with pytest.raises(ce.NotAStudentCopy) as refused:
        ce.read_student_copy(path)
    assert message in str(refused.value)


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_checker_finds_every_exercise_of_each_student_copy(lesson):
    _, found = ce.read_student_copy(sc.EXERCISES / lesson.name)
    expected = [(e.number, e.level, e.title, POINTS[e.level], e.solution, e.check)
                for e in sc.exercises(read(lesson), lesson.name)]
    assert [(e.number, e.level, e.title, e.points, e.answer, e.check) for e in found] == expected


def test_checker_module_imports_only_the_standard_library_at_import_time():
    tree = ast.parse((ROOT / "vae_helpers" / "check_exercises.py").read_text(encoding="utf-8"))
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
           for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top - set(sys.stdlib_module_names)


# The checker on a real student copy, as a student runs it: lesson 01, the quickest lesson.

def wrong_answers(number: str) -> dict:
    spec = importlib.util.spec_from_file_location(f"lesson_{number}", ROOT / "tests" / "wrong_answers" / f"lesson_{number}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG


def assert_messages(source: str) -> set[str]:
    """The constant messages of the asserts in a check cell."""
    return {node.msg.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Assert) and isinstance(node.msg, ast.Constant)}


def test_checker_on_lesson_01_one_solved_one_wrong_the_rest_not_attempted(tmp_path):
    lesson_path = LESSONS[0]
    assert lesson_path.name.startswith("01_")
    lesson, student = read(lesson_path), read(sc.EXERCISES / lesson_path.name)
    found = sc.exercises(lesson, lesson_path.name)
    assert len(found) >= 3
    first, second = found[0], found[1]
    student.cells[first.solution].source = lesson.cells[first.solution].source  # the worked solution, copied in
    what, code = wrong_answers("01")[second.number]
    student.cells[second.solution].source = code
    path = tmp_path / lesson_path.name
    nbformat.write(student, path)
    done = subprocess.run([sys.executable, "-m", "vae_helpers.check_exercises", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    lines = [line for line in done.stdout.splitlines() if line.startswith("Exercise ")]
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == len(found), done.stdout
    assert lines[0] == f"Exercise {first.number} ({first.level}): {first.title} — passed"
    failed = f"Exercise {second.number} ({second.level}): {second.title} — failed: "
    assert lines[1].startswith(failed), done.stdout
    assert lines[1][len(failed):] in assert_messages(student.cells[second.check].source), \
        f"the wrong answer ({what}) must be reported with its check's message: {lines[1]}"
    for e, line in zip(found[2:], lines[2:]):
        assert line == f"Exercise {e.number} ({e.level}): {e.title} — not attempted"
    points = sum(POINTS[e.level] for e in found)
    assert done.stdout.splitlines()[-1] == (f"{lesson_path.name}: 1 of {len(found)} exercises passed "
                                            f"({POINTS[first.level]} of {points} points); 1 failed, "
                                            f"{len(found) - 2} not attempted")


def test_nbgrader_autograde_scores_a_filled_in_student_copy_as_the_checker_does(tmp_path):
    """The committed copy, filled in as above, submitted to nbgrader: each check cell's points as its report says."""
    lesson_path = LESSONS[0]
    lesson, student = read(lesson_path), read(sc.EXERCISES / lesson_path.name)
    found = sc.exercises(lesson, lesson_path.name)
    first, second = found[0], found[1]
    student.cells[first.solution].source = lesson.cells[first.solution].source
    student.cells[second.solution].source = wrong_answers("01")[second.number][1]
    (tmp_path / "source" / "l01").mkdir(parents=True)
    (tmp_path / "submitted" / "alice" / "l01").mkdir(parents=True)
    shutil.copy(lesson_path, tmp_path / "source" / "l01")
    nbformat.write(student, tmp_path / "submitted" / "alice" / "l01" / lesson_path.name)
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    for step in (["generate_assignment", "l01"], ["autograde", "l01", "--ExecutePreprocessor.timeout=1200"]):
        done = subprocess.run([sys.executable, "-m", "nbgrader", *step], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(lesson_path.stem, "l01", "alice")
        scores = {grade.name: (grade.score, grade.max_score) for grade in submission.grades}
    assert scores == {f"{lesson_path.stem}-ex{e.number}-check": (POINTS[e.level] if e is first else 0, POINTS[e.level])
                      for e in found}
