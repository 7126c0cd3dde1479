"""The examples in docs/*.md and the docstrings of neurenix.optim run as written."""
import doctest
import pathlib

import pytest

import neurenix.autograd._grad_mode
import neurenix.autograd._tensor
import neurenix.nn.module
import neurenix.optim.grad_tools
import neurenix.optim.sgd

DOCS = sorted((pathlib.Path(__file__).resolve().parents[1] / "docs").glob("*.md"))


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_doc_page_examples(page):
    res = doctest.testfile(str(page), module_relative=False,
                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0


@pytest.mark.parametrize("mod", [neurenix.optim.sgd, neurenix.optim.grad_tools, neurenix.autograd._tensor,
                                 neurenix.autograd._grad_mode, neurenix.nn.module])
def test_docstring_examples(mod):
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0
