"""`TwoArgFeedForward` (two-argument transformer feed-forward block, grouped g), the grouped
`InnerNonlinearity`, and the `FeedForward` baselines (plain and GLU): NumPy references,
variance-preserving initialisation, grouping, errors, `.keras` round trips, mixed precision,
jit-compiled training, finite gradients."""

import keras
import numpy as np
import pytest
from helpers.two_arg import gradients, layer_norm_np, pair_np, to_np
from keras import ops

from keras_bioact.layers import (
    FeedForward,
    InnerNonlinearity,
    TabulatedInner,
    TwoArgConv2D,
    TwoArgDense,
    TwoArgFeedForward,
)

# XLA on jax / tensorflow; torch stays eager (torch.compile on CPU is minutes here).
JIT = keras.backend.backend() != "torch"


def _randomize_biases(layer, rng):
    for w in layer.weights:
        if "bias" in w.name:
            w.assign(rng.normal(size=w.shape).astype("float32") * 0.3)


def grouped_inner_np(inner, pairs):
    """NumPy g on `(..., groups, arity)` (or `(..., arity)` for one group), net k on index k."""
    if inner.groups == 1:
        pairs = pairs[..., None, :]
    lead = pairs.shape[:-2]
    h = pairs.reshape(-1, inner.groups, inner.arity)
    for i in range(inner.depth):
        k, b = to_np(getattr(inner, f"kernel_{i}")), to_np(getattr(inner, f"bias_{i}"))
        if inner.groups == 1:
            k, b = k[None], b[None]
        h = np.stack([h[:, g] @ k[g] + b[g] for g in range(inner.groups)], axis=1)  # loop: reference
        if i < inner.depth - 1:
            h = np.maximum(h, 0.0)
    out = h.reshape(*lead, inner.groups, 1)
    return out[..., 0, :] if inner.groups == 1 else out


def two_arg_ffn_np(layer, x):
    z = x @ to_np(layer.kernel)
    if layer.use_bias:
        z = z + to_np(layer.bias)
    if layer.normalize:
        z = layer_norm_np(z, -1, layer.epsilon)
    pairs = pair_np(z, layer.arity, layer.pairing)  # (..., H, arity)
    units = np.empty(pairs.shape[:-1])
    for j in range(layer.hidden):  # unit j uses net j mod G
        g = j % layer.groups
        p = pairs[..., j, :]
        if layer.groups > 1:
            p = np.broadcast_to(p[..., None, :], (*p.shape[:-1], layer.groups, layer.arity))
            units[..., j] = grouped_inner_np(layer.inner, p)[..., g, 0]
        else:
            units[..., j] = grouped_inner_np(layer.inner, p)[..., 0]
    y = units @ to_np(layer.output_kernel)
    return y + to_np(layer.output_bias) if layer.use_bias else y


def feed_forward_np(layer, x, act):
    z = x @ to_np(layer.kernel) + to_np(layer.bias)
    h = act(z[..., : layer.hidden]) * z[..., layer.hidden :] if layer.gated else act(z)
    return h @ to_np(layer.output_kernel) + to_np(layer.output_bias)


# ------------------------------------------------------------------ forward vs NumPy


@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((3, 4, 6), {}),
        ((5, 6), {"groups": 3, "pairing": "split", "output_dim": 4}),
        ((2, 3, 6), {"groups": 2, "normalize": False, "use_bias": False}),
        ((4, 6), {"arity": 1, "groups": 2}),
    ],
)
def test_two_arg_feed_forward_matches_numpy(rng, shape, kwargs):
    inner = InnerNonlinearity(
        arity=kwargs.pop("arity", 2), hidden_units=(8, 4), groups=kwargs.get("groups", 1)
    )
    layer = TwoArgFeedForward(6, inner=inner, **kwargs)
    x = rng.normal(size=shape).astype("float32")
    layer(x)
    _randomize_biases(layer, rng)
    _randomize_biases(layer.inner, rng)
    y = to_np(layer(x))
    assert y.shape == (*shape[:-1], kwargs.get("output_dim", shape[-1])) == layer.compute_output_shape(shape)
    np.testing.assert_allclose(y, two_arg_ffn_np(layer, x.astype("float64")), rtol=1e-4, atol=1e-5)


def test_grouped_inner_is_independent_nets(rng):
    """Net k of a grouped g is the ungrouped g with the k-th slice of every weight."""
    grouped = InnerNonlinearity(hidden_units=(5,), groups=3)
    pairs = rng.normal(size=(4, 7, 3, 2)).astype("float32")
    out = to_np(grouped(pairs))
    assert out.shape == (4, 7, 3, 1)
    assert grouped.count_params() == grouped.count_params_formula() == 3 * (2 * 5 + 5 + 5 + 1)
    for k in range(3):
        single = InnerNonlinearity(hidden_units=(5,))
        single.build((None, 2))
        for w_single, w_grouped in zip(single.weights, grouped.weights, strict=True):
            w_single.assign(to_np(w_grouped)[k].astype("float32"))
        np.testing.assert_allclose(out[:, :, k], to_np(single(pairs[:, :, k])), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation,gated", [("relu", False), ("gelu", True), ("silu", True)])
def test_feed_forward_matches_numpy(rng, activation, gated):
    layer = FeedForward(5, activation=activation, gated=gated)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    layer(x)
    _randomize_biases(layer, rng)
    from scipy.special import erf

    act = {
        "relu": lambda z: np.maximum(z, 0.0),
        "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2.0))),
        "silu": lambda z: z / (1 + np.exp(-z)),
    }[activation]
    y = to_np(layer(x))
    assert y.shape == (2, 3, 4)
    assert layer.count_params() == (5 * (4 + 1) * (2 if gated else 1) + 5 * 4 + 4)
    # keras' gelu defaults to the tanh approximation: compare loosely there.
    tol = 5e-3 if activation == "gelu" else 1e-5
    np.testing.assert_allclose(y, feed_forward_np(layer, x.astype("float64"), act), rtol=tol, atol=tol)


# ------------------------------------------------------------------ initialisation


@pytest.mark.parametrize("groups", [1, 4])
def test_variance_preserving_initialisation(groups):
    """Unit-variance Gaussian tokens in, output variance within 15 % of 1, for 3 seeds (the
    block's shape is the transformer recipe's: width 64, ratio-4 budget)."""
    x = np.random.default_rng(7).standard_normal((16, 16, 64)).astype("float32")
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        layer = TwoArgFeedForward(148 if groups == 1 else 80, groups=groups)
        var = float(np.var(to_np(layer(x))))
        assert abs(var - 1.0) < 0.15, (seed, var)


def test_glorot_output_initialisation_is_not_variance_preserving():
    """The test above can fail: Keras' default Glorot output kernel scales the output by
    `2 H m / (H + d)`, not 1."""
    x = np.random.default_rng(7).standard_normal((16, 16, 64)).astype("float32")
    keras.utils.set_random_seed(0)
    layer = TwoArgFeedForward(148, output_kernel_initializer="glorot_uniform")
    assert abs(float(np.var(to_np(layer(x)))) - 1.0) > 0.15


# ------------------------------------------------------------------ training, precision, io


def _ffn_model(g=None, dropout=0.0, groups=1):
    g = g or InnerNonlinearity(hidden_units=(8,), groups=groups, name="g")
    inputs = keras.Input((5, 6))
    x = TwoArgFeedForward(4, inner=g, groups=groups, dropout=dropout, seed=3, name="ffn_a")(inputs)
    x = TwoArgFeedForward(4, inner=g, groups=groups, name="ffn_b")(x)
    x = FeedForward(6, activation="silu", gated=True, name="swiglu")(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, outputs), g


def test_jit_compiled_fit_trains_the_grouped_g(rng):
    model, g = _ffn_model(dropout=0.5, groups=2)
    ids = [id(w) for w in model.weights]
    assert len(ids) == len(set(ids)) and sum(id(w) in ids for w in g.weights) == 4  # shared once
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=JIT,
    )
    before = to_np(g.kernel_0).copy()
    x = rng.normal(size=(8, 5, 6)).astype("float32")
    history = model.fit(x, rng.integers(0, 3, size=8), epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    changed = np.abs(to_np(g.kernel_0) - before).reshape(2, -1).max(axis=1)
    assert np.all(changed > 0), changed  # both groups receive gradients


def test_gradients_are_finite_for_large_inputs(rng):
    layer = TwoArgFeedForward(6, groups=3, inner=InnerNonlinearity(hidden_units=(4,), groups=3))
    x = ops.convert_to_tensor((1e4 * rng.normal(size=(3, 2, 5))).astype("float32"))
    layer(x)
    grads = gradients(lambda: ops.sum(ops.square(layer(x))), layer.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(rng, policy):
    keras.config.set_dtype_policy(policy)
    try:
        model, _ = _ffn_model(groups=2)
        x = (30 * rng.normal(size=(4, 5, 6))).astype("float32")
        out = model(x)
        assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
        assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in model.weights)
        assert np.all(np.isfinite(to_np(ops.cast(out, "float32"))))
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=JIT,
        )
        history = model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
    finally:
        keras.config.set_dtype_policy("float32")


def test_keras_round_trip_safe_mode_keeps_one_shared_grouped_g(rng, tmp_path):
    model, g = _ffn_model(groups=2)
    x = rng.normal(size=(2, 5, 6)).astype("float32")
    y = to_np(model(x))
    path = tmp_path / "ffn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    a, b = loaded.get_layer("ffn_a"), loaded.get_layer("ffn_b")
    assert a.inner is b.inner and a.inner.groups == 2
    assert loaded.count_params() == model.count_params()
    np.testing.assert_allclose(to_np(loaded(x)), y, rtol=1e-5, atol=1e-6)
    # The loaded block keeps its weights: the variance-preserving draw is only an initialiser.
    assert a.get_config()["output_kernel_initializer"] == "variance_preserving"


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "factory,words",
    [
        (lambda: TwoArgFeedForward(0), ["hidden"]),
        (lambda: TwoArgFeedForward(6, groups=4), ["hidden", "groups"]),
        (lambda: TwoArgFeedForward(6, groups=0), ["groups"]),
        (lambda: TwoArgFeedForward(6, output_dim=-1), ["output_dim"]),
        (lambda: TwoArgFeedForward(6, groups=2, inner=InnerNonlinearity(groups=3)), ["groups", "inner"]),
        (lambda: TwoArgFeedForward(6, inner=InnerNonlinearity(arity=1), arity=2), ["arity", "inner"]),
        (lambda: TwoArgFeedForward(6, pairing="random"), ["pairing"]),
        (lambda: TwoArgFeedForward(6, epsilon=0.0), ["epsilon"]),
        (lambda: TwoArgFeedForward(6, dropout=1.0), ["dropout"]),
        (lambda: TwoArgFeedForward(6, output_kernel_initializer="variance"), ["output_kernel_initializer"]),
        (lambda: TwoArgDense(4, inner=InnerNonlinearity(groups=2)), ["inner"]),
        (lambda: TwoArgConv2D(4, 3, inner=InnerNonlinearity(groups=2)), ["inner"]),
        (lambda: TabulatedInner(InnerNonlinearity(groups=2)), ["inner"]),
        (lambda: InnerNonlinearity(groups=1.5), ["groups"]),
        (lambda: FeedForward(0), ["hidden"]),
        (lambda: FeedForward(4, activation="nope"), ["activation"]),
        (lambda: FeedForward(4, gated="yes"), ["gated"]),
        (lambda: FeedForward(4, dropout=-0.1), ["dropout"]),
    ],
)
def test_bad_arguments_raise(factory, words):
    with pytest.raises(ValueError) as info:
        factory()
    for word in words:
        assert f"`{word}`" in str(info.value), info.value


def test_grouped_inner_refuses_a_wrong_group_axis():
    with pytest.raises(ValueError, match="groups"):
        InnerNonlinearity(groups=3).build((None, 4, 2))
