"""Make the comparison scripts run from a checkout without an install.

``python benchmarks/compare_*.py`` puts ``benchmarks/`` first on ``sys.path``,
not the repository root, so an uninstalled checkout (extensions built in place
with ``python setup.py build_ext --inplace``) was not importable.  Importing
this module adds the root, and the root's ``tests/`` (the shared test
problems), when ``neurenix`` cannot be imported as it is; an installed
``neurenix`` is left as the one used.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")

try:
    import neurenix  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
