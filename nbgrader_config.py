"""nbgrader's settings for this course: its release of a lesson is the lesson's student copy in exercises/.

Copy this file into an nbgrader course directory, and each lesson into ``source/<assignment>/``:

    mkdir -p course/source/05_autoencoder_vs_vae
    cp notebooks/05_autoencoder_vs_vae.ipynb course/source/05_autoencoder_vs_vae/
    cp nbgrader_config.py course/ && cd course && nbgrader generate_assignment 05_autoencoder_vs_vae

The lessons carry nbgrader's cell metadata (``tools/student_copies.py`` writes it): each worked solution is
an answer cell, replaced as a whole by the stub below, and each check cell is a test worth 1, 2 or 3 points
(warm-up, core, challenge). Two settings differ from nbgrader's defaults:

- the stub is the student copy's (``STUB`` in tools/student_copies.py; tests/test_grading.py checks they agree);
- only the exercises' cells lose their outputs (the worked solution's printout and the check's), where
  nbgrader's ClearOutput would also clear the lesson's figures, which the student needs to read it.
"""
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearOutput, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution

STUB = ("# Your solution: write it in this cell, in place of the `raise` line.\n"
        "# The task is in the cell above; the check cell below tells you whether your answer is right.\n"
        'raise NotImplementedError("write your solution in this cell")')


class ClearExerciseOutputs(NbGraderPreprocessor):
    """Clear the outputs of answer and test cells only: what the worked solution printed, not the lesson's figures."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and (is_solution(cell) or is_grade(cell)):
            cell.outputs = []
            cell.execution_count = None
        return cell, resources


c = get_config()  # noqa: F821 (nbgrader defines it when it reads this file)
c.ClearSolutions.code_stub = {"python": STUB}
c.GenerateAssignment.preprocessors = [ClearExerciseOutputs if p is ClearOutput else p
                                      for p in GenerateAssignment.class_traits()["preprocessors"].default()]
