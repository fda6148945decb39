import keras
import numpy as np
import pytest
from helpers.two_arg import to_np

from keras_bioact import nin
from keras_bioact.layers import InnerNonlinearity, TwoArgDense


def test_spec_mnist_mlp_parameter_pair():
    assert nin.inner_param_count(2, (64, 64)) == 4417
    assert nin.two_arg_mlp_param_count(784, [120, 120, 120], 10) == 113867
    widths = nin.param_matched_relu_widths(784, [120, 120, 120], 10)
    assert widths == [112, 112, 112]
    assert nin.relu_mlp_param_count(784, widths, 10) == 114362
    # the built Keras models have exactly these counts
    assert nin.two_arg_mlp((28, 28), [120, 120, 120], 10).count_params() == 113867
    assert nin.relu_mlp((28, 28), widths, 10).count_params() == 114362


@pytest.mark.parametrize(
    "input_dim,widths,arity", [(64, [120, 120, 120], 2), (784, [240, 120, 60], 2), (64, [50, 30], 1)]
)
def test_param_matched_widths_within_one_percent(input_dim, widths, arity):
    target = nin.two_arg_mlp_param_count(input_dim, widths, 10, arity=arity)
    relu = nin.param_matched_relu_widths(input_dim, widths, 10, arity=arity)
    assert len(relu) == len(widths)
    assert abs(nin.relu_mlp_param_count(input_dim, relu, 10) - target) / target <= 0.01
    model = nin.two_arg_mlp((input_dim,), widths, 10, arity=arity)
    assert model.count_params() == target


def test_unpairable_widths_raise():
    for fn in (
        lambda: nin.two_arg_mlp_param_count(784, [120, 121], 10),
        lambda: nin.param_matched_relu_widths(784, [121], 10),
        lambda: nin.two_arg_mlp((8,), [7], 3),
    ):
        with pytest.raises(ValueError, match="`widths`.*`arity`=2"):
            fn()
    with pytest.raises(ValueError, match="`arity`"):
        nin.two_arg_mlp_param_count(784, [120], 10, arity=3)
    with pytest.raises(ValueError, match="tolerance"):
        nin.param_matched_relu_widths(4, [2], 2, tolerance=1e-6)


def test_random_smooth_surface_matches_reference_convolution():
    from scipy.signal import convolve2d

    points, targets = nin.random_smooth_surface(seed=3)
    assert points.shape == (101 * 101, 2) and targets.shape == (101 * 101, 1)
    assert points.min() == -5 and points.max() == 5
    # reference: 2-D Gaussian of covariance I/9 on the grid, normalised, 'same' convolution
    axis = np.linspace(-5, 5, 101)
    xv, yv = np.meshgrid(axis, axis)
    kernel = np.exp(-0.5 * (xv**2 + yv**2) * 9)
    kernel /= kernel.sum()
    noise = np.random.default_rng(3).uniform(-1, 1, size=(101, 101))
    expected = convolve2d(noise, kernel, mode="same").reshape(-1, 1)
    np.testing.assert_allclose(targets, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(points[:2], [[-5, -5], [-4.9, -5]], rtol=1e-6)
    assert not np.allclose(targets, nin.random_smooth_surface(seed=4)[1])
    p1, t1 = nin.random_smooth_surface(arity=1, seed=0)
    assert p1.shape == (101, 1) and t1.shape == (101, 1)


def test_pretrain_freeze_and_reinitialize_outer(rng):
    g = InnerNonlinearity(hidden_units=(16, 16), name="g")
    model = nin.two_arg_mlp((6,), [8, 8], 3, inner=g, dropout=0.0)
    surface = nin.random_smooth_surface(grid_size=21, seed=0)
    before = float(np.mean((to_np(g(surface[0]))[:, 0:1] - surface[1]) ** 2))
    loss = nin.pretrain_inner(model, epochs=15, batch_size=50, learning_rate=1e-2, seed=0, surface=surface)
    assert len(loss) == 1 and loss[0] < before
    inner_before = [to_np(w).copy() for w in g.weights]
    outer = model.get_layer("two_arg_dense_0")
    kernel_before = to_np(outer.kernel).copy()
    outer.bias.assign(np.ones(outer.bias.shape, "float32"))
    nin.reinitialize_outer(model, seed=1)
    for a, w in zip(inner_before, g.weights, strict=True):
        np.testing.assert_array_equal(a, to_np(w))
    assert not np.allclose(kernel_before, to_np(outer.kernel))
    np.testing.assert_array_equal(to_np(outer.bias), 0.0)
    assert nin.freeze_inner(model) == [g]
    assert not any(id(v) in {id(w) for w in g.weights} for v in model.trainable_weights)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = rng.normal(size=(16, 6)).astype("float32"), rng.integers(0, 3, 16)
    model.fit(x, y, epochs=2, verbose=0)
    for a, w in zip(inner_before, g.weights, strict=True):
        np.testing.assert_array_equal(a, to_np(w))
    assert not np.allclose(to_np(outer.bias), 0.0)


def test_inner_nets_and_errors():
    g1, g2 = InnerNonlinearity(), InnerNonlinearity(arity=1)
    inputs = keras.Input((4,))
    x = TwoArgDense(3, inner=g1)(inputs)
    x = TwoArgDense(3, inner=g2)(x)
    x = TwoArgDense(2, inner=g1)(x)
    model = keras.Model(inputs, x)
    assert nin.inner_nets(model) == [g1, g2]
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no InnerNonlinearity"):
        nin.freeze_inner(plain)
    with pytest.raises(ValueError, match="no InnerNonlinearity"):
        nin.pretrain_inner(plain)
