"""The NIST StRD loader: files shipped unchanged, every header parsed, and the parsed
model reproduces each file's certified residual sum of squares at the certified values."""
import hashlib
import os
import re

import numpy as np
import pytest

from neurenix.datasets import nist_strd, nist_strd_names, log_relative_error
from neurenix.datasets import _nist

NAMES = nist_strd_names()


def test_all_27_problems_shipped():
    assert len(NAMES) == 27
    assert {"MGH09", "Bennett5", "Nelson", "Roszman1", "ENSO"} <= set(NAMES)
    assert os.path.exists(os.path.join(_nist._DIR, "README.md"))
    assert os.path.exists(os.path.join(_nist._DIR, "PROVENANCE.md"))


def test_files_unchanged_against_provenance_checksums():
    text = open(os.path.join(_nist._DIR, "PROVENANCE.md")).read()
    sums = dict((f, h) for h, f in re.findall(r"^([0-9a-f]{64})\s+(\S+)$", text, re.M))
    assert len(sums) == 28
    for fname, digest in sums.items():
        with open(os.path.join(_nist._DIR, fname), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == digest, fname


@pytest.mark.parametrize("name", NAMES)
def test_parsed_model_reproduces_certified_rss(name):
    p = nist_strd(name)
    assert p.start1.shape == p.start2.shape == p.certified_values.shape == (p.n_params,)
    assert p.certified_std_dev.shape == (p.n_params,)
    assert p.x.shape[0] == p.y.shape[0] == p.n_obs
    r = p.residual(p.certified_values)
    rss = float(r @ r)
    if p.certified_rss > 1e-20:
        # certified values are rounded to 11 digits; the RSS is a minimum, so it moves
        # only to second order
        assert rss == pytest.approx(p.certified_rss, rel=1e-8)
    else:   # Lanczos1: RSS 1.4e-25, at the rounding level of the data
        assert rss < 1e-18
    # residual standard deviation = sqrt(RSS / (m - n))
    assert np.sqrt(p.certified_rss / (p.n_obs - p.n_params)) == pytest.approx(
        p.certified_residual_sd, rel=1e-9)


@pytest.mark.parametrize("name", ["Misra1a", "MGH09", "Nelson", "ENSO", "Roszman1"])
def test_complex_step_jacobian_matches_central_differences(name):
    p = nist_strd(name)
    b = p.start2
    J = p.jac(b)
    Jfd = np.empty_like(J)
    for j in range(b.size):
        h = 1e-6 * max(1.0, abs(b[j]))
        e = np.zeros_like(b)
        e[j] = h
        Jfd[:, j] = (p.residual(b + e) - p.residual(b - e)) / (2 * h)
    np.testing.assert_allclose(J, Jfd, rtol=1e-5, atol=1e-8 * np.abs(J).max())


def test_specific_headers():
    p = nist_strd("nelson")
    assert p.formula.startswith("log[y]")
    assert p.x.shape == (128, 2)
    np.testing.assert_allclose(p.target, np.log(p.y))
    assert nist_strd("MGH09").difficulty == "Higher"
    assert nist_strd("Misra1a").start1.tolist() == [500.0, 1e-4]
    assert nist_strd("Misra1a").certified_values[0] == 2.3894212918e2


def test_lre():
    np.testing.assert_allclose(log_relative_error([1.0001, 2.0], [1.0, 2.0]), [4.0, 11.0],
                               atol=1e-6)
    assert log_relative_error([np.nan], [1.0])[0] == 0.0


def test_bad_name():
    with pytest.raises(ValueError, match="name"):
        nist_strd("nope")
    with pytest.raises(TypeError, match="name"):
        nist_strd(3)


def test_each_call_gets_its_own_arrays():
    # issue #16: the loader returned one shared cached object; a caller changing its
    # problem silently changed every later caller's
    from neurenix.datasets import nist_strd
    a = nist_strd("Misra1a")
    ref = a.certified_values.copy()
    a.certified_values[:] = 0.0
    a.y[:] = -1.0
    b = nist_strd("Misra1a")
    np.testing.assert_array_equal(b.certified_values, ref)
    assert np.all(b.y > 0)
    assert b.certified_values is not a.certified_values
