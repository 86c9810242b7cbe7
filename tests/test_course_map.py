"""The learner's questions and the notation table are one text, shown in the README and on the site."""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("## The learner's questions", "## Notation")


def section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:end if end >= 0 else None].strip()


@pytest.mark.parametrize("title", SECTIONS)
def test_readme_and_landing_page_show_the_same_section(title):
    readme = (ROOT / "README.md").read_text()
    landing = (ROOT / "site" / "index.md").read_text()
    assert section(readme, title) == section(landing, title)


def test_the_questions_are_the_plan_of_records_eight():
    questions = section((ROOT / "README.md").read_text(), SECTIONS[0])
    assert re.findall(r"\*\*Q(\d)\.\*\*", questions) == [str(i) for i in range(1, 9)]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_each_lesson_names_the_questions_it_answers(path):
    cited = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            cited |= set(re.findall(r"\bQ([1-8])\b", cell.source))
    row = next(line for line in (ROOT / "README.md").read_text().splitlines()
               if line.startswith(f"| {path.stem[:2]} |"))
    listed = set(re.findall(r"\bQ([1-8])\b", row.split("|")[3]))
    assert listed and listed <= cited, f"{path.name} should cite {sorted(listed)}; it cites {sorted(cited)}"
