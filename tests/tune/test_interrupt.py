"""Ctrl-C during a search keeps the trials that finished (issue #16)."""
import pytest

from neurenix import tune


def _plain(stop_at):
    calls = []

    def objective(config):
        calls.append(config)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return (config["x"] - 0.3) ** 2
    return objective, calls


@pytest.mark.parametrize("method,kw", [("random", {"n_trials": 10, "seed": 0}),
                                       ("grid", {"num": 10})])
def test_plain_objective_interrupted_keeps_finished_trials(method, kw):
    objective, calls = _plain(stop_at=5)
    r = tune.search(objective, {"x": tune.uniform(0, 1)}, method=method, **kw)
    assert r.interrupted
    assert len(r.trials) == 4 and all(t.status == "complete" for t in r.trials)
    best = min(r.trials, key=lambda t: t.value)
    assert r.best_value == best.value
    assert [t.config for t in r.trials] == calls[:4]


def test_generator_interrupted_mid_run_is_kept_as_interrupted():
    n = {"trials": 0}

    def objective(config):
        n["trials"] += 1
        for step in range(5):
            if n["trials"] == 3 and step == 2:
                raise KeyboardInterrupt
            yield config["x"] + 1.0 / (step + 1)

    r = tune.random_search(objective, {"x": tune.uniform(0, 1)}, n_trials=6, seed=1)
    assert r.interrupted
    assert [t.status for t in r.trials] == ["complete", "complete", "interrupted"]
    assert r.trials[2].steps == 2
    assert r.best_trial.status == "complete"       # finished trials win the best


@pytest.mark.parametrize("fn", [tune.successive_halving, tune.hyperband])
def test_halving_interrupted(fn):
    n = {"steps": 0}

    def objective(config):
        for step in range(100):
            n["steps"] += 1
            if n["steps"] == 15:
                raise KeyboardInterrupt
            yield (config["x"] - 0.5) ** 2 + 1.0 / (step + 1)

    kw = {"n_trials": 9, "max_resource": 9} if fn is tune.successive_halving else {"max_resource": 9}
    r = fn(objective, {"x": tune.uniform(0, 1)}, seed=0, **kw)
    assert r.interrupted
    assert all(t.value is not None for t in r.trials)
    assert {t.status for t in r.trials} <= {"complete", "pruned", "interrupted"}
    assert any(t.status == "interrupted" for t in r.trials)


def test_interrupt_before_any_value_propagates():
    objective, _ = _plain(stop_at=1)
    with pytest.raises(KeyboardInterrupt):
        tune.random_search(objective, {"x": tune.uniform(0, 1)}, n_trials=3, seed=0)


def test_optuna_interrupted_keeps_finished_trials():
    pytest.importorskip("optuna")
    objective, _ = _plain(stop_at=4)
    r = tune.search(objective, {"x": tune.uniform(0, 1)}, method="optuna", n_trials=8, seed=0)
    assert r.interrupted and len(r.trials) == 3
