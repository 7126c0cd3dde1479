"""docs/tutorials.md runs verbatim: its ```python blocks, in order, as one script.

A ```text block right after a code block is the output that block must print.
The digits classifier of tutorial 1 must reach 95 % test accuracy.
"""
import contextlib
import io
import pathlib
import re

import pytest

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "tutorials.md"


def _blocks():
    text = PAGE.read_text()
    out = []
    for m in re.finditer(r"```(python|text)\n(.*?)```", text, flags=re.S):
        kind, body = m.group(1), m.group(2)
        if kind == "python":
            out.append([body, None])
        elif out and out[-1][1] is None:
            out[-1][1] = body
    return out


def test_tutorial_page_runs_verbatim():
    pytest.importorskip("sklearn")
    blocks = _blocks()
    assert len(blocks) >= 8
    ns = {"__name__": "__tutorial__"}
    for i, (code, expected) in enumerate(blocks):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{PAGE.name}[block {i}]", "exec"), ns)
        if expected is not None:
            assert expected.strip() in buf.getvalue(), f"block {i} printed {buf.getvalue()!r}"
    assert ns["accuracy"] >= 0.95
    assert ns["total"] == 360 and isinstance(ns["correct"], int)
    assert ns["same"] == ns["targets"].size(0)
    assert ns["fit"] < 0.02
