"""The student copies in exercises/: up to date with the lessons, solutions replaced by stubs, runnable.

A student copy is the lesson with each worked solution replaced by a stub (tools/student_copies.py).
These tests check the committed copies against the lessons as they are now, and check that no later cell
of a lesson needs a name that only a solution defines; tests/test_exercise_checks.py runs every copy.
"""
from __future__ import annotations

import ast
import builtins
import copy
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import student_copies as sc  # noqa: E402

LESSONS = sc.lessons()
REGENERATE = "run `make exercises` (python tools/student_copies.py) and commit exercises/"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def lesson_ids():
    return [p.stem for p in LESSONS]


def test_there_are_lessons_each_with_exercises():
    assert LESSONS, f"no lessons notebooks/NN_*.ipynb in {sc.LESSONS}"
    for lesson in LESSONS:
        found = sc.exercises(read(lesson), lesson.name)
        print(f"{lesson.name}: {len(found)} exercises")
        assert found, f"{lesson.name} has no exercise"


def test_committed_student_copies_are_up_to_date():
    assert LESSONS
    stale = [p.name for p in LESSONS
             if not (sc.EXERCISES / p.name).exists() or (sc.EXERCISES / p.name).read_text(encoding="utf-8") != sc.render(p)]
    orphans = sorted({p.name for p in sc.EXERCISES.glob("*.ipynb")} - {p.name for p in LESSONS})
    assert not stale, f"student copies missing or stale: {stale}; {REGENERATE}"
    assert not orphans, f"student copies without a lesson: {orphans}; {REGENERATE}"


def code_lines(source: str) -> set[str]:
    """The lines of ``source`` that are code: not blank, not comments, not asserts."""
    lines = {line.strip() for line in source.splitlines()}
    return {line for line in lines if line and not line.startswith(("#", "assert"))}


@pytest.mark.parametrize("lesson", LESSONS, ids=lesson_ids())
def test_student_copy_replaces_each_solution_by_a_stub_and_keeps_the_rest(lesson):
    nb, student = read(lesson), read(sc.EXERCISES / lesson.name)
    assert len(student.cells) == len(nb.cells)
    found = {e.solution: (e.number, e.title) for e in sc.exercises(nb, lesson.name)}
    checks = {e.check for e in sc.exercises(nb, lesson.name)}
    for i, (mine, theirs) in enumerate(zip(nb.cells, student.cells)):
        if i in found:
            number, _ = found[i]
            assert theirs.source == sc.STUB, f"{lesson.name}, exercise {number}: the stub"
            assert sc.SOLUTION_FIRST_LINE not in theirs.source and not theirs.outputs
            assert sc.STUB_TAG in theirs.metadata["tags"] and sc.SOLUTION_TAG not in theirs.metadata["tags"]
            leaked = code_lines(mine.source) & code_lines(theirs.source)
            assert not leaked, f"{lesson.name}, exercise {number}: the stub shows solution code {sorted(leaked)}"
        elif i in checks:
            assert theirs.source == mine.source and not theirs.outputs, f"{lesson.name}, cell {i}: the check cell"
        elif i == 0:
            assert theirs.source.splitlines()[0] == mine.source.splitlines()[0]
            assert f"notebooks/{lesson.name}" in theirs.source
        else:
            assert (theirs.source, theirs.get("outputs")) == (mine.source, mine.get("outputs")), \
                f"{lesson.name}, cell {i} differs from the lesson"


def parse(source: str) -> ast.Module:
    return ast.parse(TransformerManager().transform_cell(source))


def top_level_bindings(tree: ast.Module) -> set[str]:
    """Names a cell binds in the notebook's namespace (not inside functions, classes or comprehensions)."""
    names: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_Name(self, node):
            if isinstance(node.ctx, ast.Store):
                names.add(node.id)

        def visit_FunctionDef(self, node):
            names.add(node.name)

        visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

        def visit_alias(self, node):
            names.add((node.asname or node.name).split(".")[0])

        def skip(self, node):
            pass

        visit_Lambda = visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = skip

    Visitor().visit(tree)
    return names


def any_bindings(tree: ast.Module) -> set[str]:
    """Every name a cell binds at any depth, parameters and comprehension variables included."""
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in n.posonlyargs + n.args + n.kwonlyargs + [n.vararg, n.kwarg] if a}
    names |= {(n.asname or n.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.alias)}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler) and n.name}
    return names


def names_only_solutions_define(nb) -> list[str]:
    """Where a cell after a solution reads a name that only solution cells bind: the student copy would break there."""
    code = [(i, c, parse(c.source)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    elsewhere = set(dir(builtins)) | {"get_ipython", "In", "Out", "_"}
    for _, cell, tree in code:
        if not sc.is_solution(cell):
            elsewhere |= any_bindings(tree)
    problems = []
    for i, cell, tree in code:
        if not sc.is_solution(cell):
            continue
        only_here = top_level_bindings(tree) - elsewhere
        for j, later, later_tree in code:
            own_check = j == i + 1 and sc.is_check(later)  # a check reads what its own exercise asks for
            if j > i and not sc.is_solution(later) and not own_check:
                used = {n.id for n in ast.walk(later_tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
                if used & only_here:
                    problems.append(f"cell {j} reads {sorted(used & only_here)}, bound only by the solution in cell {i}")
    return problems


@pytest.mark.parametrize("lesson", LESSONS, ids=lesson_ids())
def test_later_cells_do_not_read_names_only_a_solution_defines(lesson):
    problems = names_only_solutions_define(read(lesson))
    assert not problems, f"{lesson.name}: with the solutions replaced by stubs these cells fail: {problems}"


# The tool itself, on small notebooks made here.

def lesson_notebook(*cells):
    return new_notebook(cells=[new_markdown_cell("# 99 · A lesson\n\nIntro."), *cells])


def solution(source: str):
    return new_code_cell(source, metadata={"tags": ["solution"]})


def check(source: str):
    return new_code_cell(source, metadata={"tags": ["check"]})


def test_the_stub_replaces_the_solution_and_the_check_cell_stays_whole():
    nb = lesson_notebook(new_markdown_cell("### Exercise 1 (warm-up): Square\n\nSet `y` to 3 squared."),
                         solution("# Worked solution\ny = 3 ** 2\nprint(y)"),
                         check("# Check\nfor power in (1, 2):\n    assert y == 3 ** 2"),
                         new_code_cell("print('after')"))
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="from the solution\n")]
    student = sc.student_copy(nb, sc.LESSONS / "99_lesson.ipynb")
    stub = student.cells[2].source
    assert stub == sc.STUB and "3 ** 2" not in stub and "print(y)" not in stub
    assert student.cells[3].source == nb.cells[3].source and student.cells[3].outputs == []  # the assert in a loop too
    assert student.cells[4] == nb.cells[4] and nb.cells[2].source.startswith("# Worked solution")
    with pytest.raises(NotImplementedError, match="write your solution"):
        exec(stub, {})


TASK = new_markdown_cell("### Exercise 1 (core): A")


@pytest.mark.parametrize("cells, message", [
    ([solution("# Worked solution\nx = 1")], "must follow a markdown cell"),
    ([TASK, new_code_cell("x = 1")], "must be a code cell tagged"),
    ([TASK, solution("x = 1"), check("# Check\nassert x")], "must open with '# Worked solution'"),
    ([new_markdown_cell("### Exercise 1: A"), solution("# Worked solution\nx = 1"), check("# Check\nassert x")],
     "must name the exercise's level"),
    ([new_markdown_cell("### Exercise 1 (easy): A"), solution("# Worked solution\nx = 1"), check("# Check\nassert x")],
     "must name the exercise's level"),
    ([TASK, solution("# Worked solution\nx = 1")], "followed by a code cell tagged 'check'"),
    ([TASK, solution("# Worked solution\nx = 1\nassert x == 1"), check("# Check\nassert x")], "keeps every assert"),
    ([TASK, solution("# Worked solution\nx = 1"), check("assert x")], "must open with '# Check'"),
    ([check("# Check\nassert True")], "must follow a solution cell"),
    ([new_code_cell("x = 1")], "no exercise found"),
])
def test_student_copy_rejects_a_lesson_that_breaks_the_exercise_convention(cells, message):
    with pytest.raises(ValueError, match=message):
        sc.student_copy(lesson_notebook(*cells), sc.LESSONS / "99_lesson.ipynb")


def test_a_later_cell_reading_a_solution_name_is_found():
    nb = lesson_notebook(new_code_cell("import torch\nx = torch.ones(2)"),
                         new_markdown_cell("### Exercise 1 (core): A"),
                         solution("# Worked solution\ntotal = x.sum()"),
                         check("# Check\nassert total == 2"),
                         new_code_cell("print([t for t in range(2)], x)"),
                         new_code_cell("print(total)"))
    assert names_only_solutions_define(nb) == ["cell 6 reads ['total'], bound only by the solution in cell 3"]
    fixed = copy.deepcopy(nb)
    fixed.cells[6].source = "total = x.sum()\nprint(total)"
    assert names_only_solutions_define(fixed) == []
