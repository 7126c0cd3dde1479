"""Sphinx configuration: the user pages (docs/*.md, MyST) and the API reference
(docs/api.rst, docs/api/*.rst, autodoc + numpydoc).

Build: ``python -m sphinx -b html -W --keep-going docs docs/_build/html`` from the
repository root (``pip install -e ".[docs]"``); ``tests/test_docs.py`` runs the same
build.  To document a new module, add ``docs/api/<name>.rst`` (an ``automodule`` with
``:members:``; its ``__all__`` decides what is shown); a new user page is any
``docs/*.md`` and is picked up by the glob toctree of ``index.md``.
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)     # the checkout's neurenix when it is not installed

project = "neurenix"
author = "the neurenix developers"
copyright = "the neurenix developers"
from neurenix import __version__ as release  # noqa: E402
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: anchors for "page.md#section" links, and ``$...$`` not needed
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

# autodoc / numpydoc
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autosummary_generate = False
numpydoc_show_class_members = False     # autodoc lists the members once
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"neurenix {release}"


def _results_links(app, docname, source):
    """The user pages link to ``../benchmarks/RESULTS.md`` (right on GitHub and in a
    checkout); in the site that file is the page ``results`` (docs/results.rst)."""
    source[0] = source[0].replace("](../benchmarks/RESULTS.md", "](results.rst")


def setup(app):
    app.connect("source-read", _results_links)
