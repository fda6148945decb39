"""The Optuna engine searching a saved `.keras` model (`[model] path`): each trial loads the file
with `safe_mode=True`, converts its activations to the trial's family with the family's
convert rule, fine-tunes it, and the best trial is scored once on the test split."""

import re

import keras
import numpy as np
import optuna
import pytest

from keras_bioact.cli import main
from keras_bioact.layers import BRU, GammaActivation
from keras_bioact.search import Activation
from keras_bioact.search.models import converted_builder, convertible
from keras_bioact.search.optuna import holdout

# search plumbing (load, convert, fine-tune, score): its backend-specific parts, the conversion and
# the layers, are tested on every backend in tests/conversion and tests/layers
pytestmark = pytest.mark.single_backend

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC = """
[optuna]
study = "saved"
storage = "sqlite:///{tmp}/saved.db"
n_trials = 3
[optuna.sampler]
name = "random"
seed = 0
[data]
name = "digits"
[model]
path = "{model}"
[budget]
epochs = 1
verdict_seeds = 2
batch_size = 128
[space]
families = ["gamma", "bru"]
"""


def _relu_mlp(path, shape=(8, 8)):
    inputs = keras.Input(shape)
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    h = keras.layers.Activation("relu")(keras.layers.Dense(16)(h))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.save(path)
    return model


def _units(model, cls):
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, cls):
            found.append(layer)
    return found


def test_convertible_families_come_from_the_registry():
    assert convertible() == ("gamma", "bru")


def test_builder_converts_each_family_as_configured(tmp_path):
    path = tmp_path / "relu.keras"
    original = _relu_mlp(path)
    build = converted_builder(str(path), (8, 8), 10)
    x = np.random.default_rng(0).normal(size=(5, 8, 8)).astype("float32")

    gamma = build(
        Activation({"family": "gamma", "regime": "homogeneous", "init": "sampled", "n": 3.0, "s": 0.25})
    )
    units = _units(gamma, GammaActivation)
    assert len(units) == 2
    for unit in units:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(unit.n), 3.0)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(unit.s), 0.25)
        assert int(np.prod(unit.n.shape)) == 1 and unit.trainable_weights

    static = build(Activation({"family": "gamma", "regime": "static", "init": "paper"}))
    assert all(not unit.trainable_weights for unit in _units(static, GammaActivation))
    # init = "paper" keeps the saved model's function closely (ReLU matched by a high-gain gamma)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(static(x)), keras.ops.convert_to_numpy(original(x)), atol=0.05
    )

    bru = build(Activation({"family": "bru", "form": "oru", "r": [1.5, 2.5], "trainable_r": False}))
    radii = [float(np.unique(keras.ops.convert_to_numpy(u.r))[0]) for u in _units(bru, BRU)]
    assert radii == [1.5, 2.5] and all(u.form == "oru" for u in _units(bru, BRU))

    with pytest.raises(ValueError, match="model.path: a saved model converts to gamma, bru"):
        build(Activation({"family": "relu"}))


def test_search_of_a_saved_model_end_to_end(tmp_path, capsys):
    model_path = tmp_path / "relu.keras"
    _relu_mlp(model_path)
    spec_path = tmp_path / "saved.toml"
    spec_path.write_text(SPEC.format(tmp=tmp_path, model=model_path))
    assert main(["search", str(spec_path)]) == 0
    out = capsys.readouterr().out
    study = optuna.load_study(study_name="saved", storage=f"sqlite:///{tmp_path}/saved.db")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3
    assert {t.params["family"] for t in complete} <= {"gamma", "bru"}
    assert all(0.0 <= t.value <= 1.0 for t in complete)
    scores = holdout.test_scores(study)
    assert study.best_trial.number in scores  # the best trial is scored once on the test split
    assert 0.0 <= scores[study.best_trial.number]["value"] <= 1.0
    assert "test_accuracy" in out and "val_accuracy" in out


def test_saved_model_with_code_is_refused(tmp_path, capsys):
    inputs = keras.Input((8, 8))
    h = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model_path = tmp_path / "lambda.keras"
    model.save(model_path)
    spec_path = tmp_path / "saved.toml"
    spec_path.write_text(SPEC.format(tmp=tmp_path, model=model_path).replace("n_trials = 3", "n_trials = 1"))
    assert main(["search", str(spec_path)]) == 2
    err = capsys.readouterr().err
    assert "saved.toml: model.path: Keras cannot load" in err and "safe_mode" in err, err
    assert not (tmp_path / "saved.db").exists()  # refused before the study was created


def test_saved_model_that_does_not_fit_the_data_is_refused_before_any_trial(tmp_path, capsys):
    model_path = tmp_path / "flat.keras"
    _relu_mlp(model_path, shape=(64,))
    spec_path = tmp_path / "saved.toml"
    spec_path.write_text(SPEC.format(tmp=tmp_path, model=model_path))
    assert main(["search", str(spec_path)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"saved\.toml: model\.path: .* inputs of shape \(64,\), .* shape \(8, 8\)", err), err
    assert not (tmp_path / "saved.db").exists()
