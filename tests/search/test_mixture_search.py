"""The mixture search (`keras_bioact.search.mixture`): the first-order alternation updates the
mixture logits on the validation batch only and the network weights on the training batch only,
shrinking reaches one candidate per site, `discretize` keeps the chosen candidate, a `[mixture]`
spec is refused for bad keys before training and runs end to end."""

import json

import keras
import numpy as np
import pytest
from helpers.testing import to_numpy
from sklearn.datasets import load_digits

from keras_bioact.layers import MixtureActivation
from keras_bioact.search import mixture as mix
from keras_bioact.search import run_spec
from keras_bioact.search.spec import SpecError, parse_spec
from keras_bioact.search.templates import mlp

CANDIDATES = ["relu", "gelu", "tanh"]


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype("float32"), y.astype("int32")
    return (x[:128], y[:128]), (x[128:192], y[128:192])


def _model(seed=0, hidden=(8,), **kwargs):
    keras.utils.set_random_seed(seed)
    return mlp(mix.MixtureSites(candidates=CANDIDATES, **kwargs), (64,), 10, hidden=hidden)


def _values(variables):
    return [np.array(to_numpy(v)) for v in variables]


def _loss(model, x, y):
    return float(to_numpy(keras.losses.SparseCategoricalCrossentropy()(y, model(x))))


def _logit_gradient(model, batch, eps=1e-2):
    """Central finite differences of the batch loss with respect to the (one) site's logits."""
    logits = mix.architecture_variables(model)[0]
    start = np.array(to_numpy(logits))
    out = []
    for i in range(len(start)):
        step = eps * np.eye(len(start), dtype="float32")[i]
        logits.assign(start + step)
        up = _loss(model, *batch)
        logits.assign(start - step)
        out.append((up - _loss(model, *batch)) / (2 * eps))
    logits.assign(start)
    return np.array(out)


def test_variables_are_split_into_architecture_and_network():
    model = _model(hidden=(8, 8))
    arch, net = mix.architecture_variables(model), mix.network_variables(model)
    assert [v.path.split("/")[-2:] for v in arch] == [["mixture_0", "logits"], ["mixture_1", "logits"]]
    assert len(net) == 6 and not {id(v) for v in arch} & {id(v) for v in net}
    assert len(arch) + len(net) == len(model.trainable_variables)


def test_alternation_updates_logits_on_validation_and_weights_on_training(digits):
    (xt, yt), (xv, yv) = digits
    train = (xt[:32], yt[:32])
    model = _model(seed=1, warm_start=None)
    twin = _model(seed=1, warm_start=None)
    twin.set_weights(model.get_weights())
    g_train = _logit_gradient(twin, train)
    # A validation batch (other labels) that pulls the logits another way than the training
    # batch, so that the test can tell which batch the architecture step used.
    for shift in range(1, 10):
        val = (xv[:32], (yv[:32] + shift) % 10)
        g_val = _logit_gradient(twin, val)
        if np.any(np.sign(g_val) != np.sign(g_train)) and np.min(np.abs(g_val)) > 1e-4:
            break
    else:
        pytest.fail("no validation batch pulls the logits another way")
    logits0 = _values(mix.architecture_variables(model))[0]

    alternation = mix.Alternation(model, learning_rate=0.01, arch_learning_rate=0.1)
    mix.alternate_step(alternation, train, val)

    # Adam's first step moves each logit by the learning rate against its gradient's sign:
    # the validation batch's gradient, at the starting weights.
    logits1 = _values(mix.architecture_variables(model))[0]
    np.testing.assert_allclose(logits1, logits0 - 0.1 * np.sign(g_val), atol=2e-3)
    # The weights took one Adam step on the training batch with the new logits held fixed:
    # the same as Keras' own train_on_batch on the twin.
    mix.architecture_variables(twin)[0].assign(logits1)
    for layer in mix.mixture_layers(twin):
        layer.trainable = False
    twin.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    twin.train_on_batch(*train)
    for got, want in zip(
        _values(mix.network_variables(model)), _values(twin.trainable_variables), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_remaining_after_falls_linearly_to_one():
    assert [mix.remaining_after(e, 8, 4) for e in range(1, 5)] == [6, 4, 2, 1]
    assert [mix.remaining_after(e, 5, 5, shrink_start=2) for e in range(1, 6)] == [5, 5, 3, 2, 1]
    assert mix.remaining_after(1, 1, 1) == 1


def test_search_shrinks_every_site_to_one_candidate(digits):
    model = _model(hidden=(8, 8))
    history = mix.search(model, *digits, epochs=2, batch_size=32, arch_learning_rate=0.05)
    assert [len(row["sites"]["mixture_0"]["remaining"]) for row in history] == [2, 1]
    for layer in mix.mixture_layers(model):
        assert layer.remaining == (layer.chosen,)
        np.testing.assert_allclose(layer.weights_numpy().max(), 1.0)


def test_discretize_takes_the_argmax_and_matches_a_one_hot_mixture(digits):
    model = _model(hidden=(8, 8))
    first, second = mix.mixture_layers(model)
    first.logits.assign(np.array([0.0, 0.5, 2.0], "float32"))  # tanh has the highest weight
    second.logits.assign(np.array([1.0, 0.0, 0.0], "float32"))
    second.shrink(1)  # one-hot: relu
    discrete = mix.discretize(model)
    kinds = [
        layer.get_config().get("activation") for layer in discrete.layers if layer.name.startswith("mixture")
    ]
    assert kinds == ["tanh", "relu"]
    assert not mix.mixture_layers(discrete)
    first.shrink(1)  # now both sites are one-hot: the same function
    x = digits[0][0][:16]
    np.testing.assert_allclose(to_numpy(discrete(x)), to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    fresh = mix.discretize(model, keep_weights=False)
    assert not np.allclose(to_numpy(fresh(x)), to_numpy(model(x)))


def test_mixture_sites_refuse_bad_arguments():
    with pytest.raises(ValueError, match="unknown candidate 'nope'"):
        mix.MixtureSites(candidates=["relu", "nope"])
    assert isinstance(mix.MixtureSites().layer(2), MixtureActivation)


# ---------------------------------------------------------------------------- the spec

TINY = {
    "mixture": {"candidates": CANDIDATES, "epochs": 1, "seeds": 1, "arch_learning_rate": 0.05},
    "data": {"max_train": 96, "max_val": 48, "max_test": 64},
    "model": {"hidden": [8]},
    "budget": {"epochs": 1, "batch_size": 32},
}


@pytest.mark.single_backend
@pytest.mark.parametrize(
    "change, key, match",
    [
        ({"mixture": {"candidate": ["relu"]}}, "mixture.candidate", "unknown key; did you mean 'candidates'"),
        ({"mixture": {"candidates": ["relu", "swoosh"]}}, "mixture.candidates", "unknown candidate 'swoosh'"),
        ({"mixture": {"candidates": []}}, "mixture.candidates", "at least one"),
        ({"mixture": {"candidates": ["relu", "relu"]}}, "mixture.candidates", "repeats"),
        ({"mixture": {"candidates": ["relu", "tanh"]}}, "mixture.warm_start", "one of the candidates"),
        ({"mixture": {"baseline": "relu6"}}, "mixture.baseline", "none"),
        ({"mixture": {"epochs": 3, "shrink_start": 3}}, "mixture.shrink_start", "< mixture.epochs"),
        ({"mixture": {"temperature": 0.0}}, "mixture.temperature", r"\[0.01, 100\]"),
        ({"mixture": {"warm_weight": 1.0}}, "mixture.warm_weight", r"\(0, 1\)"),
        ({"mixture": {"epochs": 0}}, "mixture.epochs", "must be in"),
        ({"mixture": {}, "budget": {"epochs": 0}}, "budget.epochs", "retraining"),
        ({"mixture": {}, "space": {"families": ["relu"]}}, "space", "mixture.candidates"),
        ({"mixture": {}, "optuna": {}}, "<top>", "exactly one engine"),
    ],
)
def test_bad_mixture_specs_are_refused(change, key, match):
    with pytest.raises(SpecError, match=match) as info:
        parse_spec(change, source="bad.toml")
    assert info.value.key == key


@pytest.mark.single_backend
def test_engine_keywords_of_other_engines_are_refused():
    spec = parse_spec({"mixture": {}}, source="m.toml")
    with pytest.raises(SpecError, match="does not apply to an mixture spec") as info:
        run_spec(spec, n_trials=3)
    assert info.value.key == "n_trials"


@pytest.mark.single_backend
def test_a_tiny_mixture_spec_runs_end_to_end(tmp_path):
    lines = []
    spec = parse_spec({**TINY, "output": {"dir": str(tmp_path)}}, source="tiny.toml")
    result = run_spec(spec, progress=False, log=lines.append)
    assert set(result.chosen) == {"mixture_0"} and result.chosen["mixture_0"] in CANDIDATES
    assert any(line.startswith("chosen activation per layer: mixture_0: ") for line in lines)
    assert len(result.retrained) == 1 and len(result.baseline) == 1
    assert result.retrained[0]["seed"] == 1 and 0.0 <= result.retrained[0]["test_accuracy"] <= 1.0
    saved = json.loads((tmp_path / mix.RESULT_FILE).read_text())
    assert saved["chosen"] == result.chosen and saved["retrained"] == result.retrained
    assert saved["baseline"]["activation"] == "gelu"
    assert not mix.mixture_layers(result.discretized)
