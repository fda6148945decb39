"""The evolution engine's baselines (`evolution.baselines`: trained under the same budget as the
start network, scored on validation, kept on resume) and its warm start (`evolution.start =
"model"`: the search's centre is a saved model's, converted, activation parameters)."""

import json

import keras
import numpy as np
import pytest

from keras_bioact.conversion import convert
from keras_bioact.params import ParameterView, activation_parameters
from keras_bioact.search.data import load_splits
from keras_bioact.search.evolution import runner
from keras_bioact.search.spec import parse_spec

pytestmark = pytest.mark.single_backend

DATA = {"name": "digits", "max_train": 160, "max_val": 60}
EVO = {"target": "gamma", "popsize": 4, "generations": 2, "seed": 1}


def _spec(out, **evolution):
    raw = {
        "data": DATA,
        "model": {"hidden": [8]},
        "budget": {"epochs": 1},
        "evolution": {**EVO, "activation": {"family": "gamma"}, **evolution},
        "output": {"dir": str(out), "tensorboard": False},
    }
    return parse_spec(raw)


def test_baselines_are_trained_like_the_start_network_and_not_again_on_resume(tmp_path, monkeypatch):
    spec = _spec(tmp_path / "run", baselines=["relu"])
    assert _spec(tmp_path).evolution["baselines"] == ["relu", "gelu", "swish"]  # the default
    splits = load_splits(spec)
    start = runner.start_model(spec, splits["train"], 10)
    relu = runner.start_model(spec, splits["train"], 10, activation={"family": "relu"})
    # same template from the same seed: the first layer (built before an activation draws its
    # own initial values) starts from the same weights
    first = [
        [la for la in m.layers if isinstance(la, keras.layers.Dense)][0].get_weights() for m in (start, relu)
    ]
    for a, b in zip(*first, strict=True):
        np.testing.assert_array_equal(a, b)

    fits = []
    fit = runner._fit
    monkeypatch.setattr(runner, "_fit", lambda model, *a, **k: fits.append(model) or fit(model, *a, **k))
    result, summary = runner.run_evolution(spec, progress=False, stop_after=1, log=lambda line: None)
    assert len(fits) == 2  # the start network and the relu baseline
    scores = result.baseline_scores
    assert list(scores) == ["relu"] and 0.0 <= scores["relu"] <= 1.0
    assert summary["baseline_scores"] == scores
    stored = json.loads((tmp_path / "run" / "baselines.json").read_text())
    assert stored == {"metric": "accuracy", "split": "validation", "scores": scores}
    fits.clear()
    result, summary = runner.run_evolution(spec, resume=True, progress=False, log=lambda line: None)
    assert fits == [] and result.baseline_scores == scores  # read back, not retrained
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["baseline_scores"] == scores


def test_start_model_centres_the_search_on_the_converted_saved_model(tmp_path):
    from keras_bioact.search.evolution.problem import make_problem

    keras.utils.set_random_seed(0)
    layers = keras.layers
    saved = keras.Sequential(
        [
            keras.Input((8, 8)),
            layers.Flatten(),
            layers.Dense(8, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    saved.save(tmp_path / "relu.keras")
    raw = {
        "data": DATA,
        "model": {"path": str(tmp_path / "relu.keras")},
        "budget": {"epochs": 0},
        "evolution": {**EVO, "start": "model"},
        "output": {"dir": str(tmp_path / "out")},
    }
    spec = parse_spec(raw)
    assert spec.evolution["baselines"] == []  # none by default with a saved model
    splits = load_splits(spec)
    model = runner.start_model(spec, splits["train"], 10)
    config = {k: v for k, v in spec.evolution.items() if k not in ("activation", "start", "baselines")}
    centre = make_problem(model, {"val": splits["val"], "train": None}, config).center
    reference = convert(
        keras.saving.load_model(tmp_path / "relu.keras"), family="gamma", probe_data=splits["train"][0][:256]
    )
    expected = ParameterView(reference, parameters=activation_parameters(reference)).get_vector(
        "unconstrained"
    )
    np.testing.assert_allclose(centre, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="no activation parameters"):  # start = "init": as saved
        raw["evolution"]["start"] = "init"
        make_problem(runner.start_model(parse_spec(raw), splits["train"], 10), {"val": splits["val"]}, config)
