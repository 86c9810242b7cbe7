"""The lessons' slide decks (tools/slides.py): their metadata, their HTML, and the decks in headless Chromium.

Every cell of every lesson says what it is on a slide (``metadata.slideshow.slide_type``); the exercises are
left out of the deck but for one closing slide that points to the student copy; a deck holds the lesson's
title and the line naming the learner's questions it answers, and loads nothing from the network. The tools
that rewrite the lessons keep that metadata. In the browser (one session for every deck, set up as in
tests/test_site.py) each deck opens, steps through all its slides, typesets its math, shows its figures and
requests only the site's own files; screenshots of its first two slides are saved in build/site/_screenshots/.
"""
from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image, ImageStat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402
import colab  # noqa: E402
import run_notebooks  # noqa: E402
import slides  # noqa: E402
import student_copies  # noqa: E402
from test_site import (LOCAL, RAW_TEX, SETTLED, SHOTS, Assets, network_since_last_read,  # noqa: E402
                       screenshot, start_chromium)

LESSONS = slides.lessons()


def read(path: Path):
    return nbformat.read(path, as_version=4)


def ids():
    return [p.stem for p in LESSONS]


# The metadata in the lessons.

@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_every_cell_has_a_slide_type(lesson):
    nb = read(lesson)
    missing = [i for i, cell in enumerate(nb.cells) if slides.slide_type(cell) not in slides.SLIDE_TYPES]
    assert not missing, (f"{lesson.name}: cells {missing} have no metadata.slideshow.slide_type; run "
                         f"`python tools/slides.py --tag notebooks/{lesson.name}` and review the result")
    kinds = [slides.slide_type(cell) for cell in nb.cells]
    assert kinds[0] == "slide", f"{lesson.name}: the title cell must start the deck"
    assert kinds.count("slide") >= 3, f"{lesson.name}: only {kinds.count('slide')} slides"


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_exercises_and_setup_are_not_on_slides(lesson):
    nb = read(lesson)
    found = student_copies.exercises(nb, lesson.name)
    assert found, f"{lesson.name} has no exercises"
    exercise_cells = {i for e in found for i in (e.task, e.solution, e.check)} | set(slides.exercise_block(nb))
    shown = [i for i in sorted(exercise_cells) if slides.slide_type(nb.cells[i]) != "skip"]
    assert not shown, f"{lesson.name}: exercise cells {shown} are on slides; the deck's closing slide points to them"
    install = [i for i, c in enumerate(nb.cells) if colab.INSTALL_TAG in c.metadata.get("tags", [])]
    assert install and all(slides.slide_type(nb.cells[i]) == "skip" for i in install)


# The rules of the first pass, on a small lesson.

def small_lesson():
    figure = new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    numbers = new_output("stream", name="stdout", text="ELBO = -3.20 nats\n")
    return new_notebook(cells=[
        new_markdown_cell("# 99 · Example\n\n**Answers** Q3.\n\nIntro."),
        new_code_cell(colab.install_source(), metadata={"tags": [colab.INSTALL_TAG]}),
        new_code_cell("import torch"),
        new_markdown_cell("## 1 · A section\n\nA short claim. **Predict.** What does it print?"),
        new_code_cell("print(elbo)", outputs=[numbers]),
        new_code_cell("plot()", outputs=[figure]),
        new_markdown_cell("A long paragraph. " * 120),
        new_code_cell("plot()", outputs=[figure]),
        new_markdown_cell("### A subsection"),
        new_code_cell("print('\\n'.join(map(str, range(40))))",
                      outputs=[new_output("stream", name="stdout", text="1\n" * 40)]),
        new_markdown_cell("### Exercise 1 (warm-up): Try it\n\nCompute `x` (float)."),
        new_code_cell("# Worked solution\nx = 1.0", metadata={"tags": ["solution"]}),
        new_code_cell("# Check\nassert x == 1.0", metadata={"tags": ["check"]}),
        new_markdown_cell("What the solution shows."),
        new_markdown_cell("## Summary\n\n- It works."),
    ])


def test_rules_give_each_kind_of_cell_its_place():
    kinds = slides.propose(small_lesson())
    assert kinds == ["slide", "skip", "skip", "slide", "fragment", "-", "subslide", "subslide", "subslide", "notes",
                     "skip", "skip", "skip", "skip", "slide"]


def test_tag_keeps_what_was_reviewed_by_hand_and_retag_does_not():
    nb = small_lesson()
    nb.cells[5].metadata["slideshow"] = {"slide_type": "fragment"}
    assert slides.tag(nb) == len(nb.cells) - 1
    assert slides.slide_type(nb.cells[5]) == "fragment" and slides.tag(nb) == 0
    assert slides.tag(nb, retag=True) == 1 and slides.slide_type(nb.cells[5]) == "-"
    assert all(set(c.metadata) <= {"slideshow", "tags"} for c in nb.cells)


def test_an_untagged_lesson_still_gets_a_deck_from_the_rules(capsys):
    nb = small_lesson()
    nb, _ = slides.LectureCells().preprocess(nb, {"lesson": str(slides.NOTEBOOKS / "99_example.ipynb")})
    assert "have no slide type" in capsys.readouterr().err
    assert nb.cells[0].source == "# 99 · Example\n\n**Answers** Q3." and nb.cells[1].source == "Intro."
    assert nb.cells[-1].source.startswith("## Exercises") and "exercises/99_example.ipynb" in nb.cells[-1].source
    assert not any("Worked solution" in c.source or "# Check" in c.source for c in nb.cells)


# The tools that rewrite the lessons keep the metadata.

def test_student_copies_keep_the_slide_metadata():
    lesson = LESSONS[0]
    nb = read(lesson)
    student = student_copies.student_copy(nb, lesson)
    assert [slides.slide_type(c) for c in student.cells] == [slides.slide_type(c) for c in nb.cells]


def test_colab_link_and_install_cell_keep_the_slide_metadata():
    lesson = LESSONS[0]
    nb = read(lesson)
    before = [slides.slide_type(c) for c in nb.cells]
    install = next(c for c in nb.cells if colab.INSTALL_TAG in c.metadata.get("tags", []))
    install.source = "an old install cell"
    nb.cells[0].source = nb.cells[0].source.replace("Open in Colab", "Old link")
    assert colab.add_colab(nb, lesson)
    assert [slides.slide_type(c) for c in nb.cells] == before


def test_executing_a_lesson_keeps_the_slide_metadata(tmp_path, monkeypatch):
    """tools/run_notebooks.py executes in place with nbclient: the metadata comes back as it went in."""
    monkeypatch.setattr(run_notebooks, "add_colab", lambda nb, path: False)  # the path is outside the course
    path = tmp_path / "99_example.ipynb"
    nb = new_notebook(cells=[new_markdown_cell("# 99 · Example", metadata={"slideshow": {"slide_type": "slide"}}),
                             new_code_cell("print(6 * 7)", metadata={"slideshow": {"slide_type": "fragment"}}),
                             new_code_cell("x = 1", metadata={"slideshow": {"slide_type": "skip"}, "tags": ["a"]})])
    nbformat.write(nb, path)
    run_notebooks.execute(path, timeout=120)
    done = read(path)
    assert done.cells[1].outputs[0]["text"] == "42\n"
    assert [slides.slide_type(c) for c in done.cells] == ["slide", "fragment", "skip"]
    assert done.cells[2].metadata["tags"] == ["a"]


# The decks as HTML.

@pytest.fixture(scope="module")
def decks() -> list[Path]:
    assert LESSONS, "no notebooks/NN_*.ipynb"
    return slides.build(quiet=True)


class Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        self.skipping += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.skipping -= tag in ("script", "style")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def text_of(markup: str) -> str:
    parser = Text()
    parser.feed(markup)
    return " ".join(" ".join(parser.parts).split())


def plain(markdown: str) -> str:
    """The words of a markdown line up to its first formula."""
    words = markdown.split("$")[0].replace("**", "").replace("`", "").replace("\n- ", " ")
    return " ".join(words.split())


def longest_plain_run(markdown: str) -> str:
    """The longest stretch of a markdown text with no markup or math in it, whitespace collapsed."""
    runs = [" ".join(run.split()) for run in re.split(r"[$`*_\[\]()<>#|]", markdown)]
    return max(runs, key=len)


def sections(markup: str) -> list[str]:
    """The innermost <section> elements of a deck, in order: its slides."""
    return re.findall(r"<section[^>]*>((?:(?!<section).)*?)</section>", markup, re.S)


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_deck_opens_with_the_title_and_the_questions_and_ends_with_the_exercises(decks, lesson):
    nb = read(lesson)
    markup = slides.deck_of(lesson).read_text(encoding="utf-8")
    slides_ = sections(markup)
    assert len(slides_) >= 8, f"{lesson.name}: only {len(slides_)} slides"
    first, last = text_of(slides_[0]), text_of(slides_[-1])
    assert slides.title_of(nb) in first
    answers = plain(slides.answers_of(nb))
    assert answers.startswith("Answers") and len(answers) > 10 and answers[:80] in first, (answers, first)
    assert last.startswith("Exercises") and f"exercises/{lesson.name}" in last
    found = student_copies.exercises(nb, lesson.name)
    everything = text_of(markup)
    for exercise in found:
        assert f"Exercise {exercise.number} ({exercise.level}): {exercise.title}".replace("`", "") in last
        task = longest_plain_run(nb.cells[exercise.task].source.partition("\n\n")[2])
        assert len(task) >= 20 and task not in everything, \
            f"{lesson.name}: exercise {exercise.number}'s task is on a slide"
    assert "Worked solution" not in everything and "NotImplementedError" not in everything
    assert colab.colab_url(student_copies.EXERCISES / lesson.name) in markup


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_deck_shows_outputs_not_code(decks, lesson):
    markup = slides.deck_of(lesson).read_text(encoding="utf-8")
    assert "jp-InputArea jp-Cell-inputArea" in markup  # the markdown cells
    assert 'class="jp-CodeMirrorEditor' not in markup and "highlight hl-ipython3" not in markup
    assert markup.count("<img") >= figures_shown(lesson)


#: A style sheet that pulls in a file from elsewhere: @import or url() with a network address.
REMOTE_CSS = re.compile(r"""(@import\s+(url\()?|url\()\s*['"]?(https?:)?//""", re.I)


@pytest.mark.parametrize("lesson", LESSONS, ids=ids())
def test_deck_loads_no_asset_from_the_network(decks, lesson):
    markup = slides.deck_of(lesson).read_text(encoding="utf-8")
    parser = Assets()
    parser.feed(markup)
    remote = [src for src in parser.loaded if not src.startswith(("../_static/", "data:"))]
    assert not remote, f"{lesson.name}: the deck loads {remote}"
    assert {"../_static/revealjs/dist/reveal.js", "../_static/mathjax/tex-chtml.js"} <= set(parser.loaded)
    assert not REMOTE_CSS.findall(markup)
    code = re.sub(r"data:[^\"']*", "", markup).lower()  # the figures' base64 can spell anything
    for name in ("require.js", "jquery", "unpkg.com", "cdnjs", "cdn.jsdelivr"):
        assert name not in code, f"{lesson.name}: the deck mentions {name}"


def test_reveal_and_mathjax_are_served_by_the_site(decks):
    static = slides.STATIC
    for part in ("revealjs/dist/reveal.js", "revealjs/dist/reveal.css", "revealjs/dist/theme/white.css",
                 "revealjs/plugin/notes/notes.js", "mathjax/tex-chtml.js"):
        assert (static / part).stat().st_size > 1000, part
    fonts = re.findall(r"url\(([^)]+)\)", (static / "revealjs/dist/theme/white.css").read_text(encoding="utf-8"))
    for font in fonts:
        assert font.startswith(("./", "data:")), font
    assert sorted(slides.DECKS.glob("*.html")) == sorted(map(slides.deck_of, LESSONS))


def test_chapter_pages_and_the_landing_page_link_to_the_decks():
    index = build_site.build(quiet=True).read_text(encoding="utf-8")
    for lesson in LESSONS:
        page = (build_site.SITE / "notebooks" / f"{lesson.stem}.html").read_text(encoding="utf-8")
        article = page[page.index("<article"):]
        top = article[:article.find("<h2")]  # the chapter's title and what comes before its first section
        link = re.search(r'<a [^>]*href="\.\./slides/([^"]+)"[^>]*>Lecture slides</a>', top)
        assert link and link.group(1) == f"{lesson.stem}.html", f"{lesson.name}: no slides link under the title"
        if "Open in Colab" in top:
            assert re.search(r"Open in Colab</a>\s*·\s*<a [^>]*>Lecture slides</a>", top), lesson.name
        assert f'href="slides/{lesson.stem}.html"' in index
        assert slides.deck_of(lesson).exists()


def test_the_lab_has_rise_for_live_slides():
    """What `jupyter labextension list` reads: the extension's files in this environment's JupyterLab."""
    from importlib.metadata import version
    assert version("jupyterlab-rise")
    package = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-rise" / "package.json"
    assert package.exists(), "jupyterlab-rise is not installed in JupyterLab: `make lab` would have no RISE button"
    assert json.loads(package.read_text(encoding="utf-8"))["name"] == "jupyterlab-rise"
    assert list(package.parent.glob("static/*.js")), "the RISE extension has no code"


# The decks in the browser.

#: Walks the deck from its first slide to its last with Reveal.next(), reporting each slide.
WALK = """const done = arguments[arguments.length - 1];
const report = () => {
  const slide = Reveal.getCurrentSlide();
  const prose = slide.cloneNode(true);
  prose.querySelectorAll('pre, code, mjx-container, script, style, aside').forEach(e => e.remove());
  return {
    at: Object.values(Reveal.getIndices()).slice(0, 2).join('.'),
    typeset: slide.querySelectorAll('mjx-container').length,
    math_errors: [...slide.querySelectorAll('mjx-merror')].map(e => e.textContent),
    prose: prose.textContent,
    images: [...slide.querySelectorAll('img')].map(i => i.complete && i.naturalWidth > 0),
  };
};
Reveal.slide(0, 0);
const seen = [report()];
while (!Reveal.isLastSlide() && seen.length < 1000) { Reveal.next(); seen.push(report()); }
done({total: Reveal.getTotalSlides(), last: Reveal.isLastSlide(), seen});"""


@pytest.fixture(scope="module")
def shown(decks) -> dict[str, dict]:
    """Each deck in Chromium: its walk, the screenshots of its first two slides, its requests and errors."""
    chrome = start_chromium()
    reports = {}
    try:
        for lesson in LESSONS:
            deck = slides.deck_of(lesson)
            chrome.get(deck.as_uri())
            settled = chrome.execute_async_script(SETTLED)
            assert settled is True, f"{deck.name} did not finish loading: {settled}"
            assert chrome.execute_script("return typeof Reveal !== 'undefined' && Reveal.isReady()"), deck.name
            shots = [screenshot(chrome, SHOTS / f"slides-{lesson.stem}-1.png")]
            chrome.execute_script("Reveal.next()")
            shots.append(screenshot(chrome, SHOTS / f"slides-{lesson.stem}-2.png"))
            report = chrome.execute_async_script(WALK)
            report["shots"] = shots
            report["requested"], report["failed"] = network_since_last_read(chrome)
            report["errors"] = [e["message"] for e in chrome.get_log("browser") if e.get("source") == "javascript"]
            reports[lesson.stem] = report
    finally:
        chrome.quit()
    return reports


def test_each_deck_steps_through_all_its_slides(shown):
    for name, report in shown.items():
        assert not report["errors"], f"{name}: JavaScript errors: {report['errors']}"
        visited = {s["at"] for s in report["seen"]}
        assert report["last"] and len(visited) == report["total"] >= 8, (name, report["total"], len(visited))


def test_each_deck_typesets_its_math(shown):
    for name, report in shown.items():
        assert sum(s["typeset"] for s in report["seen"]) > 0, f"{name}: no slide shows typeset math"
        for s in report["seen"]:
            assert not s["math_errors"], f"{name}, slide {s['at']}: MathJax errors {s['math_errors'][:3]}"
            raw = RAW_TEX.findall(s["prose"])
            assert not raw, f"{name}, slide {s['at']}: raw TeX {raw[:5]}"


def figures_shown(lesson: Path) -> int:
    """How many figures the lesson's cells put on slides (not in the notes, not skipped)."""
    on_slides = ("slide", "subslide", "fragment", "-")
    return sum(slides.figures(cell) for cell in read(lesson).cells if slides.slide_type(cell) in on_slides)


def test_each_deck_shows_its_figures(shown):
    assert sum(map(figures_shown, LESSONS)) > 0, "no deck has a figure"
    for name, report in shown.items():
        images = [ok for s in report["seen"] for ok in s["images"]]
        expected = figures_shown(slides.NOTEBOOKS / f"{name}.ipynb")
        assert len(images) >= expected, f"{name}: {len(images)} figures on the slides, the lesson shows {expected}"
        assert all(images), f"{name}: {images.count(False)} of {len(images)} figures did not load"


def test_decks_fetch_nothing_from_the_network(shown):
    for name, report in shown.items():
        deck = slides.deck_of(slides.NOTEBOOKS / f"{name}.ipynb").as_uri()
        requested = report["requested"]
        assert deck in requested, f"the network log does not show {deck} being loaded: {requested}"
        for part in ("_static/revealjs/dist/reveal.js", "_static/mathjax/tex-chtml.js"):
            assert any(url.split("?")[0].endswith(part) for url in requested), f"{name} did not load {part}"
        remote = [url for url in requested if not url.startswith(LOCAL)]
        assert not remote, f"{name} fetches from outside the site: {remote}"
        assert not report["failed"], f"{name}: requests that failed: {report['failed']}"


def test_deck_screenshots_show_the_slides(shown):
    for report in shown.values():
        for shot in report["shots"]:
            image = Image.open(shot).convert("L")
            assert ImageStat.Stat(image).stddev[0] > 10, f"{shot} is blank"
