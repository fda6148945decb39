"""GammaActivation: correctness, parameter sharing, modes and constraints (Keras layer harness:
test_layer_harness.py)."""

import keras
import numpy as np
import pytest
from helpers.testing import gamma_ref, to_numpy
from keras import ops

from keras_bioact import constraints as bconstraints
from keras_bioact.initializers import GammaGain
from keras_bioact.layers import GammaActivation


def _layer(input_shape, **kwargs):
    layer = GammaActivation(**kwargs)
    layer.build(input_shape)
    return layer


def test_default_init_is_papers_gain_and_zero_saturation():
    layer = _layer((None, 64))
    n = to_numpy(layer.n)
    s = to_numpy(layer.s)
    assert n.shape == (64,) and s.shape == (64,)
    assert n.min() >= 5.0 and n.max() <= 7.0 and n.std() > 0.1  # n0 = 5 + 2 U(0, 1), per neuron
    np.testing.assert_array_equal(s, 0.0)
    assert layer.n.dtype == "float32" and layer.s.dtype == "float32"
    assert layer.n.trainable and layer.s.trainable


def test_call_matches_reference_per_element(rng):
    x = rng.normal(size=(3, 4, 5)).astype("float32") * 4
    layer = _layer(x.shape)
    n = rng.uniform(0.2, 9.0, size=(4, 5)).astype("float32")
    s = rng.uniform(-0.3, 1.3, size=(4, 5)).astype("float32")
    layer.n.assign(n)
    layer.s.assign(s)
    np.testing.assert_allclose(to_numpy(layer(x)), gamma_ref(x, n, s), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shared_axes, param_shape",
    [
        (None, (5, 6, 3)),
        (1, (1, 6, 3)),
        ([1, 2], (1, 1, 3)),
        ((1, 2, 3), (1, 1, 1)),
        ("all", ()),
        (-1, (5, 6, 1)),
        ([-3, -2], (1, 1, 3)),
    ],
)
def test_shared_axes_shapes(shared_axes, param_shape, rng):
    x = rng.normal(size=(2, 5, 6, 3)).astype("float32")
    layer = GammaActivation(shared_axes=shared_axes)
    y = layer(x)
    assert tuple(layer.n.shape) == param_shape and tuple(layer.s.shape) == param_shape
    assert tuple(y.shape) == x.shape
    n = rng.uniform(0.5, 5.0, size=param_shape).astype("float32")
    s = rng.uniform(0.0, 1.0, size=param_shape).astype("float32")
    layer.n.assign(n)
    layer.s.assign(s)
    np.testing.assert_allclose(to_numpy(layer(x)), gamma_ref(x, n, s), rtol=1e-5, atol=1e-6)


def test_shared_axes_allow_unknown_sizes():
    # A variable-length sequence axis must be shared, and then the layer works for any length.
    inputs = keras.Input((None, 4))
    layer = GammaActivation(shared_axes=1)
    model = keras.Model(inputs, layer(inputs))
    assert tuple(layer.n.shape) == (1, 4)
    for steps in (2, 7):
        assert tuple(model.predict(np.ones((3, steps, 4), "float32"), verbose=0).shape) == (3, steps, 4)


def test_unknown_size_not_shared_raises():
    with pytest.raises(ValueError, match="shared_axes"):
        GammaActivation()(keras.Input((None, 4)))


@pytest.mark.parametrize(
    "trainable_params, trainable",
    [(("n", "s"), {"n", "s"}), (("n",), {"n"}), ("s", {"s"}), ((), set()), (["s", "n"], {"n", "s"})],
)
def test_trainable_params(trainable_params, trainable):
    layer = _layer((None, 3), trainable_params=trainable_params)
    assert {v.name for v in layer.trainable_weights} == trainable
    assert {v.name for v in layer.non_trainable_weights} == {"n", "s"} - trainable
    assert set(layer.get_config()["trainable_params"]) == trainable


def _fit_one_step(layer, sign, lr, x):
    """One SGD step on loss = sign * mean(layer(x)), returns the layer."""
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=lambda y_true, y_pred: sign * ops.mean(y_pred))
    model.train_on_batch(x, np.zeros_like(x))
    return layer


def test_n_floor_after_optimizer_step():
    x = np.zeros((4, 3), "float32")
    # At x = 0, d gamma / dn = -(1 - s) ln2 / n^2 < 0, so minimising -gamma drives n down hard.
    free = _fit_one_step(GammaActivation(n_initializer=0.05, n_constraint=None), -1.0, 1.0, x)
    assert to_numpy(free.n).max() < 0.0  # without the floor the step would make n negative
    floored = _fit_one_step(GammaActivation(n_initializer=0.05), -1.0, 1.0, x)
    np.testing.assert_allclose(to_numpy(floored.n), 0.01, rtol=1e-6)
    assert np.isfinite(to_numpy(floored(np.linspace(-1e4, 1e4, 12).reshape(4, 3).astype("float32")))).all()
    custom = _fit_one_step(
        GammaActivation(n_initializer=0.5, n_constraint=bconstraints.Bounds(0.25, 4.0)), -1.0, 10.0, x
    )
    np.testing.assert_allclose(to_numpy(custom.n), 0.25)


def test_s_unit_constraint():
    x = np.zeros((4, 3), "float32")
    # At x = 0, n = 1: d gamma / ds = 1/2 - ln 2 < 0, so minimising gamma pushes s up.
    free = _fit_one_step(GammaActivation(n_initializer=1.0, s_initializer=0.9), 1.0, 10.0, x)
    assert to_numpy(free.s).min() > 1.0  # the faithful default lets s leave [0, 1]
    unit = GammaActivation(n_initializer=1.0, s_initializer=0.9, s_constraint="unit")
    unit = _fit_one_step(unit, 1.0, 10.0, x)
    np.testing.assert_array_equal(to_numpy(unit.s), 1.0)
    down = GammaActivation(n_initializer=1.0, s_initializer=0.1, s_constraint="unit")
    down = _fit_one_step(down, -1.0, 10.0, x)
    np.testing.assert_array_equal(to_numpy(down.s), 0.0)


def test_static_mode_does_not_learn():
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    layer = GammaActivation(n_initializer=2.0, s_initializer=0.5, trainable_params=())
    layer = _fit_one_step(layer, 1.0, 1.0, x)
    np.testing.assert_array_equal(to_numpy(layer.n), 2.0)
    np.testing.assert_array_equal(to_numpy(layer.s), 0.5)


def test_gamma_gain_initializer():
    values = to_numpy(GammaGain(seed=3)((1000,)))
    assert values.min() >= 5.0 and values.max() <= 7.0
    assert abs(values.mean() - 6.0) < 0.1
    values = to_numpy(GammaGain(1.0, 2.0, seed=1)((500,)))
    assert values.min() >= 1.0 and values.max() <= 2.0
    with pytest.raises(ValueError, match="minval"):
        GammaGain(0.0, 1.0)
    with pytest.raises(ValueError, match="maxval"):
        GammaGain(3.0, 2.0)
