"""The held-out score is the test split's, for both engines: on data whose test labels are
shifted on purpose (a model that learns the training split scores near zero on test and well on
validation), the reported test number equals an independent evaluation on the test split, so a
swap of validation and test anywhere between loading and reporting changes it."""

import json

import keras
import numpy as np
import optuna
import pytest

from keras_bioact import datasets
from keras_bioact.cli import main
from keras_bioact.search import open_storage
from keras_bioact.search.data import load_splits, shape_and_classes
from keras_bioact.search.optuna import holdout
from keras_bioact.search.optuna.objective import make_objective
from keras_bioact.search.spec import load_spec
from keras_bioact.search.templates import mlp

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def shifted_test_labels(monkeypatch):
    """`datasets.load` with digits' test labels shifted by one class; returns the test split."""
    (x_tr, y_tr), (x_te, y_te) = datasets.load_digits()
    test = (x_te[:200], ((y_te[:200] + 1) % 10).astype(y_te.dtype))
    monkeypatch.setattr(datasets, "load", lambda name, **kw: ((x_tr[:600], y_tr[:600]), test))
    return test


def _spec_file(tmp_path, engine):
    common = """
[data]
name = "digits"
[model]
hidden = [32]
[budget]
epochs = 8
batch_size = 32
seed = 3
verdict_seeds = 2
"""
    if engine == "optuna":
        head = f"""
[optuna]
study = "swap"
storage = "sqlite:///{tmp_path}/swap.db"
n_trials = 1
[optuna.pruner]
name = "none"
[space]
families = ["relu"]
"""
    else:
        head = """
[evolution.activation]
family = "gamma"
[evolution]
target = "gamma"
granularity = "parameter"
popsize = 4
generations = 1
metric = "accuracy"
"""
    path = tmp_path / f"{engine}.toml"
    path.write_text(head + common)
    return path


def test_optuna_holdout_scores_the_test_split(tmp_path, shifted_test_labels, capsys):
    path = _spec_file(tmp_path, "optuna")
    assert main(["search", str(path), "--quiet"]) == 0
    capsys.readouterr()
    spec = load_spec(str(path))
    study = optuna.load_study(study_name="swap", storage=open_storage(spec.storage, heartbeat=None))
    record = holdout.test_scores(study)[study.best_trial.number]
    # independently: retrain the trial with the verdict's seeds and score it on the test split
    splits = load_splits(spec)
    input_shape, num_classes = shape_and_classes(splits)
    objective = make_objective(
        lambda act: mlp(act, input_shape, num_classes, hidden=[32]),
        (splits["train"], shifted_test_labels),
        space=spec.space,
        budget=spec.budget,
        prune=False,
        validation_freq=spec.budget.epochs,  # as the verdict (on torch, validation passes draw from the RNG)
    )
    independent = [
        objective(optuna.trial.FixedTrial(study.best_trial.params, number=seed - spec.budget.seed))
        for seed in record["seeds"]
    ]
    assert record["validation"] > 0.6 and max(independent) < 0.3  # the two splits differ on purpose
    assert record["scores"] == pytest.approx(independent, abs=1e-6)
    assert record["n_test"] == len(shifted_test_labels[1]) and len(record["seeds"]) == 2


def test_evolution_best_test_accuracy_is_the_test_split(tmp_path, shifted_test_labels, capsys):
    path = _spec_file(tmp_path, "evolution")
    out = tmp_path / "run"
    assert main(["search", str(path), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    best = keras.saving.load_model(str(out / "best_model.keras"), compile=False)
    x, y = shifted_test_labels
    independent = float(np.mean(np.argmax(keras.ops.convert_to_numpy(best.predict(x, verbose=0)), -1) == y))
    assert summary["best_val_fitness"] > 0.6 and independent < 0.3  # the two splits differ on purpose
    assert summary["best_test_accuracy"] == pytest.approx(independent, abs=1e-9)
    # the verdict's runs are scored on the (shifted) test split too, its baseline chosen on validation
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["baseline_validation"] > 0.6 and len(verdict["best_scores"]) == 2
    assert max(verdict["best_scores"] + verdict["baseline_scores"]) < 0.3
