"""keras_bioact.params: finding activation parameters and the flat-vector view."""

import keras
import numpy as np
import pytest
from helpers.testing import to_numpy

from keras_bioact.layers import BRU, GammaActivation
from keras_bioact.params import ParameterView, activation_parameters


def _model():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4), GammaActivation(s_constraint="unit", name="inner_gamma")],
        name="inner",
    )
    shared_bru = BRU("eru", r=2.0, trainable_r=True, shared_axes=None, name="shared_bru")
    inputs = keras.Input((4,))
    a = inner(inputs)
    b = inner(a)  # the nested model is used twice
    a = shared_bru(a)
    b = shared_bru(b)  # and so is this layer
    h = keras.layers.Concatenate()([a, b])
    h = GammaActivation(shared_axes="all", trainable_params=(), name="static_gamma")(h)
    h = BRU("oru", r=1.5, name="fixed_bru")(h)
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def test_activation_parameters_nested_and_shared_once():
    model = _model()
    found = activation_parameters(model)
    paths = [p.path for p in found]
    assert sorted(paths) == sorted(
        ["inner_gamma/n", "inner_gamma/s", "shared_bru/r", "static_gamma/n", "static_gamma/s", "fixed_bru/r"]
    )
    assert len({id(p.variable) for p in found}) == len(found)
    by_path = {p.path: p for p in found}
    assert (by_path["inner_gamma/n"].low, by_path["inner_gamma/n"].high) == (0.01, None)
    assert (by_path["inner_gamma/s"].low, by_path["inner_gamma/s"].high) == (0.0, 1.0)
    assert (by_path["static_gamma/s"].low, by_path["static_gamma/s"].high) == (None, None)
    assert (by_path["shared_bru/r"].low, by_path["shared_bru/r"].high) == (1.0, None)
    assert by_path["shared_bru/r"].shape == (4,) and by_path["static_gamma/n"].shape == ()
    trainable = {p.path for p in activation_parameters(model, trainable_only=True)}
    assert trainable == {"inner_gamma/n", "inner_gamma/s", "shared_bru/r"}
    # Order is stable.
    assert [p.path for p in activation_parameters(model)] == paths


def test_activation_parameters_needs_built_layers():
    with pytest.raises(ValueError, match="not built"):
        activation_parameters(keras.Sequential([GammaActivation()]))


def test_vector_round_trip_is_exact():
    model = _model()
    view = ParameterView(model)
    assert view.size == 4 + 4 + 4 + 1 + 1 + 1
    v = view.get_vector()
    assert v.dtype == np.float64 and v.shape == (view.size,)
    view.set_vector(v)
    np.testing.assert_array_equal(view.get_vector(), v)
    # A new vector (float32-representable, inside the bounds) is written exactly.
    low, high = view.bounds()
    rng = np.random.default_rng(0)
    new = np.clip(rng.uniform(0.05, 3.0, view.size), low, high).astype("float32").astype("float64")
    view.set_vector(new)
    np.testing.assert_array_equal(view.get_vector(), new)
    parts = view.split(new)
    for p, part in zip(view.parameters, parts, strict=True):
        assert part.shape == p.shape
        np.testing.assert_array_equal(to_numpy(p.variable), part.astype("float32"))


def test_set_vector_changes_the_model_output():
    model = _model()
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    before = model.predict(x, verbose=0)
    view = ParameterView(model)
    view.set_vector(view.get_vector() * 1.5 + 0.1)
    assert not np.allclose(model.predict(x, verbose=0), before)


def test_set_vector_clips_to_bounds():
    model = _model()
    view = ParameterView(model)
    low, high = view.bounds()
    view.set_vector(np.full(view.size, -5.0))
    v = view.get_vector()
    np.testing.assert_allclose(v, np.where(np.isfinite(low), low, -5.0), rtol=1e-7)
    view.set_vector(np.full(view.size, 7.0))
    v = view.get_vector()
    np.testing.assert_allclose(v, np.where(np.isfinite(high), high, 7.0), rtol=1e-7)
    by = {p.path: part for p, part in zip(view.parameters, view.split(v), strict=True)}
    np.testing.assert_array_equal(by["inner_gamma/s"], 1.0)


def test_bounds_and_split_shapes():
    view = ParameterView(_model())
    low, high = view.bounds()
    assert low.shape == high.shape == (view.size,)
    assert np.all(low < high)
    with pytest.raises(ValueError, match="length"):
        view.split(np.zeros(view.size + 1))
    batch = view.split(np.zeros((5, view.size)))
    assert all(b.shape == (5,) + p.shape for b, p in zip(batch, view.parameters, strict=True))


def test_unconstrained_round_trip():
    model = _model()
    view = ParameterView(model)
    v = view.get_vector()
    u = view.get_vector("unconstrained")
    assert np.isfinite(u).all()
    np.testing.assert_allclose(view.to_natural(u, "unconstrained"), v, rtol=1e-6, atol=1e-9)
    view.set_vector(u, "unconstrained")
    np.testing.assert_allclose(view.get_vector(), v, rtol=1e-6, atol=1e-7)
    # Any real vector maps inside the bounds.
    low, high = view.bounds()
    w = view.to_natural(np.random.default_rng(2).normal(scale=30.0, size=(10, view.size)), "unconstrained")
    assert np.all(w >= low) and np.all(w <= high) and np.isfinite(w).all()


def test_bad_space_and_empty_model():
    view = ParameterView(_model())
    with pytest.raises(ValueError, match="space"):
        view.get_vector("logit")
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no keras-bioact activation parameters"):
        ParameterView(plain)
