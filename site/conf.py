"""Sphinx configuration of the course's website.

``tools/build_site.py`` copies this folder and the executed notebooks into ``build/site_src`` and builds
``build/site`` from there: the notebooks are shown as committed (never executed here), the math is
typeset by a copy of MathJax served from the site itself, and nothing is fetched from the network.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

from docutils import nodes
from sphinx import addnodes

HERE = Path(__file__).resolve().parent
# In the staged copy the repository is two levels up (build/site_src); when read in place, one.
ROOT = next(p for p in (HERE.parent, HERE.parent.parent) if (p / "pyproject.toml").exists())
sys.path.insert(0, str(ROOT / "tools"))
from colab import BRANCH, COLAB, repository_url  # noqa: E402  (the repository's address, kept in pyproject.toml)

REPOSITORY = repository_url()

project = "Variational autoencoders, from Bayes' rule to the ELBO"
author = "the course's authors"
copyright = "the course's authors, under the MIT License"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
# MathJax 3 as shipped by the sphinx-mathjax-offline package: its static/ folder holds mathjax/, which
# Sphinx copies to _static/mathjax/, so pages load the renderer (and its fonts) from the site itself.
_spec = importlib.util.find_spec("sphinx-mathjax-offline")
if _spec is None:
    raise ImportError("the site needs the sphinx-mathjax-offline package: pip install -e '.[site]'")
MATHJAX = Path(_spec.submodule_search_locations[0]) / "static"
mathjax_path = "mathjax/tex-chtml.js"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]  # notebooks go from the title (#) to exercises (###) on purpose

# The notebooks are committed executed: show their outputs as they are.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_title = "VAEs, from Bayes' rule to the ELBO"
html_theme = "sphinx_book_theme"
html_static_path = ["_static", str(MATHJAX)]
html_css_files = ["course.css"]
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": BRANCH,
    "path_to_docs": "",  # the staged notebooks sit at notebooks/, as in the repository
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "navbar_persistent": [],  # the search field is in the sidebar already
    "footer_content_items": ["copyright.html"],
}


def chapter_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{chapter}`03``` links to notebooks/03_*.ipynb under its own title; plain text if it has not landed yet."""
    env = inliner.document.settings.env
    found = sorted((Path(env.srcdir) / "notebooks").glob(f"{text.strip()}_*.ipynb"))
    if not found:
        return [nodes.emphasis(text=f"lesson {text} (in preparation)")], []
    target = f"/notebooks/{found[0].stem}"
    node = addnodes.pending_xref(rawtext, refdomain="std", reftype="doc", reftarget=target,
                                 refexplicit=False, refwarn=True, refdoc=env.docname)
    node += nodes.inline(rawtext, target, classes=["xref", "std", "std-doc"])
    return [node], []


def repository_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{repository}`text``` links ``text`` to the course's repository, ``{repository}`text <folder>``` to a
    folder in it (the repository's address is kept in pyproject.toml)."""
    label, _, folder = text.partition(" <")
    uri = f"{REPOSITORY}/tree/{BRANCH}/{folder.rstrip('>')}" if folder else REPOSITORY
    return [nodes.reference(rawtext, label, refuri=uri)], []


#: Where a chapter's slide deck is, from its page (notebooks/NN_name.html); tools/slides.py builds the decks
#: into build/site/slides/ after Sphinx has built the pages.
SLIDES_LINK_TEXT = "Lecture slides"


def _deck_reference(stem: str, text: str, prefix: str) -> nodes.reference:
    return nodes.reference("", text, refuri=f"{prefix}slides/{stem}.html", classes=["slides-link"])


def add_slide_links(app, doctree):
    """A chapter's page gets a link to its slide deck beside its Colab link; the landing page gets a section
    that lists every deck, after the list of chapters."""
    docname = app.env.docname
    if docname.startswith("notebooks/"):
        stem = docname.removeprefix("notebooks/")
        colab = next((ref for ref in doctree.findall(nodes.reference)
                      if ref.get("refuri", "").startswith(COLAB)), None)
        link = _deck_reference(stem, SLIDES_LINK_TEXT, "../")
        if colab is not None:
            colab.parent.insert(colab.parent.index(colab) + 1, nodes.Text(" \u00b7 "))
            colab.parent.insert(colab.parent.index(colab) + 2, link)
        else:  # a notebook not yet given its Colab link: the deck's link goes under the title
            section = next(doctree.findall(nodes.section), None)
            if section is not None and section.children and isinstance(section[0], nodes.title):
                section.insert(1, nodes.paragraph("", "", link))
    elif docname == "index":
        chapters = next((s for s in doctree.findall(nodes.section)
                         if "the-chapters-in-reading-order" in s["ids"]), None)
        if chapters is None:
            return
        lessons = sorted((Path(app.env.srcdir) / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        section = nodes.section(ids=["lecture-slides"], names=["lecture slides"])
        section += nodes.title(text="Lecture slides")
        section += nodes.paragraph(text=(
            "Each chapter is also a slide deck for a lecture: its title and the questions it answers, the "
            "derivations, the figures and the key numbers, one idea per slide, and a closing slide that points to "
            "its exercises. The decks open in any browser from this site, without a network connection; press "
            "F for full screen, S for the speaker notes, Esc for an overview of the slides."))
        items = nodes.bullet_list()
        for lesson in lessons:
            title = json.loads(lesson.read_text(encoding="utf-8"))["cells"][0]["source"]
            title = ("".join(title) if isinstance(title, list) else title).splitlines()[0].removeprefix("# ")
            items += nodes.list_item("", nodes.paragraph("", "", _deck_reference(lesson.stem, title, "")))
        section += items
        chapters.parent.insert(chapters.parent.index(chapters) + 1, section)


#: This file's own digest, a setting that makes Sphinx read every page again when the file changes (it reads
#: again only what changed otherwise, and the functions here change what the pages hold).
course_conf_digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def setup(app):
    app.add_config_value("course_conf_digest", "", "env")
    app.add_role("chapter", chapter_role)
    app.add_role("repository", repository_role)
    # before the table-of-contents collector reads the page (priority 500), so the new section is in it
    app.connect("doctree-read", add_slide_links, priority=400)
    # the landing page is read again at every build, so that its list of decks follows the chapters
    app.connect("env-get-outdated", lambda app, env, added, changed, removed: ["index"])
