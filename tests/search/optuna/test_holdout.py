"""The honest protocol: validation carved out of train with a seed, the test split never seen
by the search, and the verdict's arms retrained with fresh seeds and scored on test."""

import numpy as np
import optuna
import pytest

from keras_bioact import datasets
from keras_bioact.cli import main
from keras_bioact.search import create_study, objective_from_spec, open_storage, parse_spec, sampler_from_spec
from keras_bioact.search.data import load_data, load_splits, shape_and_classes
from keras_bioact.search.optuna import holdout
from keras_bioact.search.optuna.objective import make_objective

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _spec(tmp_path, **data):
    raw = {
        "optuna": {
            "study": "h",
            "storage": f"sqlite:///{tmp_path}/h.db",
            "n_trials": 2,
            "pruner": {"name": "none"},
        },
        "data": {"name": "digits", "max_train": 240, **data},
        "model": {"template": "mlp", "hidden": [8]},
        "budget": {"epochs": 2, "batch_size": 64, "seed": 5, "verdict_seeds": 2},
        "space": {"families": ["relu", "gamma"]},
    }
    return parse_spec(raw, source="h.toml")


def test_validation_comes_out_of_train_with_a_seed_and_test_is_untouched(tmp_path):
    spec = _spec(tmp_path, validation_fraction=0.25)
    del spec.data["max_train"]
    splits = load_splits(spec)
    (x_tr, y_tr), (x_te, y_te) = datasets.load_digits()
    assert len(splits["train"][0]) + len(splits["val"][0]) == len(x_tr)
    assert len(splits["val"][0]) == round(0.25 * len(x_tr))
    rows = {r.tobytes() for r in x_tr}
    assert all(r.tobytes() in rows for r in splits["val"][0])  # validation rows come from train
    np.testing.assert_array_equal(splits["test"][0], x_te)
    np.testing.assert_array_equal(splits["test"][1], y_te)
    (_, (x_val, _)), _ = load_data(spec)
    np.testing.assert_array_equal(x_val, splits["val"][0])  # what the search scores on
    again = load_splits(_spec(tmp_path, validation_fraction=0.25))["val"][0]
    other = load_splits(_spec(tmp_path, validation_fraction=0.25, seed=1))["val"][0]
    np.testing.assert_array_equal(again, load_splits(spec)["val"][0][: len(again)])
    assert not np.array_equal(other, again)


def test_verdict_retrains_both_arms_with_the_same_fresh_seeds_and_scores_test(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    study = create_study("h", open_storage(spec.storage, heartbeat=None), sampler=sampler_from_spec(spec))
    study.enqueue_trial({"family": "relu"})
    study.enqueue_trial({"family": "gamma"})
    study.optimize(objective_from_spec(spec), n_trials=2)
    v = holdout.study_verdict(spec, study)
    relu, gamma = study.trials
    assert v.baseline == "relu" and v.baseline_trial == relu.number
    assert v.best_trial == gamma.number and v.best_is_baseline == (relu.value > gamma.value)
    assert v.seeds == [1_000_005, 1_000_006] and v.n_test == 450 and v.metric == "test_accuracy"
    scores = holdout.test_scores(study)
    assert scores[relu.number]["scores"] == v.baseline_scores and scores[relu.number]["arm"] == "baseline"
    assert scores[gamma.number]["value"] == pytest.approx(sum(v.best_scores) / 2)
    # each run is the trial's training with the verdict's seed, scored on the test split
    splits = load_splits(spec)
    from keras_bioact.search.templates import mlp

    input_shape, num_classes = shape_and_classes(splits)
    replay = make_objective(
        lambda act: mlp(act, input_shape, num_classes, hidden=[8]),
        (splits["train"], splits["test"]),
        space=spec.space,
        budget=spec.budget,
        prune=False,
        validation_freq=spec.budget.epochs,  # as the verdict (on torch, validation passes draw from the RNG)
    )
    for seed, value in zip(v.seeds, v.best_scores, strict=True):
        again = replay(optuna.trial.FixedTrial(gamma.params, number=seed - spec.budget.seed))
        assert value == pytest.approx(again, abs=1e-6)

    def no_retraining(*args, **kwargs):
        raise AssertionError("a verdict was recomputed")

    monkeypatch.setattr("keras_bioact.search.optuna.objective.make_objective", no_retraining)
    assert holdout.study_verdict(spec, study) == v  # stored in the study, computed once


def test_cli_reports_validation_and_test_side_by_side_and_hints_at_more_trials(tmp_path, capsys):
    path = tmp_path / "h.toml"
    path.write_text(
        f"""
[optuna]
study = "h"
storage = "sqlite:///{tmp_path}/h.db"
n_trials = 2
[optuna.pruner]
name = "none"
[data]
name = "digits"
max_train = 200
[model]
hidden = [8]
[budget]
epochs = 1
verdict_seeds = 2
[space]
families = ["relu"]
"""
    )
    assert main(["search", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "val_accuracy" in out and "test_accuracy" in out and "optimised: val_accuracy" in out
    assert main(["search", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out and "--n-trials" in out
    assert main(["show", "h", "--storage", f"sqlite:///{tmp_path}/h.db"]) == 0
    out = capsys.readouterr().out
    assert "test_accuracy" in out and "the best trial is a baseline (relu)" in out
    # bioact show prints the stored verdict without retraining
    assert main(["show", "h", "--storage", f"sqlite:///{tmp_path}/h.db", "--no-test"]) == 0
    assert "the best trial is a baseline (relu)" in capsys.readouterr().out
