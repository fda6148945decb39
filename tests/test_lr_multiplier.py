"""`keras_bioact.optimizers.ActivationLRMultiplier` (runs on every backend)."""

import keras
import numpy as np
import pytest

from keras_bioact.layers import BRU, GammaActivation
from keras_bioact.optimizers import ActivationLRMultiplier

X = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
Y = np.random.default_rng(1).normal(size=(32, 1)).astype("float32")


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6),
            GammaActivation(n_initializer=3.0, s_initializer=0.2, name="g"),
            keras.layers.Dense(6),
            BRU(r=1.5, trainable_r=True, name="b"),
            keras.layers.Dense(1),
        ]
    )


def _key(i, variable):
    layer, name = variable.path.split("/")[-2:]
    return f"{layer}/{name}" if layer in ("g", "b") else f"{i}:{name}"


def _step(optimizer_fn, multiplier, steps=1):
    """Weight change after `steps` full-batch steps: {"g/n": delta, ..., "0:kernel": delta, ...}."""
    model = _model()
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]
    opt = optimizer_fn()
    if multiplier is not None:
        opt = ActivationLRMultiplier(opt, multiplier, model=model)
    model.compile(optimizer=opt, loss="mse")
    model.fit(X, Y, batch_size=32, epochs=steps, verbose=0, shuffle=False)
    return {
        _key(i, v): np.array(keras.ops.convert_to_numpy(v)) - before[i] for i, v in enumerate(model.weights)
    }


ACTIVATION_PARAMS = ("g/n", "g/s", "b/r")
# The factor is applied exactly to the update; what is compared is the change of a float32
# parameter (values 0.2 .. 3), which is rounded to 1 ulp (<= 2.4e-7) when stored: atol 5e-7.


@pytest.mark.parametrize(
    "optimizer_fn",
    [lambda: keras.optimizers.SGD(0.05), lambda: keras.optimizers.Adam(0.01)],
    ids=["sgd", "adam"],
)
def test_multiplier_scales_the_update_by_the_factor(optimizer_fn):
    plain = _step(optimizer_fn, None)
    one = _step(optimizer_fn, 1.0)
    three = _step(optimizer_fn, 3.0)
    for key in plain:
        np.testing.assert_allclose(one[key], plain[key], rtol=1e-6, atol=1e-9)
        if key in ACTIVATION_PARAMS:
            assert np.abs(plain[key]).max() > 1e-4, key  # the parameter does move
            np.testing.assert_allclose(three[key], 3.0 * plain[key], rtol=1e-5, atol=5e-7)
        else:
            np.testing.assert_allclose(three[key], plain[key], rtol=1e-6, atol=1e-9)


def test_per_name_multipliers_and_freezing():
    sgd = lambda: keras.optimizers.SGD(0.05)
    plain = _step(sgd, None)
    mixed = _step(sgd, {"n": 0.5, "s": 0.0})
    np.testing.assert_allclose(mixed["g/n"], 0.5 * plain["g/n"], rtol=1e-5, atol=5e-7)
    np.testing.assert_array_equal(mixed["g/s"], 0.0)
    np.testing.assert_allclose(mixed["b/r"], plain["b/r"], rtol=1e-6, atol=1e-9)  # r not in dict: factor 1


def test_constraint_is_reapplied_after_scaling():
    model = _model()
    opt = ActivationLRMultiplier(keras.optimizers.SGD(10.0), 1000.0, model=model)
    model.compile(optimizer=opt, loss="mse")
    model.fit(X, Y * 100, batch_size=32, epochs=1, verbose=0)
    n = keras.ops.convert_to_numpy(model.get_layer("g").n)
    assert n.min() == np.float32(0.01)  # the huge scaled step hit the bound n >= 0.01 and was clipped
    assert keras.ops.convert_to_numpy(model.get_layer("b").r).min() >= 1.0


def test_delegation_and_serialization(tmp_path):
    model = _model()
    opt = ActivationLRMultiplier(keras.optimizers.Adam(0.01), 5.0, model=model)
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(0.01)
    opt.learning_rate = 0.002  # what ReduceLROnPlateau does
    assert float(keras.ops.convert_to_numpy(opt.inner_optimizer.learning_rate)) == pytest.approx(0.002)
    model.compile(optimizer=opt, loss="mse")
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(opt.iterations)) == 2
    assert sorted("/".join(p.split("/")[-2:]) for p in opt.multipliers) == sorted(ACTIVATION_PARAMS)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, ActivationLRMultiplier)
    assert loaded.optimizer.multipliers == opt.multipliers
    loaded.fit(X, Y, batch_size=16, epochs=1, verbose=0)  # trains on after loading


def test_bad_arguments():
    model = _model()
    with pytest.raises(ValueError, match="multiplier"):
        ActivationLRMultiplier(keras.optimizers.SGD(), -1.0, model=model)
    with pytest.raises(ValueError, match="multiplier"):
        ActivationLRMultiplier(keras.optimizers.SGD(), float("nan"), model=model)
    with pytest.raises(ValueError, match="model"):
        ActivationLRMultiplier(keras.optimizers.SGD(), 2.0)
    with pytest.raises(ValueError, match="optimizer"):
        ActivationLRMultiplier(object(), 2.0, model=model)
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no keras-bioact activation parameters"):
        ActivationLRMultiplier(keras.optimizers.SGD(), 2.0, model=plain)
