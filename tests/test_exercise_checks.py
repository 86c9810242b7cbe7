"""Every exercise's check, run inside the student copy: it fails a plausible wrong answer and passes the solution.

For each lesson the student copy is executed top to bottom in one kernel, as a student would run it. At
each exercise the stub must stop the run with NotImplementedError; then a wrong answer a student could
plausibly write (``tests/wrong_answers/lesson_NN.py``) runs, and the exercise's check cell must fail it
with an AssertionError; then the worked solution from the lesson runs, and the same check must pass.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import student_copies as sc  # noqa: E402

LESSONS = sc.lessons()
WRONG = Path(__file__).resolve().parent / "wrong_answers"


def wrong_answers(lesson: Path) -> dict[int, tuple[str, str]]:
    """``{exercise number: (what is wrong, code)}`` for a lesson, from ``tests/wrong_answers/lesson_NN.py``."""
    path = WRONG / f"lesson_{lesson.name[:2]}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG


def ids():
    return [p.stem for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_every_exercise_has_a_level_a_check_and_a_wrong_answer(lesson):
    found = sc.exercises(nbformat.read(lesson, as_version=4), lesson.name)
    wrong = wrong_answers(lesson)
    problems = [f"exercise {e.number}: no level (warm-up, core or challenge) in its heading" for e in found if not e.level]
    problems += [f"exercise {e.number}: no check cell after its solution" for e in found if e.check is None]
    problems += [f"exercise {e.number}: no wrong answer in tests/wrong_answers/lesson_{lesson.name[:2]}.py"
                 for e in found if e.number not in wrong]
    assert any(e.level == "core" for e in found), f"{lesson.name}: no core exercise"
    assert not problems, f"{lesson.name}: " + "; ".join(problems)


def bound(tree: ast.AST) -> set[str]:
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return names


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_each_check_reads_only_names_its_task_states(lesson):
    nb = nbformat.read(lesson, as_version=4)
    before: set[str] = set()
    problems = []
    for i, cell in enumerate(nb.cells):
        exercise = next((e for e in sc.exercises(nb, lesson.name) if e.check == i), None)
        if cell.cell_type != "code":
            continue
        tree = ast.parse(TransformerManager().transform_cell(cell.source))
        if exercise is not None:
            solution_names = bound(ast.parse(TransformerManager().transform_cell(nb.cells[exercise.solution].source))) - before
            read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            task = nb.cells[exercise.task].source
            unstated = sorted(name for name in read & solution_names if not re.search(rf"`[^`]*\b{name}\b[^`]*`", task))
            if unstated:
                problems.append(f"exercise {exercise.number}'s check reads {unstated}, which its task never names")
        if not sc.is_solution(cell):
            before |= bound(tree)
    assert not problems, f"{lesson.name}: " + "; ".join(problems)


def error_of(cell) -> str | None:
    return next((o["ename"] for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_checks_fail_a_wrong_answer_and_pass_the_worked_solution(lesson):
    nb = nbformat.read(lesson, as_version=4)
    student = nbformat.read(sc.EXERCISES / lesson.name, as_version=4)
    found = {e.solution: e for e in sc.exercises(nb, lesson.name) if e.check is not None}
    wrong = wrong_answers(lesson)
    if not found or not all(e.number in wrong for e in found.values()):
        pytest.fail(f"{lesson.name}: every exercise needs a check cell and a wrong answer (see the test above)")
    cells, expect = [], []  # the cells to run, and for each (what it is, the error it must raise or None)
    for i, cell in enumerate(student.cells):
        e = found.get(i)
        if e is None:
            cells.append(cell)
            expect.append((f"cell {i}", None))
            continue
        what, code = wrong[e.number]
        check = student.cells[e.check].source
        cells += [cell, new_code_cell(code), new_code_cell(check), new_code_cell(nb.cells[i].source)]
        expect += [(f"exercise {e.number}'s stub", "NotImplementedError"),
                   (f"exercise {e.number}'s wrong answer ({what})", None),
                   (f"exercise {e.number}'s check on the wrong answer ({what})", "AssertionError"),
                   (f"exercise {e.number}'s worked solution", None)]
        # the check cell itself follows in the copy, and must then pass on the worked solution
    run = nbformat.v4.new_notebook(cells=cells, metadata=student.metadata)
    NotebookClient(run, timeout=900, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(sc.EXERCISES)}}).execute()
    problems = []
    for cell, (what, wanted) in zip(run.cells, expect):
        if cell.cell_type != "code":
            continue
        got = error_of(cell)
        if got != wanted:
            detail = next((o.get("evalue", "") for o in cell.outputs if o.get("output_type") == "error"), "")
            problems.append(f"{what}: expected {wanted or 'no error'}, got {got or 'no error'} {detail[:200]}")
    assert not problems, f"{lesson.name}:\n" + "\n".join(problems)
