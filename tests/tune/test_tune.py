"""neurenix.tune: searches find the known best region of synthetic objectives,
are reproducible with a seed, follow the Hyperband paper's bracket table, and
reject bad input naming the argument."""
import itertools
import math

import numpy as np
import pytest

from neurenix import tune
from neurenix.optim import SGD, Parameter
from neurenix.optim import lr_scheduler

SPACE = {"lr": tune.loguniform(1e-5, 1.0), "momentum": tune.uniform(0.0, 0.99),
         "nesterov": tune.choice([False, True]), "batch": 32}


def bowl(cfg):
    """Minimum at lr = 1e-2, momentum = 0.9 (nesterov irrelevant)."""
    return (math.log10(cfg["lr"]) + 2) ** 2 + 4 * (cfg["momentum"] - 0.9) ** 2


# quadratic 0.5 * sum(h x^2), h in [1, 8]: gradient descent converges fastest at
# lr* = 2 / (1 + 8) and diverges for lr > 2 / 8.
H = np.linspace(1.0, 8.0, 12)


def train(cfg, seed):
    """A training run reported step by step: SGD + a scheduler from the config."""
    rng = np.random.default_rng(seed)
    w = Parameter(rng.standard_normal(H.size))
    opt = SGD([w], lr=cfg["lr"])
    sched = (lr_scheduler.CosineAnnealingLR(opt, T_max=200) if cfg["scheduler"] == "cosine"
             else lr_scheduler.StepLR(opt, step_size=cfg["step_size"], gamma=0.5))
    for _ in range(200):
        w.grad = H * w.data
        opt.step()
        sched.step()
        loss = float(0.5 * np.sum(H * w.data ** 2))
        yield loss if math.isfinite(loss) else 1e300


TRAIN_SPACE = {"lr": tune.loguniform(1e-3, 1.0), "scheduler": tune.choice(["cosine", "step"]),
               "step_size": tune.randint(5, 60)}


def test_random_search_finds_the_bowl():
    res = tune.random_search(bowl, SPACE, n_trials=80, seed=0)
    assert 10 ** -2.6 < res.best_config["lr"] < 10 ** -1.4
    assert 0.6 < res.best_config["momentum"] <= 0.99
    assert res.best_config["batch"] == 32
    assert res.best_value == min(t.value for t in res.trials)
    assert len(res.trials) == 80 and res.method == "random"


def test_grid_search_is_exhaustive():
    space = {"lr": tune.loguniform(1e-4, 1.0), "momentum": tune.choice([0.0, 0.5, 0.9]),
             "k": tune.randint(0, 3)}
    res = tune.grid_search(bowl, space, num=5)
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    combos = list(itertools.product(lrs, [0.0, 0.5, 0.9], [0, 1, 2]))
    assert len(res.trials) == len(combos)
    got = sorted((t.config["lr"], t.config["momentum"], t.config["k"]) for t in res.trials)
    np.testing.assert_allclose(got, sorted(combos))
    assert res.best_config["lr"] == pytest.approx(1e-2)
    assert res.best_config["momentum"] == 0.9


def test_reproducible_with_seed_and_per_trial_seeds():
    def noisy(cfg, seed):
        return bowl(cfg) + 0.01 * np.random.default_rng(seed).standard_normal()

    a = tune.random_search(noisy, SPACE, n_trials=15, seed=123)
    b = tune.random_search(noisy, SPACE, n_trials=15, seed=123)
    c = tune.random_search(noisy, SPACE, n_trials=15, seed=124)
    assert [t.config for t in a.trials] == [t.config for t in b.trials]
    assert [t.value for t in a.trials] == [t.value for t in b.trials]
    assert [t.seed for t in a.trials] == [t.seed for t in b.trials]
    assert len({t.seed for t in a.trials}) == 15
    assert [t.config for t in a.trials] != [t.config for t in c.trials]
    h1 = tune.hyperband(train, TRAIN_SPACE, max_resource=27, seed=5)
    h2 = tune.hyperband(train, TRAIN_SPACE, max_resource=27, seed=5)
    assert h1.table() == h2.table()


def test_hyperband_brackets_match_the_paper():
    # Li et al. (2018), Table 1: R = 81, eta = 3
    table = {4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
             3: [(34, 3), (11, 9), (3, 27), (1, 81)],
             2: [(15, 9), (5, 27), (1, 81)],
             1: [(8, 27), (2, 81)],
             0: [(5, 81)]}
    assert dict(tune.hyperband_brackets(81, 3)) == table


def test_hyperband_finds_the_best_learning_rate_region():
    res = tune.hyperband(train, TRAIN_SPACE, max_resource=81, seed=0)
    assert 0.12 < res.best_config["lr"] < 2 / 8
    assert res.best_trial.steps == 81 and res.best_trial.status == "complete"
    assert len(res.trials) == 81 + 34 + 15 + 8 + 5
    # the pruned runs really got fewer steps
    assert min(t.steps for t in res.trials) == 1
    assert {t.bracket for t in res.trials} == {0, 1, 2, 3, 4}


def test_successive_halving_rungs():
    res = tune.successive_halving(train, TRAIN_SPACE, n_trials=9, min_resource=2, eta=3,
                                  seed=1)
    steps = sorted(t.steps for t in res.trials)
    assert steps == [2] * 6 + [6] * 2 + [18]
    assert [t.status for t in res.trials].count("pruned") == 8
    # survivors of each rung were the best at that rung
    rung1 = sorted(res.trials, key=lambda t: t.history[1])[:3]
    assert all(t.steps >= 6 for t in rung1)
    assert res.best_trial.steps == 18
    capped = tune.successive_halving(train, TRAIN_SPACE, n_trials=9, min_resource=2,
                                     max_resource=5, seed=1)
    assert sorted(t.steps for t in capped.trials) == [2] * 6 + [5] * 3


def test_max_mode_and_generator_in_random_search():
    def score(cfg):
        for k in range(10):
            yield -(cfg["x"] - 0.3) ** 2 + 0 * k
    res = tune.random_search(score, {"x": tune.uniform(0, 1)}, n_trials=40, mode="max",
                             seed=0, max_resource=4)
    assert abs(res.best_config["x"] - 0.3) < 0.05
    assert all(t.steps == 4 for t in res.trials)


def test_progress_bar_and_table(capsys):
    res = tune.random_search(bowl, SPACE, n_trials=5, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "5/5" in err and "best=" in err
    table = res.table()
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["#", "value", "steps", "status"]
    assert "lr" in lines[0] and len(lines) == 2 + 5
    assert lines[2].split()[0] == str(res.best_trial.number)
    assert len(res.to_records()) == 5 and "lr" in res.to_records()[0]


def test_search_dispatcher():
    res = tune.search(bowl, SPACE, method="random", n_trials=3, seed=0)
    assert res.method == "random"
    with pytest.raises(ValueError, match="method"):
        tune.search(bowl, SPACE, method="annealing")


@pytest.mark.parametrize("call,exc,name", [
    (lambda: tune.random_search(bowl, {}), ValueError, "space"),
    (lambda: tune.random_search(bowl, {"a": 1}), ValueError, "space"),
    (lambda: tune.random_search(bowl, [("a", 1)]), TypeError, "space"),
    (lambda: tune.random_search(bowl, SPACE, n_trials=0), ValueError, "n_trials"),
    (lambda: tune.random_search(bowl, SPACE, mode="best"), ValueError, "mode"),
    (lambda: tune.random_search(3, SPACE), TypeError, "objective"),
    (lambda: tune.grid_search(bowl, SPACE, num=0), ValueError, "num"),
    (lambda: tune.successive_halving(bowl, SPACE), TypeError, "generator"),
    (lambda: tune.hyperband(train, TRAIN_SPACE, eta=1), ValueError, "eta"),
    (lambda: tune.hyperband(train, TRAIN_SPACE, max_resource=0), ValueError, "max_resource"),
    (lambda: tune.loguniform(0.0, 1.0), ValueError, "low"),
    (lambda: tune.uniform(2.0, 1.0), ValueError, "high"),
    (lambda: tune.randint(1.5, 3), TypeError, "low"),
    (lambda: tune.choice([]), ValueError, "categories"),
    (lambda: tune.random_search(lambda c: "bad", SPACE, n_trials=1), TypeError, "objective"),
])
def test_bad_input(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


# ---------------------------------------------------------------- Optuna
def test_optuna_same_space_and_objective():
    pytest.importorskip("optuna")
    a = tune.optuna_search(bowl, SPACE, n_trials=40, seed=0)
    b = tune.optuna_search(bowl, SPACE, n_trials=40, seed=0)
    assert [t.config for t in a.trials] == [t.config for t in b.trials]
    assert 10 ** -2.8 < a.best_config["lr"] < 10 ** -1.2
    assert a.study is not None and len(a.study.trials) == 40
    assert a.best_value == pytest.approx(a.study.best_value)
    r = tune.search(bowl, SPACE, method="optuna", n_trials=5, sampler="random", seed=1)
    assert r.method == "optuna" and len(r.trials) == 5


def test_optuna_pruner_on_training_runs():
    optuna = pytest.importorskip("optuna")
    res = tune.optuna_search(train, TRAIN_SPACE, n_trials=30, pruner="hyperband",
                             max_resource=60, seed=0)
    states = [t.state for t in res.study.trials]
    assert optuna.trial.TrialState.PRUNED in states
    assert [t.status for t in res.trials].count("pruned") == states.count(
        optuna.trial.TrialState.PRUNED)
    assert 0.08 < res.best_config["lr"] < 2 / 8
    assert max(t.steps for t in res.trials) == 60


def test_optuna_hyperband_seeded_runs_repeat():
    pytest.importorskip("optuna")
    runs = [tune.optuna_search(train, TRAIN_SPACE, n_trials=12, pruner="hyperband",
                               max_resource=30, seed=3) for _ in range(2)]
    a, b = ([(t.status, t.steps, t.config["lr"]) for t in r.trials] for r in runs)
    assert a == b
    assert runs[0].study.study_name == "neurenix-tune-seed-3"


def test_optuna_non_primitive_choices_and_direction_check():
    optuna = pytest.importorskip("optuna")
    objs = [(1, 2), (3, 4)]
    res = tune.optuna_search(lambda c: sum(c["pair"]), {"pair": tune.choice(objs)},
                             n_trials=6, sampler="random", seed=0)
    assert res.best_config["pair"] == (1, 2)
    study = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="study"):
        tune.optuna_search(bowl, SPACE, n_trials=1, study=study, mode="min")


def test_optuna_missing_gives_clear_error(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match="optuna"):
        tune.optuna_search(bowl, SPACE, n_trials=1)
