"""`MixtureActivation`: values and gradients against the NumPy reference, the candidate table's
bounded growth, finiteness at extreme inputs, warm start near GELU, shrinking, the chosen layer,
save/load, mixed precision and the errors, on every backend."""

import keras
import numpy as np
import pytest
from helpers.testing import grad, to_numpy
from keras import ops

from keras_bioact import mixture_candidates, reference
from keras_bioact.errors import BioactError
from keras_bioact.layers import MixtureActivation
from keras_bioact.layers.mixture_activation import mixture

ALL = mixture_candidates.names()
X = np.array([-30.0, -4.0, -1.0, -0.25, 0.0, 0.3, 1.0, 4.0, 30.0], "float32")
EXTREME = np.array([-3.4e38, -1e30, -1e4, -88.0, -1e-30, 0.0, 1e-30, 88.0, 1e4, 1e30, 3.4e38], "float32")


def test_the_two_tables_name_the_same_candidates():
    assert tuple(reference.MIXTURE_CANDIDATES) == ALL


@pytest.mark.parametrize("name", ALL)
def test_each_candidate_matches_its_reference(name):
    y = to_numpy(mixture_candidates.CANDIDATES[name].fn(ops.convert_to_tensor(X)))
    np.testing.assert_allclose(y, reference.MIXTURE_CANDIDATES[name](X), rtol=2e-6, atol=2e-6)


def test_mixture_matches_reference_with_a_mask_and_a_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=len(ALL)).astype("float32")
    active = (rng.random(len(ALL)) > 0.4).astype("float32")
    active[3] = 1.0
    y = to_numpy(mixture(ops.convert_to_tensor(X), logits, active, ALL, 0.5))
    expected = reference.mixture(X, ALL, logits, active, 0.5)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    # the layer computes the same function of its variables
    layer = MixtureActivation(candidates=ALL, temperature=0.5, warm_start=None)
    layer.build((None, len(X)))
    layer.logits.assign(logits)
    layer.active.assign(active)
    np.testing.assert_allclose(to_numpy(layer(X[None]))[0], expected, rtol=1e-5, atol=1e-5)


def test_bounded_growth_of_every_candidate():
    """|f(x)| <= |x| + 1 on a grid up to the float32 maximum: why the mixture needs no clipping."""
    x = np.concatenate([EXTREME, np.linspace(-50, 50, 201, dtype="float32")])
    for name in ALL:
        y = to_numpy(mixture_candidates.CANDIDATES[name].fn(ops.convert_to_tensor(x))).astype("float64")
        assert np.all(np.abs(y) <= np.abs(x.astype("float64")) + 1.0), name


def test_value_and_gradients_are_finite_for_extreme_inputs():
    k = len(ALL)
    for logits in (np.zeros(k, "float32"), np.linspace(-20, 20, k).astype("float32")):
        active = np.ones(k, "float32")
        active[::3] = 0.0

        def f(x, a, active=active):
            return mixture(x, a, active, ALL, 1.0)

        y = to_numpy(f(ops.convert_to_tensor(EXTREME), logits))
        gx, ga = grad(f, EXTREME, logits)
        assert np.isfinite(y).all() and np.isfinite(gx).all() and np.isfinite(ga).all()
        assert np.all(ga[active == 0] == 0.0)  # a removed candidate's logit gets no gradient


def test_gradient_with_respect_to_logits_matches_reference():
    k = len(ALL)
    logits = np.linspace(-1, 1, k).astype("float32")
    active = np.ones(k, "float32")
    _, ga = grad(lambda x, a: mixture(x, a, active, ALL, 2.0), X, logits)
    eps = 1e-6
    numeric = [
        (
            reference.mixture(X, ALL, logits + eps * np.eye(k)[i], active, 2.0)
            - reference.mixture(X, ALL, logits - eps * np.eye(k)[i], active, 2.0)
        ).sum()
        / (2 * eps)
        for i in range(k)
    ]
    np.testing.assert_allclose(ga, numeric, rtol=1e-4, atol=1e-4)


def test_warm_start_is_close_to_gelu():
    layer = MixtureActivation()
    x = np.linspace(-3, 3, 61, dtype="float32")[None]
    y = to_numpy(layer(x))[0]
    w = layer.weights_numpy()
    assert layer.candidates[int(np.argmax(w))] == "gelu" and abs(w.max() - 0.9) < 1e-6
    gelu = reference.activation("gelu")(x[0])
    # every other candidate differs from GELU by at most |x| + 1 here; it has weight 0.1 in all
    assert np.all(np.abs(y - gelu) <= 0.1 * (np.abs(x[0]) + 1.0))
    assert np.max(np.abs(y - gelu)) < 0.35
    uniform = MixtureActivation(warm_start=None)
    uniform.build((None, 3))
    np.testing.assert_allclose(uniform.weights_numpy(), np.full(8, 1 / 8), rtol=1e-6)


def test_shrinking_reaches_one_candidate_and_the_chosen_layer_computes_it():
    layer = MixtureActivation(candidates=["relu", "gelu", "tanh", "eru", "gamma"], warm_start=None)
    layer.build((None, 4))
    layer.logits.assign(np.array([0.1, 0.5, -1.0, 2.0, 0.3], "float32"))
    assert layer.shrink(3) == ("relu", "tanh")
    assert layer.remaining == ("gelu", "eru", "gamma")
    np.testing.assert_allclose(layer.weights_numpy()[[0, 2]], 0.0)
    assert layer.shrink(1) == ("gelu", "gamma") and layer.remaining == ("eru",) and layer.chosen == "eru"
    assert layer.shrink(1) == ()
    x = X[None]
    np.testing.assert_allclose(to_numpy(layer(x)), reference.eru(x, 2.0), rtol=1e-5, atol=1e-6)
    plain = layer.chosen_layer(name="plain")
    np.testing.assert_allclose(to_numpy(plain(x)), to_numpy(layer(x)), rtol=1e-6, atol=1e-6)
    with pytest.raises(BioactError, match="keep"):
        layer.shrink(0)


@pytest.mark.parametrize("name", ALL)
def test_chosen_layer_of_each_candidate_matches_the_candidate(name):
    layer = MixtureActivation(candidates=[name], warm_start=None)
    y = to_numpy(layer(X[None]))
    np.testing.assert_allclose(to_numpy(layer.chosen_layer()(X[None])), y, rtol=1e-5, atol=1e-6)


def test_save_and_load_with_safe_mode(tmp_path):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), MixtureActivation(temperature=2.0)])
    model.layers[-1].logits.assign(np.arange(8, dtype="float32") / 4)
    model.layers[-1].shrink(5)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)
    assert loaded.layers[-1].remaining == model.layers[-1].remaining
    assert loaded.layers[-1].temperature == 2.0


def test_mixed_precision_output_dtype_and_float32_variables():
    layer = MixtureActivation(dtype="mixed_float16")
    y = layer(np.array([[-60000.0, -3.0, 0.0, 60000.0]], "float32"))
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert np.isfinite(to_numpy(ops.cast(y, "float32"))).all()
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(candidates=["relu", "swishy"]), r"unknown candidate 'swishy'.*legal: \('identity'"),
        (dict(candidates=[]), "non-empty list"),
        (dict(candidates="relu"), "non-empty list"),
        (dict(candidates=["relu", "relu"]), "repeats"),
        (dict(candidates=["relu", "tanh"]), "warm_start"),
        (dict(warm_weight=1.0), "warm_weight"),
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs, match):
    with pytest.raises(BioactError, match=match):
        MixtureActivation(**kwargs)
