"""Each lesson as a reveal.js slide deck: build/site/slides/NN_name.html, served offline from the site.

    python tools/slides.py                           build every stale deck (every notebooks/NN_*.ipynb)
    python tools/slides.py --fresh                   build every deck again
    python tools/slides.py --tag notebooks/10_x.ipynb   give the cells of a lesson that have none their slide
                                                     metadata, by the rules below (--retag: every cell)

What goes on a slide is chosen by each cell's ``metadata.slideshow.slide_type``, the Jupyter convention that
nbconvert's slides exporter and RISE (live presenting in JupyterLab) both read: ``slide`` starts a new slide,
``subslide`` a new slide below it, ``fragment`` appears on the same slide at the next step, ``-`` continues
the slide, ``notes`` goes to the speaker notes (press S), ``skip`` is left out. The committed metadata is
the source of truth: ``--tag`` writes a first pass by rule, which is then reviewed by hand; a second ``--tag``
keeps what is there. The rules:

- the title cell starts the deck; a markdown cell with a ``## `` heading starts a slide, one with a ``### ``
  heading a subslide; other prose continues the slide, or starts a subslide when the slide is already full;
- a code cell is shown by its outputs: printed numbers and tables on the slide of the claim before them, a
  figure there too or on a subslide of its own when that slide is full; a code cell with nothing to show (imports,
  definitions, the Colab install cell) is skipped, and one whose output is very long goes to the notes;
- the first output after a ``**Predict.**`` question, when it is on the same slide, is a fragment: it appears
  at the next key press, once the audience has guessed;
- the exercises (from the first exercise, or the ``## Exercises`` heading, to the next ``## `` heading) are
  skipped: the deck ends with one slide that lists them and points to the student copy exercises/NN_*.ipynb.

When the deck is built (nothing here changes the notebook): the code of every code cell is hidden (tag a
cell ``slide-code`` to show it), the title slide shows the title and the **Answers** line and the rest of the
first cell follows on a subslide, a markdown cell whose ``## `` heading comes after some prose is split so
that the heading starts the slide, and the closing exercise slide is added. reveal.js (from the
sphinx-revealjs package) and MathJax 3 (from sphinx-mathjax-offline) are copied into build/site/_static/,
so a deck loads nothing from the network.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import SlidesExporter
from nbconvert.preprocessors import Preprocessor

from colab import INSTALL_TAG, LINK, colab_url
from student_copies import exercises

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXERCISES = ROOT / "exercises"
SITE = ROOT / "build" / "site"
DECKS = SITE / "slides"
STATIC = SITE / "_static"
SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "notes", "skip")
SHOW_CODE_TAG = "slide-code"

#: How much one slide holds, in characters of prose; a figure counts as FIGURE characters, a line of printed
#: output as LINE. Past this a new subslide starts (a slide is 1280 x 800 at 20 px: about 25 lines of text).
BUDGET = 1900
FIGURE = 1300
LINE = 90
#: Outputs longer than this many lines go to the speaker notes rather than onto a slide.
LONG_OUTPUT = 24

HEADING2 = re.compile(r"^## (?!#)", re.M)
HEADING3 = re.compile(r"^### (?!#)")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
PREDICT = "**Predict.**"


def lessons() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def deck_of(lesson: Path) -> Path:
    return DECKS / f"{Path(lesson).stem}.html"


def slide_type(cell) -> str | None:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def title_of(nb) -> str:
    return nb.cells[0].source.splitlines()[0].removeprefix("# ").strip()


def answers_of(nb) -> str:
    """The first cell's **Answers** paragraph, with the list under it when it is a heading of its own."""
    blocks = nb.cells[0].source.split("\n\n")
    start = next((i for i, b in enumerate(blocks) if b.startswith("**Answers**")), None)
    if start is None:
        return ""
    taken = [blocks[start]]
    if blocks[start].strip() == "**Answers**":
        taken += [b for b in blocks[start + 1:start + 2] if b.startswith("- ")]
    return "\n\n".join(taken)


# The rules of the first pass.

def exercise_block(nb) -> range:
    """The cells of the lesson's exercises: from the first exercise (or the ``## Exercises`` heading just before
    it) to the cell before the next ``## `` heading; empty if it has none."""
    found = exercises(nb)
    if not found:
        return range(0)
    start = min(e.task for e in found)
    if start > 0 and nb.cells[start - 1].cell_type == "markdown" and nb.cells[start - 1].source.startswith("## "):
        start -= 1
    end = next((i for i in range(max(e.check for e in found) + 1, len(nb.cells))
                if nb.cells[i].cell_type == "markdown" and nb.cells[i].source.startswith("## ")), len(nb.cells))
    return range(start, end)


def output_lines(cell) -> int:
    """How many lines of text a code cell's outputs show (an HTML table: its rows), figures left out."""
    lines = 0
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            lines += len(out.get("text", "").rstrip("\n").splitlines())
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            if any(t in data for t in IMAGE_TYPES):
                continue
            if "text/html" in data:
                lines += str(data["text/html"]).count("<tr")
            elif "text/markdown" in data or "text/latex" in data:
                lines += 3
            elif "text/plain" in data:
                lines += len(str(data["text/plain"]).splitlines())
    return lines


def figures(cell) -> int:
    return sum(any(t in out.get("data", {}) for t in IMAGE_TYPES) for out in cell.get("outputs", []))


def weight(cell) -> int:
    if cell.cell_type == "markdown":
        return len(cell.source) + 150 * cell.source.count("$$")
    return FIGURE * figures(cell) + LINE * output_lines(cell)


def propose(nb) -> list[str]:
    """The slide type the rules give each cell of ``nb``."""
    block = exercise_block(nb)
    kinds, full, predict = [], 0, False
    for i, cell in enumerate(nb.cells):
        w = weight(cell)
        if i in block:
            kind = "skip"
        elif i == 0:
            kind, w = "slide", 0
        elif cell.cell_type == "markdown":
            heading = HEADING2.search(cell.source)
            if heading:
                kind, w = "slide", len(cell.source) - heading.start()
            elif HEADING3.match(cell.source):
                kind = "subslide"
            else:
                kind = "subslide" if full + w > BUDGET else "-"
        elif cell.cell_type == "code":
            if INSTALL_TAG in cell.metadata.get("tags", []) or w == 0:
                kind = "skip"
            elif output_lines(cell) > LONG_OUTPUT:
                kind = "notes"
            elif figures(cell):
                kind = "subslide" if full + w > BUDGET else "-"
            else:  # printed numbers stay with the claim before them
                kind = "-"
            if kind == "-" and predict:  # the answer to a **Predict.** question appears at the next key press
                kind = "fragment"
            predict = predict and kind == "skip"
        else:  # raw cells
            kind = "skip"
        if cell.cell_type == "markdown" and i not in block:
            predict = PREDICT in cell.source
        if kind in ("slide", "subslide"):
            full = w
        elif kind in ("-", "fragment"):
            full += w
        kinds.append(kind)
    return kinds


def tag(nb, retag: bool = False) -> int:
    """Give each cell of ``nb`` that has no slide type (every cell, with ``retag``) the one the rules give;
    returns how many cells changed. Only ``metadata.slideshow`` is touched."""
    changed = 0
    for cell, kind in zip(nb.cells, propose(nb)):
        if (retag or slide_type(cell) is None) and slide_type(cell) != kind:
            cell.metadata["slideshow"] = {"slide_type": kind}
            changed += 1
    return changed


# The deck.

class LectureCells(Preprocessor):
    """The notebook as the deck shows it: skipped cells gone, code hidden, the title slide made, headings that
    follow prose split off, the closing exercise slide added."""

    def preprocess(self, nb, resources):
        lesson = Path(resources["lesson"])
        found = exercises(nb, lesson.name)
        missing = [i for i, c in enumerate(nb.cells) if slide_type(c) not in SLIDE_TYPES]
        if missing:  # a lesson not yet tagged still gets a deck; tests/test_slides.py asks for the metadata
            print(f"{lesson.name}: {len(missing)} of {len(nb.cells)} cells have no slide type "
                  f"(metadata.slideshow.slide_type), the rules' are used; run `python tools/slides.py --tag notebooks/{lesson.name}`", file=sys.stderr)
            for i in missing:
                nb.cells[i].metadata.pop("slideshow", None)
            tag(nb)
        cells = []
        for i, cell in enumerate(nb.cells):
            kind = slide_type(cell)
            if kind == "skip":
                continue
            if i == 0:
                cells += title_cells(cell, nb)
                continue
            if cell.cell_type == "code" and SHOW_CODE_TAG not in cell.metadata.get("tags", []):
                cell.metadata["transient"] = {"remove_source": True}
            heading = HEADING2.search(cell.source) if cell.cell_type == "markdown" else None
            if heading and heading.start() > 0 and kind in ("slide", "subslide"):
                before = copy.deepcopy(cell)
                before.source = cell.source[:heading.start()].rstrip()
                before.metadata["slideshow"] = {"slide_type": "-"}
                if "id" in before:
                    before.id = f"{cell.id}-before"[-64:]
                cell.source = cell.source[heading.start():]
                cells.append(before)
            cells.append(cell)
        if found:
            cells.append(closing_cell(lesson, found))
        nb.cells = cells
        return nb, resources


def _markdown(source: str, kind: str):
    return nbformat.v4.new_markdown_cell(source, metadata={"slideshow": {"slide_type": kind}})


def title_cells(first, nb) -> list:
    """The title slide (title and **Answers** line) and a subslide with the rest of the first cell."""
    title, answers = first.source.splitlines()[0], answers_of(nb)
    rest = LINK.sub("", first.source.partition("\n")[2]).replace(answers, "").strip()
    rest = re.sub(r"\n{3,}", "\n\n", rest)
    cells = [_markdown(f"{title}\n\n{answers}".strip(), "slide")]
    if rest:
        cells.append(_markdown(rest, "subslide"))
    return cells


def closing_cell(lesson: Path, found) -> nbformat.NotebookNode:
    student = EXERCISES / lesson.name
    items = "\n".join(f"- **Exercise {e.number}** ({e.level}): {e.title}" for e in found)
    return _markdown(
        "## Exercises\n\n"
        f"In the student copy, `exercises/{lesson.name}`: each exercise has a cell for your answer and a check "
        f"that tells you when it is right.\n\n{items}\n\n"
        f"[Open the student copy in Colab]({colab_url(student)}). "
        f"The worked solutions are in the lesson, `notebooks/{lesson.name}`.", "slide")


TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}
<script>
window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\(', '\\)']], displayMath: [['$$', '$$'], ['\\[', '\\]']],
        processEscapes: true, processEnvironments: true},
};
</script>
<script defer src="{{ resources.mathjax_url }}"></script>
<style type="text/css">
.reveal .slides { text-align: left; }
.reveal .slides section > section { max-height: 100%; overflow-y: auto; }  /* a slide that overflows scrolls */
.reveal .slides h1, .reveal .slides h2, .reveal .slides h3 { text-transform: none; }
.reveal h1 { font-size: 1.9em; } .reveal h2 { font-size: 1.45em; } .reveal h3 { font-size: 1.15em; }
.reveal p, .reveal li { line-height: 1.35; }
.reveal .jp-RenderedImage img, .reveal .jp-OutputArea-output img {
  max-height: 470px; width: auto; max-width: 100%; margin: 0.2em auto;
}
.reveal .jp-OutputArea-output pre { font-size: 0.75em; line-height: 1.25; white-space: pre; overflow-x: auto; }
.reveal table { font-size: 0.7em; }
.reveal mjx-container[display="true"] { margin: 0.4em 0 !important; }
</style>
{%- endblock html_head_js_mathjax -%}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true, progress: true, hash: true, center: false, slideNumber: 'c/t',
  transition: "{{ resources.reveal.transition }}",
  width: {{ resources.reveal.width }}, height: {{ resources.reveal.height }},
  plugins: [RevealNotes],
});
</script>
{% endblock footer_js %}
"""


def exporter() -> SlidesExporter:
    slides = SlidesExporter(extra_loaders=[DictLoader({"course_slides.html.j2": TEMPLATE})],
                            template_file="course_slides.html.j2",
                            exclude_input_prompt=True, exclude_output_prompt=True,
                            reveal_url_prefix="../_static/revealjs", reveal_theme="white",
                            reveal_transition="none", reveal_width="1280", reveal_height="800",
                            mathjax_url="../_static/mathjax/tex-chtml.js")
    return slides


def reveal_source() -> Path:
    spec = importlib.util.find_spec("sphinx_revealjs")
    if spec is None:
        raise ImportError("the slides need the sphinx-revealjs package (it ships reveal.js): pip install -e '.[site]'")
    return Path(spec.submodule_search_locations[0]) / "_static" / "revealjs"


def mathjax_source() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None:
        raise ImportError("the slides need the sphinx-mathjax-offline package: pip install -e '.[site]'")
    return Path(spec.submodule_search_locations[0]) / "static" / "mathjax"


def copy_assets() -> None:
    """reveal.js (its dist/ and the speaker-notes plugin) and MathJax into build/site/_static/, where they are
    missing or differ; the site's build copies the same MathJax there."""
    reveal = reveal_source()
    wanted = [(path, STATIC / "revealjs" / path.relative_to(reveal)) for path in (reveal / "dist").rglob("*")
              if path.is_file() and not path.name.endswith(".map") and "esm" not in path.name]
    wanted.append((reveal / "plugin" / "notes" / "notes.js", STATIC / "revealjs" / "plugin" / "notes" / "notes.js"))
    wanted += [(path, STATIC / "mathjax" / path.relative_to(mathjax_source())) for path in mathjax_source().rglob("*")
               if path.is_file()]
    for source, target in wanted:
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def build_deck(lesson: Path) -> Path:
    nb = nbformat.read(lesson, as_version=4)
    resources = {"lesson": str(lesson), "metadata": {"name": title_of(nb)}}
    # Before the exporter's own preprocessors, which turn the slide types into the deck's sections.
    nb, resources = LectureCells().preprocess(nb, resources)
    html, _ = exporter().from_notebook_node(nb, resources=resources)
    target = deck_of(lesson)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


def stale(lesson: Path) -> bool:
    deck = deck_of(lesson)
    return not deck.exists() or deck.stat().st_mtime < max(Path(lesson).stat().st_mtime, Path(__file__).stat().st_mtime)


def build(paths: list[Path] | None = None, fresh: bool = False, quiet: bool = False) -> list[Path]:
    """Build the decks of ``paths`` (default: every lesson) that are missing or older than their lesson;
    returns every deck. Decks of lessons that are gone are removed."""
    paths = lessons() if paths is None else [Path(p) for p in paths]
    copy_assets()
    for lesson in paths:
        if fresh or stale(lesson):
            start = time.perf_counter()
            deck = build_deck(lesson)
            if not quiet:
                seconds = time.perf_counter() - start
                print(f"{deck.relative_to(ROOT)}  {deck.stat().st_size / 1e6:.1f} MB  {seconds:.1f} s")
    current = {deck_of(p).name for p in lessons()}
    for deck in DECKS.glob("*.html"):
        if deck.name not in current:
            deck.unlink()
    return [deck_of(p) for p in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--fresh", action="store_true", help="build every deck, not only the stale ones")
    parser.add_argument("--tag", action="store_true", help="give cells without slide metadata the rules' slide type")
    parser.add_argument("--retag", action="store_true",
                        help="give every cell the rules' slide type (undoes hand edits)")
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or lessons()
    if args.tag or args.retag:
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            changed = tag(nb, retag=args.retag)
            if changed:
                nbformat.write(nb, path)
            print(f"{path.name}: slide metadata on {changed} cells")
        return 0
    start = time.perf_counter()
    decks = build(paths, fresh=args.fresh)
    print(f"{len(decks)} decks up to date in {time.perf_counter() - start:.1f} s: {DECKS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
