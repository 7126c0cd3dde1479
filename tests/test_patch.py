"""neurenix.patch_scipy / unpatch_scipy: the namespace, names bound before patching,
nesting, and that SciPy's functions come back."""
import sys
import types

import numpy as np
import pytest
import scipy.optimize as so

import neurenix
from neurenix import _patch
from neurenix import optimize as nx


@pytest.fixture(autouse=True)
def _clean():
    yield
    neurenix.unpatch_scipy()


def _client_module():
    """A module that ran ``from scipy.optimize import minimize, leastsq``."""
    mod = types.ModuleType("fake_client_for_patch_test")
    mod.minimize = so.minimize
    mod.leastsq = so.leastsq
    sys.modules[mod.__name__] = mod
    return mod


def test_context_manager_routes_and_restores():
    orig = {name: getattr(so, name) for name in _patch.PATCHABLE}
    mod = _client_module()
    try:
        with neurenix.patch_scipy() as p:
            for name in _patch.PATCHABLE:
                assert getattr(so, name).__wrapped__ is getattr(nx, name)
                assert _patch.is_patched(name)
            assert mod.minimize is so.minimize and mod.leastsq is so.leastsq
            assert mod.minimize.__wrapped__ is nx.minimize
            assert "active" in repr(p)
            # a module imported while patched binds neurenix's and is restored too
            late = types.ModuleType("fake_late_client")
            late.least_squares = so.least_squares
            sys.modules[late.__name__] = late
        for name in _patch.PATCHABLE:
            assert getattr(so, name) is orig[name]
        assert mod.minimize is orig["minimize"] and late.least_squares is orig["least_squares"]
    finally:
        sys.modules.pop("fake_client_for_patch_test", None)
        sys.modules.pop("fake_late_client", None)


def test_function_form_names_nesting_and_unpatch():
    orig_min, orig_lsq = so.minimize, so.least_squares
    neurenix.patch_scipy("least_squares", rebind=False)
    assert so.least_squares.__wrapped__ is nx.least_squares and so.minimize is orig_min
    with neurenix.patch_scipy(["minimize"]):
        assert so.minimize.__wrapped__ is nx.minimize
        assert so.least_squares.__wrapped__ is nx.least_squares
    assert so.minimize is orig_min and so.least_squares.__wrapped__ is nx.least_squares
    # a module's own binding of neurenix's function is never touched
    assert sys.modules[__name__].nx.minimize is nx.minimize
    assert _patch.is_patched("least_squares") and not _patch.is_patched("minimize")
    neurenix.unpatch_scipy()
    assert so.least_squares is orig_lsq
    neurenix.unpatch_scipy()          # a no-op when nothing is patched


def test_bad_arguments():
    with pytest.raises(ValueError, match="names"):
        neurenix.patch_scipy(["basinhopping"])
    with pytest.raises(TypeError, match="rebind"):
        neurenix.patch_scipy(rebind=1)


def test_patched_results_are_scipys_fields():
    def rosen(x):
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
    s = so.minimize(rosen, np.zeros(3), method="L-BFGS-B")
    with neurenix.patch_scipy():
        r = so.minimize(rosen, np.zeros(3), method="L-BFGS-B")
        # SciPy's own callers of the namespace get neurenix's (basinhopping)
        b = so.basinhopping(rosen, np.zeros(3), niter=2, seed=0,
                            minimizer_kwargs={"method": "BFGS"})
    assert (r.status, r.message, r.success) == (s.status, s.message, s.success)
    np.testing.assert_allclose(r.x, s.x, atol=1e-4)
    assert b.lowest_optimization_result.get("reason") is not None
