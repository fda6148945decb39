"""TabulatedInner: a frozen g from a table, within 1e-3 of the MLP on [-5, 5]^2, exact outside."""

import keras
import numpy as np
import pytest
from helpers.testing import grad
from keras import ops

from keras_bioact import nin
from keras_bioact.layers import InnerNonlinearity, TabulatedInner, TwoArgDense


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


@pytest.fixture
def g():
    keras.utils.set_random_seed(3)
    g = InnerNonlinearity(hidden_units=(16, 16))
    g.build((None, 2))
    return g


def test_table_is_within_1e3_of_the_mlp_inside_and_exact_outside(g):
    fast = TabulatedInner.from_inner(g, grid=1025, bound=5.0)
    assert fast.max_error is not None and fast.max_error <= 1e-3
    x = np.random.default_rng(0).uniform(-5, 5, size=(4000, 2)).astype("float32")
    nodes = np.linspace(-5, 5, 1025)[::37].astype("float32")
    on_grid = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), -1).reshape(-1, 2)
    outside = np.array([[7.0, 0.0], [-3.0, -12.0], [0.0, 5.5]], "float32")
    # one call for all three sets of points (under JAX every new shape compiles every op again)
    points = np.concatenate([x, on_grid, outside])
    out, ref = _np(fast(points)), _np(g(points))
    inside, grid, beyond = np.split(np.arange(len(points)), [len(x), len(x) + len(on_grid)])
    assert np.abs(out[inside] - ref[inside]).max() <= fast.max_error + 1e-6
    np.testing.assert_allclose(out[grid], ref[grid], atol=2e-6)  # exact at the nodes
    np.testing.assert_allclose(out[beyond], ref[beyond], rtol=1e-6, atol=1e-6)  # outside: the exact g
    coarse = TabulatedInner.from_inner(g, grid=65)
    assert coarse.max_error > fast.max_error  # the error falls with the grid spacing


def test_one_argument_table(rng):
    keras.utils.set_random_seed(4)
    g1 = InnerNonlinearity(arity=1)
    g1.build((None, 1))
    fast = TabulatedInner.from_inner(g1, grid=1025)
    x = rng.uniform(-6, 6, size=(500, 1)).astype("float32")
    np.testing.assert_allclose(_np(fast(x)), _np(g1(x)), atol=max(fast.max_error, 1e-6) + 1e-6)


def test_outer_weights_train_through_the_table_and_the_model_saves(g, tmp_path, rng):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((6,)), TwoArgDense(8, inner=g), TwoArgDense(4, inner=g)])
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.normal(size=(32, 4)).astype("float32")
    before = _np(model(x))
    with pytest.raises(ValueError, match="freeze_inner"):
        nin.tabulate_inner(model)
    nin.freeze_inner(model)
    model, tables = nin.tabulate_inner(model)
    (fast,) = tables.values()
    assert all(layer.inner is fast for layer in model.layers)  # still one shared g
    np.testing.assert_allclose(_np(model(x)), before, atol=5 * fast.max_error + 1e-5)
    kernel = _np(model.layers[0].kernel)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert not np.allclose(_np(model.layers[0].kernel), kernel)  # gradients flowed through the table
    table = _np(fast.table)
    path = tmp_path / "tab.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(_np(loaded.layers[0].inner.table), table)


def test_bad_arguments(g):
    with pytest.raises(ValueError, match="grid"):
        TabulatedInner(g, grid=1)
    with pytest.raises(ValueError, match="bound"):
        TabulatedInner(g, bound=0)
    with pytest.raises(ValueError, match="inner"):
        TabulatedInner(keras.layers.Dense(1))


def _reference_interpolation(fast, x):
    """The bilinear (linear) table formula written out on its own: four separate gathers and
    nested lerps. Any faster rewrite of `TabulatedInner._interpolate` must equal it to float32
    round-off, values and gradients."""
    table, grid, bound = fast.table, fast.grid, fast.bound
    step = 2.0 * bound / (grid - 1)
    u = (ops.clip(x, -bound, bound) + bound) / step
    i = ops.clip(ops.floor(u), 0, grid - 2)
    f = u - i
    i = ops.cast(i, "int32")
    if fast.arity == 1:
        i0, f0 = i[..., 0], f[..., 0]
        return ops.take(table, i0) * (1 - f0) + ops.take(table, i0 + 1) * f0
    ia, ib, fa, fb = i[..., 0], i[..., 1], f[..., 0], f[..., 1]
    base = ia * grid + ib
    v00, v01 = ops.take(table, base), ops.take(table, base + 1)
    v10, v11 = ops.take(table, base + grid), ops.take(table, base + grid + 1)
    return (v00 * (1 - fb) + v01 * fb) * (1 - fa) + (v10 * (1 - fb) + v11 * fb) * fa


@pytest.mark.parametrize("arity", [2, 1])
def test_interpolation_equals_the_reference_values_and_gradients(arity):
    keras.utils.set_random_seed(6)
    g = InnerNonlinearity(arity=arity)
    g.build((None, arity))
    fast = TabulatedInner.from_inner(g, grid=257)
    rng = np.random.default_rng(7)
    x = rng.uniform(-4.9, 4.9, size=(3, 500, arity)).astype("float32")  # inside: the table only
    nodes = np.linspace(-5, 5, 257)[::16].astype("float32")  # grid nodes and the box's edges
    edge = np.stack(np.meshgrid(*[nodes] * arity, indexing="ij"), -1).reshape(1, -1, arity)
    for points in (x, edge):
        np.testing.assert_allclose(
            _np(fast(points))[..., 0], _np(_reference_interpolation(fast, points)), rtol=0, atol=2e-6
        )
    ct = ops.convert_to_tensor(rng.normal(size=x.shape[:-1]).astype("float32"))
    (d_new,) = grad(lambda t: fast(t)[..., 0] * ct, x)
    (d_ref,) = grad(lambda t: _reference_interpolation(fast, t) * ct, x)
    assert np.abs(d_ref).max() > 0
    np.testing.assert_allclose(d_new, d_ref, rtol=1e-4, atol=1e-4 * np.abs(d_ref).max())


def test_outside_the_box_falls_back_to_the_mlp_eager_and_compiled(g):
    fast = TabulatedInner.from_inner(g, grid=129)  # coarse: the table visibly differs from g
    rng = np.random.default_rng(8)
    inside = rng.uniform(-4, 4, size=(64, 2)).astype("float32")
    outside = np.concatenate([inside[:32], rng.uniform(5.5, 9, size=(32, 2)) * [[1, -1]]]).astype("float32")
    outside[::2, 1] = 0.3  # one argument inside, the other outside: still the exact g
    ref_in, ref_out = _np(g(inside)), _np(g(outside))
    assert np.abs(_np(fast(inside)) - ref_in).max() > 1e-5  # inside really is the table
    model = keras.Sequential([keras.Input((2,)), fast])
    for run in (fast, lambda t: model.predict(t, batch_size=64, verbose=0)):  # eager, then compiled
        np.testing.assert_allclose(_np(run(outside))[32:], ref_out[32:], rtol=1e-6, atol=1e-6)
        assert np.abs(_np(run(outside))[:32] - ref_out[:32]).max() <= fast.max_error + 1e-6
        assert np.abs(_np(run(inside)) - ref_in).max() <= fast.max_error + 1e-6
    (d_out,) = grad(lambda t: fast(t)[..., 0], outside[32:])
    (d_mlp,) = grad(lambda t: g(t)[..., 0], outside[32:])
    np.testing.assert_allclose(d_out, d_mlp, rtol=1e-5, atol=1e-6)  # gradients of the exact g too
