"""TabulatedInner: a frozen g from a table, within 1e-3 of the MLP on [-5, 5]^2, exact outside."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_bioact import nin
from keras_bioact.layers import InnerNonlinearity, TabulatedInner, TwoArgDense


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


@pytest.fixture
def g():
    keras.utils.set_random_seed(3)
    g = InnerNonlinearity(hidden_units=(64, 64))
    g.build((None, 2))
    return g


def test_table_is_within_1e3_of_the_mlp_inside_and_exact_outside(g):
    fast = TabulatedInner.from_inner(g, grid=1025, bound=5.0)
    assert fast.max_error is not None and fast.max_error <= 1e-3
    x = np.random.default_rng(0).uniform(-5, 5, size=(4000, 2)).astype("float32")
    err = np.abs(_np(fast(x)) - _np(g(x)))
    assert err.max() <= fast.max_error + 1e-6
    nodes = np.linspace(-5, 5, 1025)[::37].astype("float32")
    on_grid = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), -1).reshape(-1, 2)
    np.testing.assert_allclose(_np(fast(on_grid)), _np(g(on_grid)), atol=2e-6)  # exact at the nodes
    mixed = np.concatenate([x[:10], [[7.0, 0.0], [-3.0, -12.0], [0.0, 5.5]]]).astype("float32")
    out, ref = _np(fast(mixed)), _np(g(mixed))
    np.testing.assert_allclose(out[-3:], ref[-3:], rtol=1e-6, atol=1e-6)  # outside: the exact g
    assert np.abs(out[:10] - ref[:10]).max() <= fast.max_error + 1e-6
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
