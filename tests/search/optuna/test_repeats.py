"""Repeated trials (`budget.repeats`), k-fold trials (`data.folds`), the Wilcoxon pruner, the
baselines and warm starts (`space.baselines`, `space.enqueue`) of an Optuna study."""

import csv
import json

import keras
import numpy as np
import optuna
import pytest

from keras_bioact.search import SearchSpace, make_objective
from keras_bioact.search.optuna import best_baseline_trial, export_trials, open_study, pruner_from_spec
from keras_bioact.search.spec import parse_spec
from keras_bioact.search.spec.model import Budget

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _mlp(activation):
    return keras.Sequential(
        [keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(8), activation.layer(0)]
        + [keras.layers.Dense(10, activation="softmax")]
    )


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8).astype("float32")
    return (x[:240], y[:240]), (x[240:320], y[240:320])


def _run(objective, n=1, params=(), pruner=None):
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
    for p in params:
        study.enqueue_trial(p)
    study.optimize(objective, n_trials=n)
    return study


RELU = SearchSpace(families=["relu"], learning_rate=[1e-6, 3e-2])
GOOD, BAD = {"family": "relu", "learning_rate": 3e-2}, {"family": "relu", "learning_rate": 1e-6}


def test_seed_of_is_the_trial_seed_for_repeat_zero_and_32_bit():
    b = Budget(seed=7)
    assert [b.seed_of(3, j) for j in range(3)] == [10, 100_013, 200_016]
    assert Budget(seed=2**32 - 1).seed_of(1) == 0


def test_repeats_give_the_mean_of_the_seeds_and_repeat_zero_is_a_single_trial(digits):
    """Repeat 0 trains exactly as a trial of one repeat does (same seed, same value); the value
    of k repeats is the mean of the k per-seed values, stored as `scores`."""
    budget = dict(epochs=1, batch_size=32, seed=5)
    one = _run(make_objective(_mlp, digits, RELU, Budget(**budget), prune=False), params=[GOOD])
    three = _run(make_objective(_mlp, digits, RELU, Budget(repeats=3, **budget), prune=False), params=[GOOD])
    t1, t3 = one.trials[0], three.trials[0]
    scores = t3.user_attrs["scores"]
    assert len(scores) == 3 and len(set(scores)) > 1  # three seeds, not one model thrice
    assert scores[0] == t1.value == t1.user_attrs["scores"][0]
    assert t3.value == pytest.approx(np.mean(scores), abs=1e-12)
    assert len(t3.user_attrs["epoch_seconds"]) == 3  # one epoch per repeat


def test_folds_score_the_training_split_and_leave_the_validation_split_unused(digits):
    (x, y), (xv, yv) = digits
    objective = make_objective(_mlp, digits, RELU, Budget(epochs=1, batch_size=32), prune=False, folds=3)
    # the same study with a validation split of other samples and labels scores the same
    other = make_objective(
        _mlp, ((x, y), (xv[::-1], (yv + 1) % 10)), RELU, Budget(epochs=1, batch_size=32), prune=False, folds=3
    )
    a, b = _run(objective, params=[GOOD]).trials[0], _run(other, params=[GOOD]).trials[0]
    assert len(a.user_attrs["scores"]) == 3
    assert a.value == pytest.approx(np.mean(a.user_attrs["scores"]), abs=1e-12)
    assert a.user_attrs["scores"] == b.user_attrs["scores"]
    with pytest.raises(ValueError, match="data.folds"):
        make_objective(_mlp, digits, RELU, Budget(), folds=10_000)


def test_wilcoxon_is_the_default_pruner_with_repeats_and_prunes_a_clearly_bad_trial(digits, tmp_path):
    spec = parse_spec({"optuna": {"study": "w"}, "budget": {"repeats": 3}})
    assert spec.pruner == {"name": "wilcoxon"}
    assert isinstance(pruner_from_spec(spec), optuna.pruners.WilcoxonPruner)
    assert parse_spec({"optuna": {"study": "w"}, "data": {"folds": 3}}).pruner == {"name": "wilcoxon"}
    assert parse_spec({"optuna": {"study": "w"}}).pruner == {"name": "median"}  # repeats = 1: as before
    # 3 seeds: after two seeds all worse, the one-sided Wilcoxon p is 0.25
    pruner = optuna.pruners.WilcoxonPruner(p_threshold=0.3, n_startup_steps=0)
    objective = make_objective(_mlp, digits, RELU, Budget(epochs=1, batch_size=32, repeats=3))
    study = _run(objective, n=2, params=[GOOD, BAD], pruner=pruner)
    good, bad = study.trials
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert bad.state == optuna.trial.TrialState.PRUNED
    assert len(bad.user_attrs["scores"]) == 2 and list(bad.intermediate_values) == [0, 1]
    assert max(bad.user_attrs["scores"]) < min(good.user_attrs["scores"])


def _spec(tmp_path, **space):
    raw = {"optuna": {"study": "b", "storage": f"sqlite:///{tmp_path}/b.db"}, "space": space}
    return parse_spec(raw)


def test_baselines_and_enqueued_tables_come_first_once_per_study(tmp_path):
    enqueue = [{"family": "gamma", "gamma_n": 5.0, "gamma_s": 0.5}]
    spec = _spec(tmp_path, families=["gamma"], enqueue=enqueue)
    assert spec.space.families == ["gamma", "relu", "gelu", "swish"]  # the baselines are searched
    study = open_study(spec)
    waiting = [t.system_attrs["fixed_params"] for t in study.trials]
    assert waiting == [{"family": "relu"}, {"family": "gelu"}, {"family": "swish"}, *enqueue]
    open_study(spec)  # a resumed run, or a second `bioact search` on the same study
    assert len(open_study(spec).trials) == 4
    first = study.ask()  # the first trial asked is the first baseline, its learning rate free
    assert first.suggest_categorical("family", spec.space.families) == "relu"
    off = _spec(tmp_path / "off", families=["gamma"], baselines=[])
    (tmp_path / "off").mkdir()
    assert off.space.families == ["gamma"] and open_study(off).trials == []


def test_best_baseline_trial_and_the_exported_per_seed_scores(tmp_path):
    spec = _spec(tmp_path, families=["gamma"])
    study = optuna.create_study(direction="maximize")
    dist = {"family": optuna.distributions.CategoricalDistribution(spec.space.families)}
    for family, scores in (("relu", [0.5, 0.7]), ("gelu", [0.7, 0.8]), ("gamma", [0.9, 0.9])):
        study.add_trial(
            optuna.trial.create_trial(
                params={"family": family},
                distributions=dist,
                value=float(np.mean(scores)),
                user_attrs={"scores": scores, "baseline": family != "gamma"},
            )
        )
    assert best_baseline_trial(study, spec).params == {"family": "gelu"}
    assert best_baseline_trial(study).params == {"family": "gelu"}  # from the trials' marks
    assert best_baseline_trial(optuna.create_study(), spec) is None
    rows = list(csv.DictReader(open(export_trials(study, tmp_path / "t.csv"))))
    assert [json.loads(r["scores"]) for r in rows] == [[0.5, 0.7], [0.7, 0.8], [0.9, 0.9]]
    assert [r["baseline"] for r in rows] == ["True", "True", "False"]
    trials = json.loads((export_trials(study, tmp_path / "t.json")).read_text())["trials"]
    assert trials[2]["scores"] == [0.9, 0.9]
