"""Serialization: get_config/from_config, .keras save/load (safe_mode too) and cross-backend load."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers.testing import BACKEND, to_numpy

from keras_bioact import activations, constraints
from keras_bioact.initializers import BRUInitializer, GammaGain
from keras_bioact.layers import BRU, GammaActivation

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    "layer",
    [
        lambda: GammaActivation(),
        lambda: GammaActivation(
            n_initializer=GammaGain(2.0, 3.0, seed=4),
            s_initializer=0.3,
            n_regularizer="l2",
            s_regularizer=keras.regularizers.L1(0.01),
            n_constraint=constraints.Bounds(0.1, 50.0),
            s_constraint="unit",
            shared_axes=[1, -1],
            trainable_params=("s",),
            name="g",
            dtype="mixed_float16",
        ),
        lambda: GammaActivation(shared_axes="all", trainable_params=()),
        lambda: BRU(),
        lambda: BRU("oru", r=3.5, trainable_r=True, shared_axes=2, r_regularizer="l1",
                    r_constraint=constraints.Bounds(1.0, 8.0), name="b"),
    ],
)
def test_get_config_round_trip(layer):
    layer = layer()
    config = layer.get_config()
    json.dumps(config)  # JSON-serializable
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # Via the registered name too.
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_config_keeps_every_argument():
    layer = GammaActivation(n_initializer=2.5, s_constraint="unit", shared_axes=(1, 2), trainable_params="n")
    clone = GammaActivation.from_config(layer.get_config())
    clone.build((None, 3, 3, 2))
    np.testing.assert_array_equal(to_numpy(clone.n), 2.5)
    assert clone.shared_axes == [1, 2] and clone.trainable_params == ("n",)
    assert isinstance(clone.s_constraint, constraints.Bounds)
    assert (clone.s_constraint.min_value, clone.s_constraint.max_value) == (0.0, 1.0)
    assert (clone.n_constraint.min_value, clone.n_constraint.max_value) == (0.01, None)
    bru = BRU.from_config(BRU("oru", r=4.0, trainable_r=True).get_config())
    assert (bru.form, bru.r_value, bru.trainable_r) == ("oru", 4.0, True)
    assert bru.r_constraint.min_value == 1.0


def test_bounds_constraint():
    b = constraints.Bounds(0.5, 2.0)
    np.testing.assert_array_equal(to_numpy(b(keras.ops.convert_to_tensor([0.0, 1.0, 3.0]))), [0.5, 1.0, 2.0])
    clone = keras.constraints.deserialize(keras.constraints.serialize(b))
    assert isinstance(clone, constraints.Bounds) and (clone.min_value, clone.max_value) == (0.5, 2.0)
    assert constraints.bounds_of(constraints.get("unit")) == (0.0, 1.0)
    assert constraints.bounds_of(constraints.get("positive")) == (0.01, None)
    assert constraints.bounds_of(keras.constraints.NonNeg()) == (0.0, None)
    assert constraints.bounds_of(None) == (None, None)
    with pytest.raises(ValueError, match="min_value"):
        constraints.Bounds(2.0, 1.0)
    with pytest.raises(ValueError, match="max_value"):
        constraints.Bounds(0.0, float("inf"))


def _build_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5, 4))
    h = keras.layers.Dense(6, kernel_initializer=BRUInitializer(2.0, "eru"))(inputs)
    h = GammaActivation(s_constraint="unit", shared_axes=1, name="gamma")(h)
    h = keras.layers.Dense(6, activation=activations.eru)(h)
    h = BRU("eru", r=2.0, trainable_r=True, shared_axes=None, name="eru")(h)
    h = keras.layers.Dense(6, activation=activations.gamma)(h)
    h = BRU("oru", r=3.0, name="oru")(h)
    outputs = keras.layers.Dense(3, activation=activations.oru)(h)
    model = keras.Model(inputs, outputs)
    # Non-default activation parameters, so that a lost weight would show.
    rng = np.random.default_rng(seed)
    model.get_layer("gamma").n.assign(rng.uniform(0.5, 8.0, (1, 6)).astype("float32"))
    model.get_layer("gamma").s.assign(rng.uniform(0.0, 1.0, (1, 6)).astype("float32"))
    model.get_layer("eru").r.assign(rng.uniform(1.0, 4.0, (5, 6)).astype("float32"))
    model.get_layer("oru").r.assign(np.float32(1.7))
    return model


@pytest.mark.parametrize("safe_mode", [True, False])
def test_keras_file_round_trip(tmp_path, safe_mode):
    model = _build_model()
    x = np.random.default_rng(1).normal(size=(4, 5, 4)).astype("float32") * 3
    expected = model.predict(x, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=safe_mode)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-7)
    for name in ("gamma", "eru", "oru"):
        for a, b in zip(model.get_layer(name).weights, loaded.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert loaded.get_layer("gamma").s_constraint.max_value == 1.0
    assert loaded.get_layer("eru").r.trainable and not loaded.get_layer("oru").r.trainable


def test_functional_activations_serialize_by_name():
    for fn in (activations.gamma, activations.eru, activations.oru):
        config = keras.layers.Dense(2, activation=fn).get_config()
        restored = keras.layers.Dense.from_config(config)
        assert restored.activation is fn
        assert keras.activations.deserialize(keras.activations.serialize(fn)) is fn
    x = np.linspace(-3, 3, 7).astype("float32")
    np.testing.assert_allclose(to_numpy(activations.gamma(x)), np.logaddexp(0, x), rtol=1e-6)  # softplus
    np.testing.assert_allclose(to_numpy(activations.oru(x, 1.0)), x, rtol=1e-6, atol=1e-6)


_LOAD_AND_CHECK = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_bioact  # registers the serializables
    assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
    d = sys.argv[2]
    x = np.load(d + "/x.npy")
    expected = np.load(d + "/expected.npy")
    for source in sys.argv[4:]:
        model = keras.saving.load_model(d + "/" + source + ".keras", safe_mode=True)
        got = np.asarray(keras.ops.convert_to_numpy(model(x)))
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6, err_msg=source)
    model.save(d + "/" + sys.argv[3] + ".keras")
    print("OK", sys.argv[1], sys.argv[4:])
    """
)


@pytest.mark.single_backend
def test_cross_backend_load(tmp_path):
    """A model saved under each backend loads and predicts the same under the others."""
    model = _build_model(seed=3)
    x = np.random.default_rng(2).normal(size=(4, 5, 4)).astype("float32") * 3
    expected = to_numpy(model(x))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)
    model.save(tmp_path / f"{BACKEND}.keras")
    others = [b for b in ("jax", "tensorflow", "torch") if b != BACKEND]
    saved = [BACKEND]
    for other in others:
        pythonpath = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
        env = dict(os.environ, KERAS_BACKEND=other, PYTHONPATH=pythonpath)
        result = subprocess.run(
            [sys.executable, "-c", _LOAD_AND_CHECK, other, str(tmp_path), other, *saved],
            env=env, capture_output=True, text=True, timeout=300,
        )
        log = f"{result.stdout}\n{result.stderr[-3000:]}"
        assert result.returncode == 0, f"{other} failed to load {saved}:\n{log}"
        assert f"OK {other}" in result.stdout
        saved.append(other)
    # And back: this backend loads what the other two saved.
    for other in others:
        loaded = keras.saving.load_model(tmp_path / f"{other}.keras", safe_mode=True)
        np.testing.assert_allclose(to_numpy(loaded(x)), expected, rtol=2e-5, atol=2e-6, err_msg=other)
