"""The course's website, looked at in headless Chromium, and the notebooks' Colab link and install cell.

The site is built (or brought up to date) from the committed notebooks with tools/build_site.py, and
Chromium is installed with apt-get if it is missing and we are root (tools/chromium.py). Starting from
the landing page, the browser follows each page's "next" link through every chapter and checks that
the page renders, that its math is typeset, that its figures load, and that nothing is fetched from the
network. A screenshot of every page is saved in build/site/_screenshots/.
"""
from __future__ import annotations

import re
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from PIL import Image, ImageStat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402
import chromium  # noqa: E402
import colab  # noqa: E402

LESSONS = build_site.chapters()
SHOTS = build_site.SITE / "_screenshots"

#: What the browser reports of a page, once its images and math are done.
PAGE_REPORT = """(() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const prose = article.cloneNode(true);
  prose.querySelectorAll('pre, code, .cell_output, .output, mjx-container, script, style').forEach(e => e.remove());
  const math = [...article.querySelectorAll('.math')];
  const figure = article.querySelector('.cell_output img');
  const table = article.querySelector('table');
  const y = e => e ? e.getBoundingClientRect().top + window.scrollY : null;
  return {
    url: location.href,
    title: document.title,
    heading: (article.querySelector('h1') || {textContent: ''}).textContent.replace(/[#¶]\\s*$/, '').trim(),
    text: article.innerText.length,
    prose: prose.textContent,
    math: math.length,
    untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    typeset: article.querySelectorAll('mjx-container').length,
    math_errors: [...article.querySelectorAll('mjx-merror')].map(e => e.textContent),
    images: [...article.querySelectorAll('img')].map(i => ({src: i.src, loaded: i.complete && i.naturalWidth > 0})),
    figures: article.querySelectorAll('.cell_output img').length,
    next: (document.querySelector('a.right-next') || {}).href || null,
    prev: (document.querySelector('a.left-prev') || {}).href || null,
    colab: (article.querySelector('a[href^="https://colab.research.google.com/"]') || {}).href || null,
    look_at: Math.max(0, (y(figure) ?? y(table) ?? 0) - 160),  // the first figure, else the first table
  };
})()"""


def title_of(lesson: Path) -> str:
    return nbformat.read(lesson, as_version=4).cells[0].source.splitlines()[0].removeprefix("# ").strip()


def page_of(lesson: Path) -> Path:
    return build_site.SITE / "notebooks" / f"{lesson.stem}.html"


@pytest.fixture(scope="module")
def site() -> Path:
    assert LESSONS, f"no notebooks/NN_*.ipynb in {build_site.NOTEBOOKS}: the site would have no chapters"
    return build_site.build(quiet=True)


@pytest.fixture(scope="module")
def walk(site):
    """Every page from the landing page on, reached by clicking "next": (reports, requests, failures, errors)."""
    with chromium.Browser(chromium.find_or_install()) as browser:
        browser.goto(site.as_uri())
        reports = []
        while True:
            report = browser.evaluate(PAGE_REPORT)
            name = "00_index" if not reports else Path(report["url"]).stem
            report["shots"] = [browser.screenshot(SHOTS / f"{name}.png"),
                               browser.screenshot(SHOTS / f"{name}-more.png", y=report["look_at"])]
            reports.append(report)
            if not report["next"] or len(reports) > len(LESSONS):
                break
            mark = len(browser.events)
            browser.evaluate("setTimeout(() => document.querySelector('a.right-next').click(), 0), true")
            browser.wait_for_load(mark)
        events = list(browser.events)
    urls = {p["requestId"]: p["request"]["url"] for m, p in events if m == "Network.requestWillBeSent"}
    failures = [(urls.get(p["requestId"]), p.get("errorText")) for m, p in events if m == "Network.loadingFailed"]
    errors = [p["exceptionDetails"].get("exception", {}).get("description") for m, p in events
              if m == "Runtime.exceptionThrown"]
    return reports, sorted(set(urls.values())), failures, errors


def test_site_has_a_landing_page_and_a_page_per_chapter(site):
    assert site == build_site.SITE / "index.html" and site.exists()
    for lesson in LESSONS:
        assert page_of(lesson).exists(), f"no page for {lesson.name}"
        assert title_of(lesson) in page_of(lesson).read_text(encoding="utf-8").replace("’", "'").replace("&#39;", "'")


class Assets(HTMLParser):
    """The addresses a page loads by itself: scripts, style sheets, images."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if tag == "link" and attrs.get("href") and {"stylesheet", "preload", "icon"} & set((attrs.get("rel") or "").split()):
            self.loaded.append(attrs["href"])


def test_math_renderer_is_served_by_the_site_not_a_cdn(site):
    assert (build_site.SITE / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000
    pages = sorted(build_site.SITE.rglob("*.html"))
    assert len(pages) > len(LESSONS)
    for page in pages:
        parser = Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        remote = [src for src in parser.loaded if re.match(r"(https?:)?//", src)]
        assert not remote, f"{page.relative_to(build_site.SITE)} loads {remote} from the network"
        if page in (site, *map(page_of, LESSONS)):
            assert any(src.split("?")[0].endswith("_static/mathjax/tex-chtml.js") for src in parser.loaded), page


def test_pages_render(walk):
    reports, _, _, errors = walk
    assert not errors, f"JavaScript errors: {errors}"
    for report in reports:
        heading = report["heading"].replace("’", "'")
        assert heading and heading in report["title"].replace("’", "'"), report["url"]
        assert report["text"] > 300, f"{report['url']} shows only {report['text']} characters"


#: TeX left as text: display delimiters, or a backslash command such as \frac or \mathbb.
RAW_TEX = re.compile(r"\$\$|\\[A-Za-z]{2,}|\\[()\[\]]")


def test_math_is_typeset(walk):
    reports = walk[0]
    assert reports[0]["math"] > 0, "the landing page's formulas are not marked as math"
    assert any(r["math"] for r in reports[1:]), "no chapter has math"
    for report in reports:
        assert not report["untypeset"], f"{report['url']}: math left untypeset: {report['untypeset'][:3]}"
        assert not report["math_errors"], f"{report['url']}: MathJax errors: {report['math_errors'][:3]}"
        assert report["typeset"] >= report["math"]
        raw = RAW_TEX.findall(report["prose"])
        assert not raw, f"{report['url']}: raw TeX in the text: {raw[:5]}"


def test_figures_load(walk):
    reports = walk[0]
    assert sum(r["figures"] for r in reports[1:]) > 0, "no chapter shows a figure"
    for report in reports:
        broken = [i["src"] for i in report["images"] if not i["loaded"]]
        assert not broken, f"{report['url']}: images that did not load: {broken}"


def test_next_links_lead_through_the_chapters_in_order(walk, site):
    reports = walk[0]
    expected = [site.as_uri()] + [page_of(lesson).as_uri() for lesson in LESSONS]
    assert [r["url"].split("#")[0] for r in reports] == expected
    for lesson, report in zip(LESSONS, reports[1:]):
        assert report["heading"].replace("’", "'") == title_of(lesson)
    assert reports[-1]["next"] is None
    assert [r["prev"] for r in reports[1:]] == expected[:-1]


def test_nothing_is_fetched_from_the_network(walk):
    _, requested, failures, _ = walk
    remote = [url for url in requested if not url.startswith(("file:", "data:", "about:", "blob:"))]
    assert not remote, f"requests that leave the machine: {remote}"
    assert not failures, f"requests that failed: {failures}"


def test_chapters_open_with_their_colab_link(walk):
    for lesson, report in zip(LESSONS, walk[0][1:]):
        assert report["colab"] == colab.colab_url(lesson)


def test_screenshots_show_the_pages(walk):
    for report in walk[0]:
        for shot in report["shots"]:
            image = Image.open(shot).convert("L")
            assert image.size == (1280, 1000)
            assert ImageStat.Stat(image).stddev[0] > 10, f"{shot} is blank"


# The "Open in Colab" link and the install cell.

def test_every_notebook_opens_with_its_colab_link_and_install_cell():
    assert LESSONS
    for lesson in LESSONS:
        nb = nbformat.read(lesson, as_version=4)
        assert not colab.add_colab(nb, lesson), \
            f"{lesson.name}: its Colab link or install cell is missing or stale; run `make course`"
        assert colab.link_line(colab.colab_url(lesson)) in nb.cells[0].source
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert colab.INSTALL_TAG in first_code.metadata["tags"] and first_code.source == colab.install_source()


def run_install_cell(monkeypatch, on_colab: bool) -> list[tuple[str, str]]:
    calls = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: calls.append((name, line)))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(TransformerManager().transform_cell(colab.install_source()), {"get_ipython": lambda: shell})
    return calls


def test_install_cell_installs_on_colab_and_does_nothing_elsewhere(monkeypatch):
    assert run_install_cell(monkeypatch, on_colab=False) == []
    calls = run_install_cell(monkeypatch, on_colab=True)
    assert [name for name, _ in calls] == ["pip"] * len(calls) and calls
    assert calls[-1][1].endswith(f'--no-deps "vae-helpers @ git+{colab.repository_url()}"')
    assert '"pytorch-lightning' in " ".join(line for _, line in calls)


def test_add_colab_adds_once_and_updates_in_place():
    path = colab.ROOT / "notebooks" / "99_example.ipynb"
    nb = new_notebook(cells=[new_markdown_cell("# 99 · Example\n\nIntro."), new_markdown_cell("Text"),
                             new_code_cell("import torch")])
    assert colab.add_colab(nb, path)
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown", "code", "code"]
    assert nb.cells[0].source == f"# 99 · Example\n\n[Open in Colab]({colab.colab_url(path)})\n\nIntro."
    assert not colab.add_colab(nb, path)
    nb.cells[0].source = nb.cells[0].source.replace("99_example", "98_old")
    nb.cells[2].source = "old install cell"
    assert colab.add_colab(nb, path)
    assert nb.cells[0].source.count("Open in Colab") == 1 and "98_old" not in nb.cells[0].source
    assert nb.cells[2].source == colab.install_source() and len(nb.cells) == 4


def test_add_colab_rejects_a_notebook_without_a_title():
    nb = new_notebook(cells=[new_code_cell("import torch")])
    with pytest.raises(ValueError, match="first cell must be a markdown cell"):
        colab.add_colab(nb, colab.ROOT / "notebooks" / "99_example.ipynb")


def test_repository_url_must_be_a_github_repository(monkeypatch):
    monkeypatch.setattr(colab, "project", lambda: {"urls": {"Repository": "example.org/course"}})
    with pytest.raises(ValueError, match=r"\[project.urls\] Repository"):
        colab.repository_url()
