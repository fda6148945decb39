"""BRU layer: correctness, sharing, trainable radix and its constraint (Keras layer harness:
test_layer_harness.py)."""

import keras
import numpy as np
import pytest
from helpers.testing import eru_ref, oru_ref, to_numpy
from keras import ops

from keras_bioact import constraints as bconstraints
from keras_bioact.initializers import BRUInitializer
from keras_bioact.layers import BRU


@pytest.mark.parametrize("form", ["eru", "oru"])
def test_call_matches_reference_per_channel(form, rng):
    ref = eru_ref if form == "eru" else oru_ref
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32") * 3
    layer = BRU(form=form, shared_axes=[1, 2])
    layer.build(x.shape)
    assert tuple(layer.r.shape) == (1, 1, 3)
    np.testing.assert_array_equal(to_numpy(layer.r), 2.0)
    r = np.array([[[1.0, 2.5, 7.0]]], "float32")
    layer.r.assign(r)
    np.testing.assert_allclose(to_numpy(layer(x)), ref(x, r), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shared_axes, shape",
    [("all", ()), (None, (5, 3)), (1, (1, 3)), (-1, (5, 1)), ([1, 2], (1, 1))],
)
def test_shared_axes_shapes(shared_axes, shape):
    layer = BRU(shared_axes=shared_axes)
    layer.build((None, 5, 3))
    assert tuple(layer.r.shape) == shape


def test_default_is_one_fixed_radix_for_the_layer():
    layer = BRU()
    layer.build((None, 7))
    assert layer.form == "eru" and tuple(layer.r.shape) == () and not layer.r.trainable
    assert float(to_numpy(layer.r)) == 2.0
    assert layer.bioact_parameters == ("r",)


def _fit(layer, sign, lr, x, steps=1):
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=lambda y_true, y_pred: sign * ops.mean(y_pred))
    for _ in range(steps):
        model.train_on_batch(x, np.zeros_like(x))
    return layer


def test_trainable_radix_learns_and_is_kept_at_least_one():
    x = np.zeros((4, 3), "float32")
    # ERU(0) = 1 - 1/r increases with r: minimising it drives r down, the default floor is 1.
    layer = _fit(BRU(r=1.2, trainable_r=True), 1.0, 10.0, x)
    assert float(to_numpy(layer.r)) == 1.0
    layer = _fit(BRU(r=1.2, trainable_r=True, r_constraint=bconstraints.Bounds(0.5)), 1.0, 10.0, x)
    assert float(to_numpy(layer.r)) == 0.5
    # And it does move the other way.
    layer = _fit(BRU(r=1.2, trainable_r=True), -1.0, 1.0, x)
    assert float(to_numpy(layer.r)) > 1.2


def test_fixed_radix_does_not_learn():
    x = np.zeros((4, 3), "float32")
    layer = _fit(BRU(r=1.2), 1.0, 10.0, x)
    assert float(to_numpy(layer.r)) == pytest.approx(1.2)


@pytest.mark.parametrize(
    "form, r", [("eru", 1.0), ("eru", 2.0), ("eru", 3.5), ("oru", 1.0), ("oru", 2.0), ("oru", 4.0)]
)
def test_bru_initializer_variance(form, r):
    fan_in, fan_out = 400, 300
    w = to_numpy(BRUInitializer(r=r, form=form, seed=7)((fan_in, fan_out)))
    expected = 6.0 / (fan_in * (2 * r + 1)) if form == "eru" else 2.0 / (fan_in * r)
    # Sampling error of a variance estimate from N = 120,000 draws: sqrt(2/N) = 0.4 %.
    assert w.var() == pytest.approx(expected, rel=0.02)
    assert abs(w.mean()) < 4 * np.sqrt(expected / w.size)


@pytest.mark.parametrize("distribution", ["uniform", "untruncated_normal"])
def test_bru_initializer_distributions(distribution):
    w = to_numpy(BRUInitializer(r=2.0, form="eru", distribution=distribution, seed=1)((500, 200)))
    assert w.var() == pytest.approx(6.0 / (500 * 5), rel=0.02)
    if distribution == "uniform":
        limit = np.sqrt(3 * 6.0 / (500 * 5))
        assert np.abs(w).max() <= limit


def test_bru_initializer_config_round_trip():
    init = BRUInitializer(r=3.0, form="oru", distribution="uniform", seed=5)
    config = keras.initializers.serialize(init)
    clone = keras.initializers.deserialize(config)
    assert isinstance(clone, BRUInitializer)
    got = (clone.r, clone.form, clone.distribution, clone.seed, clone.scale)
    assert got == (3.0, "oru", "uniform", 5, 2.0 / 3.0)
    fresh = BRUInitializer(3.0, "oru", "uniform", 5)
    np.testing.assert_array_equal(to_numpy(clone((4, 4))), to_numpy(fresh((4, 4))))
