"""The documentation: every example in docs/*.md runs as written, every page has at least
one, the docstrings of neurenix.optim's examples run, and the Sphinx site builds without a
warning."""
import doctest
import pathlib
import subprocess
import sys

import pytest

import neurenix.optim.grad_tools
import neurenix.optim.sgd

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))

# Pages that need not run an example, each with its reason.  Keep this list tiny: a user
# page without a runnable example is missing part of its documentation.
EXAMPLE_FREE = {
    "index.md": "the table of contents: links to the other pages only",
}


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_doc_page_examples(page):
    res = doctest.testfile(str(page), module_relative=False,
                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"docs/{page.name}: {res.failed} example(s) failed"
    if page.name not in EXAMPLE_FREE:
        assert res.attempted >= 1, (
            f"docs/{page.name} runs no example: add a '>>>' session (doctest) or list the "
            "page in EXAMPLE_FREE with the reason")


def test_example_free_pages_exist():
    names = {p.name for p in DOCS}
    assert set(EXAMPLE_FREE) <= names, sorted(set(EXAMPLE_FREE) - names)


@pytest.mark.parametrize("mod", [neurenix.optim.sgd, neurenix.optim.grad_tools])
def test_docstring_examples(mod):
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0


def test_sphinx_build(tmp_path):
    """docs/ builds as an HTML site (user pages + API reference) with warnings as errors:
    broken cross-references, malformed numpydoc sections, pages missing from the toctree."""
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
           "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"sphinx build failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "html" / "api" / "optimize.html").is_file()
    api = (tmp_path / "html" / "api" / "optimize.html").read_text(encoding="utf-8")
    assert 'id="neurenix.optimize.least_squares"' in api
