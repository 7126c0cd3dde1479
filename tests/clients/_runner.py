"""Run client libraries' own test files with ``scipy.optimize`` unpatched and
patched (:func:`neurenix.patch_scipy`), and compare the outcomes test by test.

Used by ``tests/clients/test_client_suites.py`` (CI) and as a script for the
timing table of ``docs/scipy_compat.md``::

    python -m tests.clients._runner [sklearn|statsmodels|lmfit ...] [--full]

Each run is one ``pytest`` subprocess with :mod:`neurenix_client_plugin` (``tests/clients/neurenix_client_plugin.py``) loaded,
which applies the patch (or not) before the client is imported and adds up the
time spent inside the ``scipy.optimize`` calls.  The two modes of a client run
side by side (two processes).

Which tests
-----------
The issue (#13) names the files; ``SUITES`` lists them.  CI runs, of each
client, the selection in ``selection/<client>.txt`` (see :func:`make_selection`):
the tests that call a patched function, within a time budget.  ``--full`` runs
the listed files whole.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: client -> (package, test paths relative to the package directory)
SUITES = {
    "sklearn": ("sklearn", [
        "linear_model/tests/test_logistic.py",
        "linear_model/tests/test_huber.py",
        "linear_model/_glm/tests/test_glm.py",
        "gaussian_process/tests/test_gpr.py",
        "gaussian_process/tests/test_gpc.py",
        "neural_network/tests/test_mlp.py",
        "neighbors/tests/test_nca.py",
        "tests/test_calibration.py",
    ]),
    "statsmodels": ("statsmodels", [
        "base/tests/test_optimize.py",
        "discrete/tests/test_discrete.py",
        "discrete/tests/test_count_model.py",
        "tsa/arima/tests/test_model.py",
        "tsa/holtwinters/tests/test_holtwinters.py",
        "distributions/copula/tests/test_copula.py",
        "distributions/copula/tests/test_model.py",
    ]),
    "lmfit": ("lmfit", ["<sdist>/tests"]),
}

#: client -> pytest ``-k`` expression deselecting tests everywhere, with the reason
CI_DESELECT = {
    "sklearn": ("", ""),
    "statsmodels": ("", ""),
    "lmfit": ("", ""),
}

#: the CI selection of each client: ``selection/<client>.txt`` (test ids, one a
#: line), written by ``--make-selection`` from a full run: the tests that call a
#: patched ``scipy.optimize`` function (the others cannot tell SciPy from
#: neurenix): those in ``ALWAYS``, then the fastest, up to a time budget per client
SELECTION_DIR = Path(__file__).resolve().parent / "selection"
BUDGET_S = {"sklearn": 75.0, "statsmodels": 45.0, "lmfit": 60.0}


def package_dir(pkg):
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def lmfit_tests(cache=None):
    """The ``tests`` folder of the installed lmfit's sdist (lmfit's wheel ships
    no tests), downloaded once with pip into ``cache``."""
    import lmfit
    version = lmfit.__version__
    cache = Path(cache or os.environ.get("NEURENIX_CLIENT_CACHE")
                 or Path.home() / ".cache" / "neurenix-clients")
    dest = cache / f"lmfit-{version}"
    if not all((dest / d).is_dir() for d in ("tests", "examples", "NIST_STRD")):
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:",
                        "--no-deps", "--quiet", f"lmfit=={version}", "-d", str(cache)],
                       check=True, timeout=300)
        with tarfile.open(cache / f"lmfit-{version}.tar.gz") as tf:
            # the tests read data files from the sdist's examples and NIST_STRD
            members = [m for m in tf.getmembers()
                       if m.name.startswith(tuple(f"lmfit-{version}/{d}/" for d in
                                                  ("tests", "examples", "NIST_STRD")))]
            tf.extractall(cache, members=members, filter="data")
    return dest / "tests"


def test_paths(client):
    pkg, rel = SUITES[client]
    if client == "lmfit":
        return [str(lmfit_tests())]
    base = package_dir(pkg)
    return [str(base / r) for r in rel if (base / r).exists()]


def start(client, mode, workdir, full=False, extra=()):
    """Start one pytest subprocess; returns (Popen, junit path, times path)."""
    junit = Path(workdir) / f"{client}-{mode}.xml"
    times = Path(workdir) / f"{client}-{mode}.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "neurenix_client_plugin",
           "-p", "no:cacheprovider", f"--junitxml={junit}", "-W", "ignore::DeprecationWarning",
           # statsmodels' own pytest settings ask for plugins (pytest-randomly) it
           # does not install; the client's conftest files still apply
           "-o", "addopts=",
           *test_paths(client)]
    k = CI_DESELECT[client][0]
    if k:
        cmd += ["-k", k]
    cmd += list(extra)
    select = {}
    if not full and (SELECTION_DIR / f"{client}.txt").exists():
        select = {"NEURENIX_CLIENT_SELECT": str(SELECTION_DIR / f"{client}.txt")}
    env = dict(os.environ, NEURENIX_CLIENT_MODE=mode, NEURENIX_CLIENT_TIMES=str(times),
               **select,
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "clients"), str(ROOT),
                                           os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    log = open(Path(workdir) / f"{client}-{mode}.log", "w")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc._log = log
    return proc, junit, times


def outcomes(junit):
    """``{test id: "passed"|"failed"|"skipped"}`` from a JUnit XML report."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            out[tid] = "failed"
        elif "skipped" in tags:
            out[tid] = "skipped"
        else:
            out[tid] = "passed"
    return out


def compare(client, workdir=None, full=False, timeout=1500, extra=()):
    """Run ``client``'s tests in both modes; returns a dict with the outcomes,
    the tests that pass only with SciPy (``regressions``), the pass counts, the
    wall time of each run and the time inside the optimizer calls."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"nx-{client}-"))
    runs = {}
    t0 = time.perf_counter()
    for mode in ("scipy", "neurenix"):
        runs[mode] = start(client, mode, workdir, full, extra) + (time.perf_counter(),)
    report = {"client": client, "workdir": str(workdir)}
    ended = {}
    try:
        while len(ended) < len(runs):       # each run's own end time
            for mode, (proc, _, _, started) in runs.items():
                if mode not in ended and proc.poll() is not None:
                    ended[mode] = time.perf_counter() - started
            if time.perf_counter() - t0 > timeout:
                raise subprocess.TimeoutExpired("pytest", timeout)
            time.sleep(0.2)
    except BaseException:
        for proc, *_ in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        raise
    finally:
        for proc, *_ in runs.values():
            proc._log.close()
    for mode, (proc, junit, times, started) in runs.items():
        report[f"{mode}_wall_s"] = ended[mode]
        res = outcomes(junit)
        report[mode] = res
        report[f"{mode}_passed"] = sum(v == "passed" for v in res.values())
        report[f"{mode}_failed"] = sum(v == "failed" for v in res.values())
        with open(times) as fh:
            t = json.load(fh)
        report[f"{mode}_optimizer_s"] = t["seconds"]
        report[f"{mode}_calls"] = t["calls"]
        report[f"{mode}_counts"] = t.get("counts", {})
    report["regressions"] = sorted(k for k, v in report["scipy"].items()
                                   if v == "passed" and report["neurenix"].get(k) != "passed")
    report["fixed"] = sorted(k for k, v in report["neurenix"].items()
                             if v == "passed" and report["scipy"].get(k) != "passed")
    return report


#: tests that failed with neurenix before issue #13 was fixed: always selected
#: (substrings of test ids), whatever their duration
ALWAYS = {
    "sklearn": ("test_logistic_glmnet", "test_newton_cholesky_fallback_to_lbfgs",
                "test_logistic_regression_callback_support", "test_linalg_warning_with_newton",
                "test_gpr_correct_error_message", "test_warning_bounds"),
    "statsmodels": ("TestMNLogitLBFGSBaseZero", "TestNegativeBinomialGeometricBFGS",
                    "test_issue_339", "test_mnlogit_factor", "TestFrankCopula",
                    "test_holt_damp_fit", "test_alternative_minimizers", "test_valid_bounds",
                    "test_mnlogit_float_name", "test_summary_after_remove_data"),
    "lmfit": ("test_basinhopping_solver_options", "test_confidence_2d",
              "test_model_nan_policy", "test_coercion_of_input_data",
              "test_parameters_usersyms", "test_default_max_nfev"),
}


def make_selection(client, times_json, budget_s=None):
    """Write ``selection/<client>.txt`` from a full run's timing file (the SciPy
    mode's ``<client>-scipy.json``): the tests that called a patched function,
    fastest first, while their summed duration stays within the budget."""
    with open(times_json) as fh:
        per_test = json.load(fh)["tests"]
    budget = BUDGET_S[client] if budget_s is None else budget_s
    users = sorted((rec[2], tid) for tid, rec in per_test.items() if rec[0] > 0)
    keep, total = [], 0.0
    always = ALWAYS.get(client, ())
    for dur, tid in users:
        if any(a in tid for a in always):
            keep.append(tid)
            total += dur
    for dur, tid in users:
        if tid in keep or total + dur > budget:
            continue
        keep.append(tid)
        total += dur
    SELECTION_DIR.mkdir(exist_ok=True)
    with open(SELECTION_DIR / f"{client}.txt", "w") as fh:
        fh.write(f"# {client}: {len(keep)} of the {len(users)} tests that call a patched "
                 f"scipy.optimize function ({len(per_test)} run), {total:.0f} s of "
                 f"{sum(d for d, _ in users):.0f} s; made by tests/clients/_runner.py "
                 "--make-selection\n")
        fh.write("\n".join(sorted(keep)) + "\n")
    return keep


def markdown_table(reports):
    """The docs' table: pass counts and the time inside the optimizer calls."""
    rows = ["| client | tests run | passed: SciPy / neurenix | fail only with neurenix "
            "| inside optimizer calls: SciPy / neurenix (s) | ratio | minimize nfev: SciPy "
            "/ neurenix |", "|---|---|---|---|---|---|---|"]
    for r in reports:
        ts = sum(r["scipy_optimizer_s"].values())
        tn = sum(r["neurenix_optimizer_s"].values())
        ns = r["scipy_counts"].get("minimize.nfev")
        nn = r["neurenix_counts"].get("minimize.nfev")
        rows.append(f"| {r['client']} | {len(r['scipy'])} | {r['scipy_passed']} / "
                    f"{r['neurenix_passed']} | {len(r['regressions'])} | {ts:.1f} / {tn:.1f} "
                    f"| {tn / ts if ts else float('nan'):.2f} | {ns} / {nn} |")
    return "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clients", nargs="*", default=list(SUITES))
    ap.add_argument("--full", action="store_true", help="no CI deselection")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="write the reports here")
    ap.add_argument("--make-selection", metavar="TIMES_JSON", default=None,
                    help="write selection/<client>.txt from a full SciPy-mode timing file")
    a = ap.parse_args(argv)
    if a.make_selection:
        for client in a.clients:
            keep = make_selection(client, a.make_selection)
            print(f"{client}: {len(keep)} tests selected")
        return []
    reports = []
    for client in a.clients:
        wd = None
        if a.workdir:
            wd = Path(a.workdir) / client
            wd.mkdir(parents=True, exist_ok=True)
        r = compare(client, wd, full=a.full)
        reports.append(r)
        ts = sum(r["scipy_optimizer_s"].values())
        tn = sum(r["neurenix_optimizer_s"].values())
        print(f"{client}: passed scipy {r['scipy_passed']} / neurenix {r['neurenix_passed']}; "
              f"failed scipy {r['scipy_failed']} / neurenix {r['neurenix_failed']}; "
              f"only-neurenix failures {len(r['regressions'])}; wall "
              f"{r['scipy_wall_s']:.0f} s / {r['neurenix_wall_s']:.0f} s; inside optimizer "
              f"calls {ts:.2f} s / {tn:.2f} s", flush=True)
        for key in sorted(set(r["scipy_counts"]) | set(r["neurenix_counts"])):
            print(f"    {key}: scipy {r['scipy_counts'].get(key)} / neurenix "
                  f"{r['neurenix_counts'].get(key)}")
        for tid in r["regressions"]:
            print("   ", tid)
    print(markdown_table(reports))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump([{k: v for k, v in r.items() if k not in ("scipy", "neurenix")}
                       for r in reports], fh, indent=1)
    return reports


if __name__ == "__main__":
    main()
