import keras
import numpy as np
import pytest
from helpers.two_arg import gradients, inner_np, to_np, two_arg_conv_np, two_arg_dense_np
from keras import ops

from keras_bioact.layers import InnerNonlinearity, TwoArgConv2D, TwoArgDense
from keras_bioact.params import ParameterView, activation_parameters

# XLA on jax / tensorflow. Under torch, jit_compile=True means torch.compile (inductor), whose
# CPU compilation of these models takes many minutes here, so the torch run stays eager.
JIT = keras.backend.backend() != "torch"


def _randomize_biases(layer, rng):
    """Zero biases hide bugs: give every bias a random value."""
    for w in layer.weights:
        if "bias" in w.name:
            w.assign(rng.normal(size=w.shape).astype("float32") * 0.3)


# ------------------------------------------------------------------ forward vs NumPy


@pytest.mark.parametrize(
    "arity,pairing,normalize",
    [(2, "adjacent", True), (2, "split", True), (2, "adjacent", False), (1, "adjacent", True)],
)
def test_two_arg_dense_matches_numpy(rng, arity, pairing, normalize):
    layer = TwoArgDense(5, arity=arity, pairing=pairing, normalize=normalize)
    x = rng.normal(size=(4, 7)).astype("float32")
    layer(x)
    _randomize_biases(layer, rng)
    _randomize_biases(layer.inner, rng)
    y = to_np(layer(x))
    assert y.shape == (4, 5)
    np.testing.assert_allclose(y, two_arg_dense_np(layer, x.astype("float64")), rtol=1e-4, atol=1e-5)


def test_two_arg_dense_pairing_is_adjacent_or_halves(rng):
    # Permuting the kernel columns turns one pairing into the other.
    a = TwoArgDense(3, pairing="adjacent", normalize=False)
    b = TwoArgDense(3, pairing="split", normalize=False, inner=a.inner)
    x = rng.normal(size=(2, 4)).astype("float32")
    a(x), b(x)
    k, bias = to_np(a.kernel), rng.normal(size=6).astype("float32")
    a.bias.assign(bias)
    perm = np.r_[0:6:2, 1:6:2]  # split column j <- adjacent column perm[j]
    b.kernel.assign(k[:, perm].astype("float32"))
    b.bias.assign(bias[perm])
    np.testing.assert_allclose(to_np(a(x)), to_np(b(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arity,pairing", [(2, "adjacent"), (2, "split"), (1, "adjacent")])
def test_two_arg_conv2d_matches_numpy(rng, arity, pairing):
    layer = TwoArgConv2D(3, 3, arity=arity, pairing=pairing)
    x = rng.normal(size=(2, 6, 5, 2)).astype("float32")
    layer(x)
    _randomize_biases(layer, rng)
    _randomize_biases(layer.inner, rng)
    y = to_np(layer(x))
    assert y.shape == (2, 4, 3, 3) == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, two_arg_conv_np(layer, x.astype("float64")), rtol=1e-4, atol=1e-5)


def test_two_arg_conv2d_same_padding_strides_and_channels_first(rng):
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    last = TwoArgConv2D(4, (3, 2), strides=2, padding="same")
    y = last(x)
    assert tuple(y.shape) == last.compute_output_shape(x.shape) == (2, 4, 3, 4)
    first = TwoArgConv2D(4, (3, 2), strides=2, padding="same", data_format="channels_first", inner=last.inner)
    if keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow's CPU conv kernels do not support channels_first")
    xf = np.transpose(x, (0, 3, 1, 2))
    first(xf)
    first.kernel.assign(last.kernel)
    first.bias.assign(last.bias)
    np.testing.assert_allclose(
        np.transpose(to_np(first(xf)), (0, 2, 3, 1)), to_np(last(x)), rtol=1e-4, atol=1e-5
    )


def test_inner_nonlinearity_standalone(rng):
    g = InnerNonlinearity(hidden_units=(8, 5, 4))
    z = rng.normal(size=(3, 4, 2)).astype("float32")
    y = g(z)
    assert tuple(y.shape) == (3, 4, 1)
    assert g.bioact_parameters == tuple(f"{k}_{i}" for i in range(4) for k in ("kernel", "bias"))
    assert g.count_params() == g.count_params_formula() == 2 * 8 + 8 + 8 * 5 + 5 + 5 * 4 + 4 + 4 + 1
    np.testing.assert_allclose(to_np(y)[..., 0], inner_np(g, z.astype("float64")), rtol=1e-5, atol=1e-6)
    assert InnerNonlinearity().count_params_formula() == 4417


# ------------------------------------------------------------------ sharing, gradients, saving


def _shared_model(g, dropout=0.0):
    inputs = keras.Input((6, 6, 2))
    x = TwoArgConv2D(3, 3, inner=g, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    x = TwoArgDense(8, inner=g, dropout=dropout, name="dense_a")(x)
    x = TwoArgDense(4, inner=g, name="dense_b")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_one_set_of_inner_weights_and_parameter_view(rng):
    g = InnerNonlinearity(name="g")
    model = _shared_model(g)
    two_arg = [model.get_layer(n) for n in ("conv", "dense_a", "dense_b")]
    assert all(layer.inner is g for layer in two_arg)
    inner_ids = {id(v) for layer in two_arg for v in layer.inner.weights}
    assert len(inner_ids) == 6
    expected = 3 * 3 * 2 * 6 + 6 + 48 * 16 + 16 + 8 * 8 + 8 + 4 * 3 + 3 + 4417
    assert model.count_params() == expected
    params = activation_parameters(model)
    assert [p.name for p in params] == list(g.bioact_parameters)
    assert all(p.layer is g for p in params)
    view = ParameterView(model)
    assert view.size == 4417
    v = view.get_vector()
    view.set_vector(v * 0.5)
    np.testing.assert_allclose(to_np(g.kernel_1), 0.5 * v[192 : 192 + 64 * 64].reshape(64, 64), rtol=1e-6)


def test_gradient_reaches_g_from_every_layer(rng):
    g = InnerNonlinearity(name="g")
    model = _shared_model(g)
    x = rng.normal(size=(2, 6, 6, 2)).astype("float32")
    model(x)
    layers = [model.get_layer(n) for n in ("conv", "dense_a", "dense_b")]
    inputs = [x, rng.normal(size=(2, 48)).astype("float32"), rng.normal(size=(2, 8)).astype("float32")]
    for layer, inp in zip(layers, inputs, strict=True):
        tensor = ops.convert_to_tensor(inp)
        grads = gradients(lambda layer=layer, t=tensor: ops.sum(ops.square(layer(t))), g.weights)
        for grad, w in zip(grads, g.weights, strict=True):
            assert grad is not None and grad.shape == tuple(w.shape), (layer.name, w.name)
            assert np.all(np.isfinite(grad))
        assert np.abs(grads[0]).sum() > 0 and np.abs(grads[4]).sum() > 0, layer.name


def _set_constant(g, value):
    last = g.depth - 1
    getattr(g, f"kernel_{last}").assign(np.zeros(getattr(g, f"kernel_{last}").shape, "float32"))
    getattr(g, f"bias_{last}").assign(np.full((1,), value, "float32"))


def test_save_load_keeps_one_shared_inner(rng, tmp_path):
    g = InnerNonlinearity(name="g")
    model = _shared_model(g)
    x = rng.normal(size=(3, 6, 6, 2)).astype("float32")
    y = to_np(model(x))
    path = tmp_path / "shared.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_np(loaded(x)), y, rtol=1e-5, atol=1e-6)
    layers = [loaded.get_layer(n) for n in ("conv", "dense_a", "dense_b")]
    inner = layers[0].inner
    assert all(layer.inner is inner for layer in layers)
    inner_vars = {id(v) for v in loaded.weights if "/g/" in v.path or v.path.startswith("g/")}
    assert len(inner_vars) == 6 == len({id(v) for layer in layers for v in layer.inner.weights})
    assert loaded.count_params() == model.count_params()
    assert len(activation_parameters(loaded)) == 6
    # Changing the shared g changes every layer: a constant g makes every layer output it.
    _set_constant(inner, 0.75)
    probes = [x, rng.normal(size=(2, 48)).astype("float32"), rng.normal(size=(2, 8)).astype("float32")]
    for layer, probe in zip(layers, probes, strict=True):
        np.testing.assert_allclose(to_np(layer(probe)), 0.75, rtol=1e-6)
    # ... and the original model is untouched.
    np.testing.assert_allclose(to_np(model(x)), y, rtol=1e-6)


def test_sequential_sharing_and_config_roundtrip(rng, tmp_path):
    g = InnerNonlinearity(arity=1, hidden_units=(16,))
    model = keras.Sequential([keras.Input((5,)), TwoArgDense(4, inner=g), TwoArgDense(3, inner=g)])
    x = rng.normal(size=(2, 5)).astype("float32")
    y = to_np(model(x))
    model.save(tmp_path / "seq.keras")
    loaded = keras.saving.load_model(tmp_path / "seq.keras")
    assert loaded.layers[0].inner is loaded.layers[1].inner
    assert loaded.layers[0].arity == 1
    np.testing.assert_allclose(to_np(loaded(x)), y, rtol=1e-5, atol=1e-6)
    # get_config outside a save is plain data; from_config gives a working (unshared) copy.
    config = model.layers[0].get_config()
    assert isinstance(config["inner"], dict)
    clone = TwoArgDense.from_config(config)
    assert clone.inner is not g and clone.arity == 1


def test_jit_compiled_fit_and_dropout(rng):
    g = InnerNonlinearity(hidden_units=(16, 16))
    model = _shared_model(g, dropout=0.5)
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 3, size=8)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=JIT,
    )
    before = to_np(g.kernel_0).copy()
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(before, to_np(g.kernel_0))
    layer = model.get_layer("dense_a")
    h = rng.normal(size=(64, 48)).astype("float32")
    train, infer = to_np(layer(h, training=True)), to_np(layer(h, training=False))
    assert 0.3 < np.mean(train == 0) < 0.7
    kept = train != 0
    np.testing.assert_allclose(train[kept], 2 * infer[kept], rtol=1e-4, atol=1e-5)


def test_mixed_precision(rng):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        g = InnerNonlinearity(hidden_units=(8,))
        model = _shared_model(g)
        x = (50 * rng.normal(size=(4, 6, 6, 2))).astype("float32")
        out = model(x)
        assert keras.backend.standardize_dtype(out.dtype) == "float16"
        assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in model.weights)
        assert np.all(np.isfinite(to_np(out)))
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=JIT,
        )
        history = model.fit(x, np.array([0, 1, 2, 0]), epochs=2, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
    finally:
        keras.config.set_dtype_policy("float32")


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "factory,words",
    [
        (lambda: InnerNonlinearity(arity=3), ["arity"]),
        (lambda: InnerNonlinearity(hidden_units=(4, 0)), ["hidden_units"]),
        (lambda: TwoArgDense(4, arity=3), ["arity"]),
        (lambda: TwoArgDense(0), ["units"]),
        (lambda: TwoArgDense(4, pairing="random"), ["pairing"]),
        (lambda: TwoArgDense(4, dropout=1.0), ["dropout"]),
        (lambda: TwoArgDense(4, inner=InnerNonlinearity(arity=1), arity=2), ["arity", "inner"]),
        (lambda: TwoArgConv2D(4, 3, inner=InnerNonlinearity(arity=2), arity=1), ["arity", "inner"]),
        (lambda: TwoArgDense(4, inner=keras.layers.Dense(1)), ["inner"]),
        (lambda: TwoArgConv2D(4, 0), ["kernel_size"]),
        (lambda: TwoArgConv2D(4, 3, padding="full"), ["padding"]),
    ],
)
def test_bad_arguments_raise(factory, words):
    with pytest.raises(ValueError) as info:
        factory()
    for word in words:
        assert f"`{word}`" in str(info.value)


def test_inner_with_wrong_input_width_raises():
    with pytest.raises(ValueError, match="arity"):
        InnerNonlinearity(arity=2).build((None, 3))
