"""Both layers inside models: masking, TimeDistributed, conv maps, sequences, mixed precision, jit."""

import keras
import numpy as np
import pytest
from helpers.testing import BACKEND, eru_ref, gamma_ref, oru_ref, to_numpy

from keras_bioact import activations
from keras_bioact.initializers import BRUInitializer
from keras_bioact.layers import BRU, GammaActivation

LAYERS = {
    "gamma": lambda **kw: GammaActivation(n_initializer=1.5, s_initializer=0.25, **kw),
    "eru": lambda **kw: BRU("eru", r=2.0, **kw),
    "oru": lambda **kw: BRU("oru", r=3.0, **kw),
}
REFS = {
    "gamma": lambda x: gamma_ref(x, 1.5, 0.25),
    "eru": lambda x: eru_ref(x, 2.0),
    "oru": lambda x: oru_ref(x, 3.0),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_masking_passes_through(kind):
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    x[0, 3:] = 0.0  # padded steps of the first sequence
    inputs = keras.Input((5, 3))
    masked = keras.layers.Masking(0.0)(inputs)
    act = LAYERS[kind](shared_axes=1) if kind == "gamma" else LAYERS[kind]()
    y = act(masked)
    # GlobalAveragePooling1D averages only unmasked steps, so it sees the mask only if the
    # activation passes it on.
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(y))
    got = model.predict(x, verbose=0)
    ref = REFS[kind](x)
    np.testing.assert_allclose(got[0], ref[0, :3].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], ref[1].mean(0), rtol=1e-5, atol=1e-6)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    np.testing.assert_array_equal(to_numpy(act.compute_mask(x, keras.ops.convert_to_tensor(mask))), mask)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_time_distributed(kind):
    x = np.random.default_rng(1).normal(size=(2, 4, 6)).astype("float32") * 2
    act = LAYERS[kind]() if kind == "gamma" else LAYERS[kind](shared_axes=None)
    td = keras.layers.TimeDistributed(act)
    y = td(x)
    assert tuple(y.shape) == (2, 4, 6)
    # Parameters live per feature of one time step.
    var = act.n if kind == "gamma" else act.r
    assert tuple(var.shape) == (6,)
    np.testing.assert_allclose(to_numpy(y), REFS[kind](x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_conv_feature_maps(kind, rng):
    x = rng.normal(size=(2, 6, 6, 1)).astype("float32")
    inputs = keras.Input((6, 6, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same")
    act = LAYERS[kind](shared_axes=[1, 2])
    model = keras.Model(inputs, act(conv(inputs)))
    var = act.n if kind == "gamma" else act.r
    assert tuple(var.shape) == (1, 1, 4)
    if kind == "gamma":
        act.n.assign(np.array([[[0.5, 1.0, 4.0, 9.0]]], "float32"))
    else:
        act.r.assign(np.array([[[1.0, 1.5, 2.0, 6.0]]], "float32"))
    pre = to_numpy(conv(x))
    got = model.predict(x, verbose=0)
    expected = {
        "gamma": lambda p: gamma_ref(p, to_numpy(act.n), 0.25),
        "eru": lambda p: eru_ref(p, to_numpy(act.r)),
        "oru": lambda p: oru_ref(p, to_numpy(act.r)),
    }[kind](pre)
    assert got.shape == (2, 6, 6, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_sequences_in_recurrent_models():
    x = np.random.default_rng(2).normal(size=(3, 7, 2)).astype("float32")
    inputs = keras.Input((None, 2))
    h = keras.layers.SimpleRNN(5, activation=activations.oru, return_sequences=True)(inputs)
    h = GammaActivation(shared_axes=1)(h)
    h = keras.layers.SimpleRNN(4, activation=activations.gamma)(h)
    out = BRU("eru", r=1.5)(h)
    model = keras.Model(inputs, out)
    y = model.predict(x, verbose=0)
    assert y.shape == (3, 4) and np.isfinite(y).all()
    assert y.min() >= -1 / 1.5 - 1e-6  # ERU's lower bound
    assert model.predict(x[:, :3], verbose=0).shape == (3, 4)  # any length


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_mixed_precision(kind, policy):
    compute = policy.split("_")[1]
    act = LAYERS[kind](dtype=policy)
    x = np.array([[-1e4, -30.0, -1.0, 0.0, 0.5, 3.0, 1e3, 1e4]], "float32")
    y = act(x)
    assert keras.backend.standardize_dtype(y.dtype) == compute
    for weight in act.weights:
        assert keras.backend.standardize_dtype(weight.dtype) == "float32"
    y = to_numpy(keras.ops.cast(y, "float32"))
    assert np.isfinite(y).all()
    x_rounded = to_numpy(keras.ops.cast(keras.ops.cast(x, compute), "float32"))
    rtol = 1e-2 if compute == "bfloat16" else 2e-3
    np.testing.assert_allclose(y, REFS[kind](x_rounded), rtol=rtol, atol=1e-3)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_training_step(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = _model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        x, y = _data()
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
        compute = policy.split("_")[1]
        for name in ("gamma", "eru", "oru"):
            out = keras.Model(model.inputs, model.get_layer(name).output)(x[:4])
            assert keras.backend.standardize_dtype(out.dtype) == compute, name
            assert np.isfinite(to_numpy(keras.ops.cast(out, "float32"))).all()
        for layer in model.layers:
            if isinstance(layer, (GammaActivation, BRU)):
                assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    finally:
        keras.config.set_dtype_policy(previous)


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (np.sin(x[:, :1] * 2) + x[:, 1:2] ** 2).astype("float32")
    return x, y


def _model():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(16)(inputs)
    h = GammaActivation(name="gamma")(h)
    h = keras.layers.Dense(16, kernel_initializer=BRUInitializer(2.0, "eru"))(h)
    h = BRU("eru", r=2.0, trainable_r=True, name="eru")(h)
    h = keras.layers.Dense(16, kernel_initializer=BRUInitializer(2.0, "oru"))(h)
    h = BRU("oru", r=2.0, shared_axes=None, trainable_r=True, name="oru")(h)
    outputs = keras.layers.Dense(1, dtype="float32")(h)
    return keras.Model(inputs, outputs)


def test_training_compiled():
    jit = BACKEND in ("jax", "tensorflow")  # jit_compile=True under torch is torch.compile
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=jit)
    x, y = _data()
    before = {name: to_numpy(model.get_layer(name).weights[0]).copy() for name in ("gamma", "eru", "oru")}
    history = model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], losses
    for name, value in before.items():  # every activation parameter was learned
        assert not np.allclose(to_numpy(model.get_layer(name).weights[0]), value), name
    assert to_numpy(model.get_layer("eru").r).min() >= 1.0
    if jit and BACKEND == "tensorflow":
        assert model.jit_compile is True
