"""The course's website, looked at in headless Chromium, and the notebooks' Colab link and install cell.

The site is built (or brought up to date) from the committed notebooks with tools/build_site.py, and
Selenium drives Debian's Chromium through its ChromeDriver; both are installed with apt-get if they are
missing and we are root. Starting from the landing page, the browser follows each page's "next" link
through every chapter and checks that the page renders, that its math is typeset, that its figures load,
and that it fetches nothing from outside the site's own files. A screenshot of every page is saved in
build/site/_screenshots/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from PIL import Image, ImageStat
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402
import colab  # noqa: E402

LESSONS = build_site.chapters()
SHOTS = build_site.SITE / "_screenshots"

#: The programs Selenium needs (the browser, then its driver) and the Debian packages that hold them.
PROGRAMS = ("chromium", "chromedriver")
PACKAGES = ("chromium", "chromium-driver", "fonts-liberation")
WIDTH, HEIGHT = 1280, 1000
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--mute-audio",
         f"--window-size={WIDTH},{HEIGHT}")
#: Addresses that stay on the machine: the site's files and what a page makes for itself.
LOCAL = ("file:", "data:", "about:", "blob:")

#: Waits (asynchronously) until the page has loaded, its images are done and MathJax has typeset.
SETTLED = """const done = arguments[arguments.length - 1];
new Promise(r => document.readyState === 'complete' ? r() : addEventListener('load', r))
  .then(() => Promise.all([
    ...[...document.images].filter(i => !i.complete).map(i => new Promise(r => { i.onload = i.onerror = r; })),
    window.MathJax && MathJax.startup && MathJax.startup.promise ? MathJax.startup.promise : null,
  ]))
  .then(() => done(true), e => done(String(e)));"""

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


def chromium_and_driver() -> tuple[str, str]:
    """The paths of Chromium and ChromeDriver; installs Debian's packages with apt-get first if one is
    missing and we are root. Raises RuntimeError, saying what to do, when they cannot be had."""
    if all(map(shutil.which, PROGRAMS)):
        return tuple(map(shutil.which, PROGRAMS))
    missing = " and ".join(name for name in PROGRAMS if not shutil.which(name))
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"testing the site needs {missing}, not found on PATH: install Debian's packages with "
                           f"`sudo apt-get install {' '.join(PACKAGES)}` and run again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", *PACKAGES]
    log = []
    for command in (install, ["apt-get", "update", "-q"], install):  # the package lists may be missing or old
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        log.append(f"$ {' '.join(command)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        if command is install and result.returncode == 0 and all(map(shutil.which, PROGRAMS)):
            return tuple(map(shutil.which, PROGRAMS))
    raise RuntimeError(f"testing the site needs {missing}, and installing {' '.join(PACKAGES)} with apt-get "
                       "failed:\n" + "\n".join(log))


def start_chromium() -> webdriver.Chrome:
    """Headless Chromium under ChromeDriver, keeping the logs the checks read."""
    browser, driver = chromium_and_driver()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    # The performance log holds the DevTools network events, so every request a page makes, whatever
    # its kind or outcome; the browser log holds the page's uncaught JavaScript errors.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # Both paths are given, so Selenium never tries to download a browser or a driver.
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    # Even headless, the window keeps room for a toolbar; this gives the page itself WIDTH x HEIGHT.
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    chrome.set_page_load_timeout(60)
    chrome.set_script_timeout(60)
    return chrome


def screenshot(chrome: webdriver.Chrome, path: Path, y: float = 0) -> Path:
    """A PNG of the window scrolled to ``y``, once the scroll has been painted."""
    chrome.execute_async_script("const [y, done] = arguments; scrollTo(0, y); requestAnimationFrame(() => done())", y)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert chrome.save_screenshot(str(path)), f"Chromium could not take a screenshot for {path}"
    return path


def network_since_last_read(chrome: webdriver.Chrome) -> tuple[list[str], list[tuple[str, str]]]:
    """The addresses requested since the last call, and the requests that failed (address, error)."""
    events = [json.loads(entry["message"])["message"] for entry in chrome.get_log("performance")]
    sent = [e["params"] for e in events if e["method"] == "Network.requestWillBeSent"]
    # A redirect sends the same request again to a new address: each address counts, the last one fails.
    last = {p["requestId"]: p["request"]["url"] for p in sent}
    failed = [(last.get(e["params"]["requestId"]), e["params"].get("errorText")) for e in events
              if e["method"] == "Network.loadingFailed"]
    return sorted({p["request"]["url"] for p in sent}), failed


@pytest.fixture(scope="module")
def site() -> Path:
    assert LESSONS, f"no notebooks/NN_*.ipynb in {build_site.NOTEBOOKS}: the site would have no chapters"
    return build_site.build(quiet=True)


@pytest.fixture(scope="module")
def walk(site) -> list[dict]:
    """Every page from the landing page on, reached by clicking "next": what the browser reports of each,
    with its screenshots, the addresses it requested, the requests that failed and its JavaScript errors."""
    chrome = start_chromium()
    try:
        chrome.get(site.as_uri())
        reports = []
        while True:
            settled = chrome.execute_async_script(SETTLED)
            assert settled is True, f"{chrome.current_url} did not finish loading: {settled}"
            report = chrome.execute_script(f"return {PAGE_REPORT}")
            name = "00_index" if not reports else Path(report["url"].split("#")[0]).stem
            report["shots"] = [screenshot(chrome, SHOTS / f"{name}.png"),
                               screenshot(chrome, SHOTS / f"{name}-more.png", y=report["look_at"])]
            # Read after the screenshots, so that what the page fetches late is counted as its own.
            report["requested"], report["failed"] = network_since_last_read(chrome)
            report["errors"] = [e["message"] for e in chrome.get_log("browser") if e.get("source") == "javascript"]
            reports.append(report)
            if not report["next"] or len(reports) > len(LESSONS):
                break
            page = chrome.find_element(By.TAG_NAME, "html")
            chrome.find_element(By.CSS_SELECTOR, "a.right-next").click()
            WebDriverWait(chrome, 60).until(staleness_of(page), f"clicking next on {report['url']} led nowhere")
    finally:
        chrome.quit()
    return reports


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
    """Each page shows its chapter's heading, in its title too, and enough text, with no JavaScript error."""
    for report in walk:
        assert not report["errors"], f"{report['url']}: JavaScript errors: {report['errors']}"
        heading = report["heading"].replace("’", "'")
        assert heading and heading in report["title"].replace("’", "'"), report["url"]
        assert report["text"] > 300, f"{report['url']} shows only {report['text']} characters"


#: TeX left as text: display delimiters, or a backslash command such as \frac or \mathbb.
RAW_TEX = re.compile(r"\$\$|\\[A-Za-z]{2,}|\\[()\[\]]")


def test_math_is_typeset(walk):
    reports = walk
    assert reports[0]["math"] > 0, "the landing page's formulas are not marked as math"
    assert any(r["math"] for r in reports[1:]), "no chapter has math"
    for report in reports:
        assert not report["untypeset"], f"{report['url']}: math left untypeset: {report['untypeset'][:3]}"
        assert not report["math_errors"], f"{report['url']}: MathJax errors: {report['math_errors'][:3]}"
        assert report["typeset"] >= report["math"]
        raw = RAW_TEX.findall(report["prose"])
        assert not raw, f"{report['url']}: raw TeX in the text: {raw[:5]}"


def test_figures_load(walk):
    reports = walk
    assert sum(r["figures"] for r in reports[1:]) > 0, "no chapter shows a figure"
    for report in reports:
        broken = [i["src"] for i in report["images"] if not i["loaded"]]
        assert not broken, f"{report['url']}: images that did not load: {broken}"


def test_next_links_lead_through_the_chapters_in_order(walk, site):
    reports = walk
    expected = [site.as_uri()] + [page_of(lesson).as_uri() for lesson in LESSONS]
    assert [r["url"].split("#")[0] for r in reports] == expected
    for lesson, report in zip(LESSONS, reports[1:]):
        assert report["heading"].replace("’", "'") == title_of(lesson)
    assert reports[-1]["next"] is None
    assert [r["prev"] for r in reports[1:]] == expected[:-1]


def test_nothing_is_fetched_from_the_network(walk):
    """Every request a page makes, as the browser's network log records it, is for a local address and
    succeeds. The log must show the page itself and its MathJax, or it would see nothing at all."""
    for report in walk:
        page = report["url"].split("#")[0]
        assert page in report["requested"], f"the network log does not show {page} being loaded: {report['requested']}"
        assert any(url.split("?")[0].endswith("_static/mathjax/tex-chtml.js") for url in report["requested"]), \
            f"the network log does not show {page} loading MathJax: {report['requested']}"
        remote = [url for url in report["requested"] if not url.startswith(LOCAL)]
        assert not remote, f"{page} fetches from outside the site: {remote}"
        assert not report["failed"], f"{page}: requests that failed: {report['failed']}"


def test_chapters_open_with_their_colab_link(walk):
    for lesson, report in zip(LESSONS, walk[1:]):
        assert report["colab"] == colab.colab_url(lesson)


def test_screenshots_show_the_pages(walk):
    for report in walk:
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
