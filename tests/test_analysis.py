import numpy as np
import pytest
from helpers.two_arg import to_np

from keras_bioact import analysis
from keras_bioact.layers import InnerNonlinearity

relu = lambda x: np.maximum(x, 0.0)


def _product_net():
    """An InnerNonlinearity set by hand to g(a, b) ~ a*b = ((a+b)^2 - (a-b)^2) / 4.

    Layer 1: 64 ReLU units relu(+-u - t_k), u in {a+b, a-b}, knots t_k = 0.25 k (k < 16) give
    a piecewise-linear u^2; layer 2 is the identity on these non-negative values.
    """
    g = InnerNonlinearity(hidden_units=(64, 64))
    g.build((None, 2))
    h = 0.25
    knots = h * np.arange(16)
    steps = np.where(np.arange(16) == 0, h, 2 * h)  # slope increments of the u^2 interpolant
    k0, b0, out = np.zeros((2, 64)), np.zeros(64), np.zeros((64, 1))
    col = 0
    for direction, sign_out in (((1, 1), 0.25), ((1, -1), -0.25)):
        for s in (1, -1):
            for t, step in zip(knots, steps, strict=True):
                k0[:, col] = s * np.array(direction)
                b0[col] = -t
                out[col, 0] = sign_out * step
                col += 1
    g.kernel_0.assign(k0.astype("float32"))
    g.bias_0.assign(b0.astype("float32"))
    g.kernel_1.assign(np.eye(64, dtype="float32"))
    g.bias_1.assign(np.zeros(64, "float32"))
    g.kernel_2.assign(out.astype("float32"))
    g.bias_2.assign(np.zeros(1, "float32"))
    return g


def _relu_net():
    """An InnerNonlinearity set by hand to g(a, b) = relu(a + b)."""
    g = InnerNonlinearity(hidden_units=(4,))
    g.build((None, 2))
    k0 = np.zeros((2, 4), "float32")
    k0[:, 0] = 1.0
    g.kernel_0.assign(k0)
    g.bias_0.assign(np.zeros(4, "float32"))
    k1 = np.zeros((4, 1), "float32")
    k1[0, 0] = 1.0
    g.kernel_1.assign(k1)
    g.bias_1.assign(np.zeros(1, "float32"))
    return g


def test_product_scores_as_xor():
    s = analysis.xor_score(lambda a, b: a * b)
    assert s.is_xor and s.score == pytest.approx(1.0, abs=1e-6)
    assert s.hessian_det == pytest.approx(-1.0, abs=1e-6)
    assert s.quadrupole_fraction == pytest.approx(1.0, abs=1e-6)
    soft = analysis.xor_score(lambda a, b: np.tanh(a) * np.tanh(b))
    assert soft.is_xor and soft.score > 0.9


@pytest.mark.parametrize(
    "f",
    [
        lambda a, b: 0.3 * a - 2.0 * b + 1.0,
        lambda a, b: relu(a + b),
        lambda a, b: relu(a) + relu(b),
        np.maximum,
        lambda a, b: a * a + b * b,
        lambda a, b: np.ones_like(a),
    ],
    ids=["linear", "relu(a+b)", "relu(a)+relu(b)", "max", "bowl", "constant"],
)
def test_non_xor_functions_do_not_score(f):
    s = analysis.xor_score(f)
    assert not s.is_xor and s.score < 0.1


def test_inner_layer_scores():
    g = _product_net()
    a = np.linspace(-2, 2, 9)
    av, bv = np.meshgrid(a, a)
    approx = to_np(g(np.stack([av, bv], -1).astype("float32")))[..., 0]
    np.testing.assert_allclose(approx, av * bv, atol=0.05)
    assert analysis.xor_score(g).is_xor
    r = analysis.xor_score(_relu_net())
    assert not r.is_xor and r.score < 0.1


def test_surface_and_plot(tmp_path):
    surf = analysis.surface(lambda a, b: a - 2 * b, grid=5, extent=1.0)
    np.testing.assert_allclose(surf.a, [-1, -0.5, 0, 0.5, 1])
    assert surf.values.shape == (5, 5)
    assert surf.values[0, -1] == pytest.approx(1 - 2 * -1)  # row = b, column = a
    custom = analysis.surface(lambda a, b: a * b, grid=(np.array([0.0, 1.0]), np.array([2.0, 3.0, 4.0])))
    assert custom.values.shape == (3, 2) and custom.values[2, 1] == 4.0
    curve = analysis.surface(InnerNonlinearity(arity=1), grid=7)
    assert curve.b is None and curve.values.shape == (7,)
    path = tmp_path / "plots" / "g.png"
    fig = analysis.plot_surface(_product_net(), grid=41, path=path)
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "xor score" in fig.axes[0].get_title()
    fig1 = analysis.plot_surface(InnerNonlinearity(arity=1), grid=11, path=tmp_path / "g1.png")
    assert (tmp_path / "g1.png").exists() and fig1.axes[0].get_ylabel() == "g(a)"


def test_bad_arguments():
    with pytest.raises(ValueError, match="arity"):
        analysis.xor_score(InnerNonlinearity(arity=1))
    with pytest.raises(ValueError, match="grid"):
        analysis.surface(lambda a, b: a, grid=1)
    with pytest.raises(ValueError, match="max_order"):
        analysis.xor_score(lambda a, b: a, max_order=40)
