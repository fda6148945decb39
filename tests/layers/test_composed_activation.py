"""`ComposedActivation` on every backend: every primitive against its float64 NumPy reference,
finite values and gradients on a grid up to the float32 maximum at the ends of every
learnable scalar's range, `.keras` save/load under `safe_mode=True`, mixed precision,
`jit_compile=True` training and parameter sharing."""

import keras
import numpy as np
import pytest
from helpers.testing import BACKEND, to_numpy

from keras_bioact import expressions
from keras_bioact.layers import ComposedActivation

GRID = np.concatenate(
    [np.linspace(-6.0, 6.0, 25), [-3e38, -1e30, -1e6, -1e4, -50.0, 0.0, 50.0, 1e4, 1e6, 1e30, 3e38]]
).astype("float32")[None]


def _expression(name):
    """The primitive applied to x (binary: to x and sin(x), so the two operands differ)."""
    return f"{name}(x)" if expressions.PRIMITIVES[name].arity == 1 else f"{name}(x, sin(x))"


def _set_scalars(layer, where):
    """Every learnable scalar at its `low`, `high` or `init` value; returns `{name: value}`."""
    values = {}
    for name, _, param in expressions.parameter_names(layer.tree):
        value = {"low": param.low, "high": param.high, "init": param.init}[where]
        getattr(layer, name).assign(np.full(getattr(layer, name).shape, value, "float32"))
        values[name] = value
    return values


def _run(layers, x):
    """`[(y, dy/dx, [d sum(y)/d w for w in weights])]` of every layer on `x` (one compiled
    call under JAX: compiling each expression apart is what would make this test slow)."""
    weights = [layer.trainable_variables for layer in layers]
    if BACKEND == "jax":
        import jax

        key = tuple(id(layer) for layer in layers)
        if key not in _JITTED:

            def total(xs, ws):
                ys = [layer.stateless_call(w, [], xi)[0] for layer, w, xi in zip(layers, ws, xs, strict=True)]
                return sum(y.astype("float32").sum() for y in ys), ys

            _JITTED[key] = jax.jit(jax.grad(total, argnums=(0, 1), has_aux=True))
        (gx, gw), ys = _JITTED[key]([x] * len(layers), [[w.value for w in ws] for ws in weights])
        return [
            (np.asarray(y), np.asarray(g), [np.asarray(v) for v in gws])
            for y, g, gws in zip(ys, gx, gw, strict=True)
        ]
    out = []
    for layer, ws in zip(layers, weights, strict=True):
        if BACKEND == "tensorflow":
            import tensorflow as tf

            xs = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xs)
                y = layer(xs)
                total = tf.reduce_sum(tf.cast(y, "float32"))
            gx, *gw = tape.gradient(total, [xs, *[w.value for w in ws]])
            gw = [np.zeros(w.shape) if g is None else g.numpy() for w, g in zip(ws, gw, strict=True)]
            out.append((y.numpy(), gx.numpy(), gw))
        else:
            import torch

            xs = torch.tensor(x, requires_grad=True)
            for w in ws:
                w.value.grad = None
            y = layer(xs)
            y.float().sum().backward()
            gw = [np.zeros(w.shape) if w.value.grad is None else w.value.grad.numpy() for w in ws]
            out.append((y.detach().numpy(), xs.grad.numpy(), gw))
    return out


_JITTED = {}
STRESS = [
    "mul(mul(exp(x), square(x)), mul(square(x), exp(x)))",
    "mul(mul(mul(square(x), square(x)), square(x)), gamma(x))",
    "wsum(mul(eru(x), oru(x)), sub(scale(x), swish(x)))",
    "mul(scale(scale(scale(x))), shift(leaky(x)))",
    "max(log1p_abs(mish(x)), min(selu(x), elu(gelu(x))))",
]
EXPRESSIONS = [_expression(name) for name in expressions.PRIMITIVES] + STRESS


@pytest.fixture(scope="module")
def layers():
    out = [ComposedActivation(e) for e in EXPRESSIONS]
    for layer in out:
        layer.build(GRID.shape)
    return out


@pytest.mark.parametrize("where", ["init", "low", "high"])
def test_every_primitive_matches_its_reference_and_is_finite_with_finite_gradients(layers, where):
    """Values against the float64 reference (relative on the moderate part of the grid), and
    finite values and gradients (input and every scalar) on the whole grid, up to +-3e38, with
    every learnable scalar at the low end, the high end and the initial value of its range."""
    values = [_set_scalars(layer, where) for layer in layers]
    for layer, scalars, (y, gx, gw) in zip(layers, values, _run(layers, GRID), strict=True):
        expression = layer.expression
        expected = expressions.reference(layer.tree, GRID.astype("float64"), scalars)
        moderate = slice(0, 25)
        np.testing.assert_allclose(
            y[:, moderate],
            expected[:, moderate],
            rtol=2e-6,
            atol=2e-6 * (1 + np.abs(expected[:, moderate]).max()),
            err_msg=expression,
        )
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5, err_msg=expression)
        assert np.isfinite(y).all(), (expression, where, y)
        assert np.isfinite(gx).all(), (expression, where, gx)
        assert all(np.isfinite(g).all() for g in gw), (expression, where, gw)


GRADIENT_EXPRESSIONS = ["gamma(x)", "erf(gamma(x))", "wsum(eru(x), gelu(x))", "mul(x, sigmoid(x))"]


def test_gradients_match_finite_differences_of_the_reference():
    """d sum(y) / dx and / d every scalar against central differences of the float64 reference,
    at scalars away from their initial values (gamma's and eru's hand-written backward passes
    included)."""
    x = np.linspace(-4.0, 4.0, 17).astype("float32")[None]
    layers = [ComposedActivation(e) for e in GRADIENT_EXPRESSIONS]
    inside = {"n": 2.5, "s": 0.3, "r": 1.7, "w": 0.35}
    scalars = []
    for layer in layers:
        layer.build(x.shape)
        values = {}
        for name, _, param in expressions.parameter_names(layer.tree):
            getattr(layer, name).assign(np.full(getattr(layer, name).shape, inside[param.name], "float32"))
            values[name] = inside[param.name]
        scalars.append(values)
    h, x64 = 1e-6, x.astype("float64")
    for layer, values, (_, gx, gw) in zip(layers, scalars, _run(layers, x), strict=True):

        def ref(at, tree=layer.tree, values=values, **changed):
            return expressions.reference(tree, at, {**values, **changed})

        dx = (ref(x64 + h) - ref(x64 - h)) / (2 * h)
        np.testing.assert_allclose(gx, dx, rtol=1e-4, atol=1e-5, err_msg=layer.expression)
        for (name, value), g in zip(values.items(), gw, strict=True):
            dw = (ref(x64, **{name: value + h}).sum() - ref(x64, **{name: value - h}).sum()) / (2 * h)
            np.testing.assert_allclose(np.sum(g), dw, rtol=1e-4, err_msg=f"{layer.expression} {name}")


def test_scalars_are_named_per_call_kept_in_range_and_shared_as_asked():
    layer = ComposedActivation("wsum(gamma(x), eru(x))")
    assert layer.bioact_parameters == ("wsum0_w", "gamma1_n", "gamma1_s", "eru2_r")
    layer.build((None, 3, 4, 2))
    assert all(getattr(layer, n).shape == () for n in layer.bioact_parameters)  # "all": per layer
    assert float(to_numpy(layer.eru2_r.constraint(keras.ops.convert_to_tensor(9.0)))) == 4.0
    per_channel = ComposedActivation("gamma(x)", shared_axes=[1, 2])
    per_channel.build((None, 3, 4, 2))
    assert per_channel.gamma0_n.shape == (1, 1, 2)
    per_neuron = ComposedActivation("gamma(x)", shared_axes=None)
    per_neuron.build((None, 5))
    assert per_neuron.gamma0_s.shape == (5,)


def test_a_bad_expression_is_refused_at_construction_naming_the_token():
    with pytest.raises(ValueError, match=r"unknown primitive 'sigmoidd' at column 8; did you mean 'sigmoid'"):
        ComposedActivation("mul(x, sigmoidd(x))")
    with pytest.raises(ValueError, match="shared_axes"):
        ComposedActivation("relu(x)", shared_axes=0)


def test_save_and_load_with_safe_mode(tmp_path):
    inputs = keras.Input((3,))
    outputs = ComposedActivation("wsum(gamma(x), sin(x))", name="act")(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, outputs)
    model.get_layer("act").wsum0_w.assign(0.25)
    model.get_layer("act").gamma1_n.assign(3.0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)
    assert loaded.get_layer("act").expression == "wsum(gamma(x), sin(x))"
    assert float(to_numpy(loaded.get_layer("act").gamma1_n)) == 3.0


def test_a_config_with_a_hostile_expression_is_refused_on_load():
    config = keras.saving.serialize_keras_object(ComposedActivation("relu(x)"))
    config["config"]["expression"] = "__import__('os').system('true')"
    # Keras wraps the layer's ValueError in a TypeError; the message names the token.
    with pytest.raises((ValueError, TypeError), match=r"unexpected character \"'\" at column 12"):
        keras.saving.deserialize_keras_object(config, safe_mode=True)


def test_mixed_precision_output_saturates_and_weights_stay_float32():
    layer = ComposedActivation("mul(exp(x), square(x))", dtype="mixed_float16")
    x = np.array([[-6e4, -100.0, 0.0, 1.5, 100.0, 6e4]], "float16")
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    y = to_numpy(keras.ops.cast(y, "float32"))
    assert np.isfinite(y).all() and y.max() == 65504.0
    np.testing.assert_allclose(y[0, 3], np.exp(1.5) * 2.25, rtol=1e-3)
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)


def test_trains_under_jit_compile():
    """XLA on jax and tensorflow; torch stays eager, as in the other layers' tests (there
    `jit_compile=True` is torch.compile, whose CPU compile of this model took 52 s of the suite)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8),
            ComposedActivation("wsum(gelu(x), swish(x))"),
            keras.layers.Dense(2),
        ]
    )
    jit = keras.backend.backend() != "torch"
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", jit_compile=jit)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    before = [to_numpy(w).copy() for w in model.layers[1].weights]
    history = model.fit(x, x[:, :2], epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = [to_numpy(w) for w in model.layers[1].weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
