"""Sphinx configuration of the course's website.

``tools/build_site.py`` copies this folder and the executed notebooks into ``build/site_src`` and builds
``build/site`` from there: the notebooks are shown as committed (never executed here), the math is
typeset by a copy of MathJax served from the site itself, and nothing is fetched from the network.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from docutils import nodes
from sphinx import addnodes

HERE = Path(__file__).resolve().parent
# In the staged copy the repository is two levels up (build/site_src); when read in place, one.
ROOT = next(p for p in (HERE.parent, HERE.parent.parent) if (p / "pyproject.toml").exists())
sys.path.insert(0, str(ROOT / "tools"))
from colab import BRANCH, repository_url  # noqa: E402  (the repository's address, kept in pyproject.toml)

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


def setup(app):
    app.add_role("chapter", chapter_role)
    app.add_role("repository", repository_role)
