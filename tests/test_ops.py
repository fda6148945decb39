"""keras_bioact.ops against float64 NumPy references: values, gradients, extremes, dtypes."""

import functools
import math

import keras
import numpy as np
import pytest
from helpers.testing import (
    BACKEND,
    assert_close,
    call,
    dsigmoid,
    eru_grads_ref,
    eru_ref,
    evaluate,
    gamma_grads_ref,
    gamma_parts,
    gamma_ref,
    grad,
    oru_grads_ref,
    oru_ref,
    to_numpy,
)
from keras import ops

from keras_bioact import ops as bops

F32 = "float32"
LN2 = math.log(2.0)

# A grid of inputs that spans every regime: 0, tiny, moderate, past the float32 exp overflow
# (|n x| > 88.7) and huge.
X_GRID = np.array(
    [
        0.0,
        1e-30,
        -1e-30,
        1e-6,
        -1e-6,
        0.01,
        -0.01,
        0.3,
        -0.3,
        1.0,
        -1.0,
        2.0,
        -3.0,
        7.5,
        -7.5,
        30.0,
        -30.0,
        89.0,
        -89.0,
        150.0,
        -150.0,
        1e3,
        -1e3,
        1e4,
        -1e4,
    ],
    dtype=F32,
)
N_GRID = np.array([1e-2, 0.1, 0.5, 1.0, 5.0, 20.0, 100.0, 1e3], dtype=F32)
S_GRID = np.array([-0.5, 0.0, 0.25, 1.0, 1.75], dtype=F32)
R_GRID = np.array([1.0, 1.5, 2.0, 3.5, 10.0], dtype=F32)


def _mesh(*grids):
    arrays = np.meshgrid(*grids, indexing="ij")
    return [a.reshape(-1).copy() for a in arrays]


# ---------------------------------------------------------------------------------------------
# Values


def test_readme_check_values_bru():
    x = np.array([-1.0, 0.0, 2.0, -3.0], dtype=F32)
    np.testing.assert_allclose(to_numpy(bops.eru(x, 2.0)), [-0.3647, 0.5, 2.5, -0.4975], atol=5e-5)
    np.testing.assert_allclose(to_numpy(bops.oru(x, 2.0)), [-1.2361, 0.0, 2.0, -2.6056], atol=5e-5)


def test_gamma_special_cases():
    x = np.linspace(-6, 6, 49).astype(F32)
    # s = 0, n = 1: softplus; s = 1: logistic sigmoid(n x).
    np.testing.assert_allclose(
        to_numpy(bops.gamma(x, 1.0, 0.0)), np.logaddexp(0, x.astype("float64")), rtol=1e-6, atol=1e-7
    )
    sigmoid = 1 / (1 + np.exp(-3.0 * x.astype("float64")))
    np.testing.assert_allclose(to_numpy(bops.gamma(x, 3.0, 1.0)), sigmoid, rtol=1e-6, atol=1e-7)
    # Large gain: ReLU and Heaviside.
    xs = np.array([-2.0, -0.5, 0.5, 2.0], dtype=F32)
    np.testing.assert_allclose(to_numpy(bops.gamma(xs, 200.0, 0.0)), np.maximum(xs, 0), atol=1e-6)
    np.testing.assert_allclose(to_numpy(bops.gamma(xs, 200.0, 1.0)), (xs > 0).astype(F32), atol=1e-6)
    # Value at 0.
    for n, s in [(1.0, 0.0), (0.5, 0.3), (7.0, 1.0), (2.0, 1.5)]:
        got = float(to_numpy(bops.gamma(np.zeros((), F32), n, s)))
        assert got == pytest.approx((1 - s) * LN2 / n + s / 2, rel=1e-6)


def test_bru_special_cases():
    x = np.linspace(-5, 5, 41).astype(F32)
    x64 = x.astype("float64")
    # r = 1: ERU is ELU, ORU is the identity.
    np.testing.assert_allclose(to_numpy(bops.eru(x, 1.0)), np.where(x64 >= 0, x64, np.expm1(x64)), atol=2e-6)
    np.testing.assert_allclose(to_numpy(bops.oru(x, 1.0)), x64, rtol=2e-6, atol=1e-6)
    for r in (1.5, 2.0, 3.5):
        e = to_numpy(bops.eru(x, r))
        o = to_numpy(bops.oru(x, r))
        assert float(to_numpy(bops.eru(np.zeros((), F32), r))) == pytest.approx(1 - 1 / r, rel=1e-6)
        assert e.min() >= -1 / r - 1e-6  # lower bound -1/r
        np.testing.assert_allclose(o, -o[::-1], rtol=3e-7)  # odd
        assert np.all(np.diff(e) > 0) and np.all(np.diff(o) > 0)  # monotonic


@pytest.mark.parametrize("x_sign", ["all", "zero"])
def test_gamma_float32_matches_float64_reference(x_sign):
    xs = X_GRID if x_sign == "all" else np.array([0.0, -0.0], F32)
    x, n, s = _mesh(xs, N_GRID, S_GRID)
    y = evaluate(bops.gamma, x, n, s)
    assert y.dtype == np.float32
    _, _, s64, sp, sig = gamma_parts(x, n, s)
    # Round-off is relative to the two terms summed, not to their (possibly cancelling) sum.
    assert_close(y, gamma_ref(x, n, s), scale=np.abs(1 - s64) * sp + np.abs(s64) * sig, rtol=4e-6, atol=1e-37)


@pytest.mark.parametrize("form", ["eru", "oru"])
def test_bru_float32_matches_float64_reference(form):
    fn, ref = (bops.eru, eru_ref) if form == "eru" else (bops.oru, oru_ref)
    x, r = _mesh(X_GRID, R_GRID)
    y = evaluate(fn, x, r)
    assert y.dtype == np.float32
    # ERU's exp branch minus 1/r cancels: round-off is relative to 1/r there.
    assert_close(y, ref(x, r), scale=1.0 / r.astype("float64"), rtol=4e-6)


def test_ops_broadcast_parameters():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4)).astype(F32) * 3
    n = rng.uniform(0.5, 8, size=(4,)).astype(F32)
    s = rng.uniform(0, 1, size=(3, 1)).astype(F32)
    r = rng.uniform(1, 4, size=(3, 4)).astype(F32)
    y = evaluate(bops.gamma, x, n, s)
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(y, gamma_ref(x, n, s), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(bops.eru(x, r)), eru_ref(x, r), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(bops.oru(x, r)), oru_ref(x, r), rtol=1e-5, atol=1e-6)
    # Scalars and python numbers broadcast too.
    y = to_numpy(bops.gamma(x, 2.0, 0.5))
    np.testing.assert_allclose(y, gamma_ref(x, 2.0, 0.5), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# dtypes


HALF_AND_SINGLE = ["float16", "bfloat16", "float32"]


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE + ["float64"])
@pytest.mark.parametrize("op", ["gamma", "eru", "oru"])
def test_ops_keep_input_dtype(op, dtype):
    if dtype == "float64" and BACKEND == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("jax without x64 has no float64")
    x = ops.cast(ops.convert_to_tensor(np.linspace(-3, 3, 7).astype(F32)), dtype)
    param = np.float32(2.0)
    y = bops.gamma(x, param, 0.3) if op == "gamma" else getattr(bops, op)(x, param)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    assert tuple(y.shape) == (7,)


@pytest.mark.parametrize("op", ["gamma", "eru", "oru"])
def test_ops_integer_input_gives_float32(op):
    x = ops.convert_to_tensor(np.arange(-3, 4, dtype="int32"))
    y = bops.gamma(x, 2.0, 0.3) if op == "gamma" else getattr(bops, op)(x, 2.0)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    x64 = np.arange(-3, 4).astype("float64")
    ref = gamma_ref(x64, 2.0, 0.3) if op == "gamma" else {"eru": eru_ref, "oru": oru_ref}[op](x64, 2.0)
    np.testing.assert_allclose(to_numpy(y), ref, rtol=1e-6, atol=1e-6)


# Representable ranges: |x| up to 1e4 keeps every output below float16's 65504.
HALF_X = np.array(
    [0.0, 1e-3, -1e-3, 0.1, -0.1, 1.0, -1.0, 5.0, -5.0, 60.0, -60.0, 1e3, -1e3, 1e4, -1e4], dtype=F32
)


def _half(x, dtype):
    """x rounded to `dtype`, as a tensor, and the rounded values in float64."""
    t = ops.cast(ops.convert_to_tensor(x), dtype)
    return t, to_numpy(ops.cast(t, F32)).astype("float64")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_values(dtype):
    rtol = 1e-3 if dtype == "float16" else 8e-3
    x, n, s = _mesh(HALF_X, np.array([1e-2, 1.0, 10.0, 1e3], F32), np.array([0.0, 0.5, 1.0], F32))
    xt, x64 = _half(x, dtype)
    y = to_numpy(ops.cast(bops.gamma(xt, n, s), F32))
    assert np.isfinite(y).all()
    assert_close(y, gamma_ref(x64, n, s), scale=gamma_ref(x64, n, np.zeros_like(s)), rtol=rtol, atol=1e-7)
    x, r = _mesh(HALF_X, R_GRID)
    xt, x64 = _half(x, dtype)
    for fn, ref in ((bops.eru, eru_ref), (bops.oru, oru_ref)):
        y = to_numpy(ops.cast(fn(xt, r), F32))
        assert np.isfinite(y).all()
        assert_close(y, ref(x64, r), scale=1.0 / r, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_gradients_finite(dtype):
    x, n, s = _mesh(HALF_X, np.array([1e-2, 1.0, 10.0, 1e3], F32), np.array([0.0, 0.5, 1.0], F32))
    grads = grad(lambda x, n, s: bops.gamma(ops.cast(x, dtype), n, s), x, n, s)
    for g in grads:
        assert np.isfinite(g).all()
    # d/dx at 0 through the half-precision path is still the one-sided analytic slope.
    at0 = x == 0
    expected = (1 - s[at0]) / 2 + s[at0] * n[at0] / 4
    np.testing.assert_allclose(grads[0][at0], expected, rtol=8e-3)
    x, r = _mesh(HALF_X, R_GRID)
    for fn in (bops.eru, bops.oru):
        gx, gr = grad(lambda x, r, fn=fn: fn(ops.cast(x, dtype), r), x, r)
        assert np.isfinite(gx).all() and np.isfinite(gr).all()
        np.testing.assert_allclose(gx[x == 0], r[x == 0], rtol=8e-3)


# ---------------------------------------------------------------------------------------------
# Gradients


GAMMA_OPS = [
    bops.gamma,
    pytest.param(
        bops.gamma_custom_gradient,
        marks=pytest.mark.skipif(BACKEND == "torch", reason="custom gradient: TensorFlow and JAX"),
    ),
]


@pytest.mark.parametrize("op", GAMMA_OPS)
def test_gamma_gradients_match_analytic(op):
    xs = np.array([-6.0, -2.0, -0.7, -0.05, 0.0, 0.05, 0.3, 1.0, 2.5, 6.0], F32)
    x, n, s = _mesh(xs, np.array([0.05, 0.5, 1.0, 3.0, 12.0], F32), S_GRID)
    got = grad(op, x, n, s)
    ref = gamma_grads_ref(x, n, s)
    x64, n64, s64, sp, sig = gamma_parts(x, n, s)
    dsig = dsigmoid(n64 * x64)
    scales = [
        np.abs(1 - s64) * sig + np.abs(s64) * n64 * dsig,
        np.abs(1 - s64) / n64 * (np.abs(x64) * sig + sp) + np.abs(s64 * x64) * dsig,
        sig + sp,
    ]
    for name, g, r, sc in zip(("x", "n", "s"), got, ref, scales, strict=True):
        assert g.shape == x.shape and g.dtype == np.float32
        assert_close(g, r, scale=sc, rtol=3e-5, atol=1e-30, err_msg=f"d gamma / d {name}:")


@pytest.mark.parametrize("form", ["eru", "oru"])
def test_bru_gradients_match_analytic(form):
    fn, ref = (bops.eru, eru_grads_ref) if form == "eru" else (bops.oru, oru_grads_ref)
    xs = np.array([-8.0, -2.0, -0.7, -0.05, -1e-4, 0.0, 1e-4, 0.05, 0.3, 1.0, 2.5, 40.0, 1e3], F32)
    x, r = _mesh(xs, R_GRID)
    gx, gr = grad(fn, x, r)
    rx, rr = ref(x, r)
    assert_close(gx, rx, rtol=2e-5, atol=1e-30, err_msg=f"d {form}/dx:")
    # d/dr sums terms of size ~ root * log(root) and 1/r^2.
    root = (r.astype("float64") ** 2 * np.abs(x) + 1) ** (1 / r.astype("float64"))
    scale = root * (1 + np.log1p(r.astype("float64") ** 2 * np.abs(x))) + 1 / r.astype("float64") ** 2
    assert_close(gr, rr, scale=scale, rtol=2e-5, err_msg=f"d {form}/dr:")


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_gradients_exactly_at_zero(zero):
    x = np.full((len(N_GRID) * len(S_GRID),), zero, F32)
    _, n, s = _mesh(np.array([zero], F32), N_GRID, S_GRID)
    gx, gn, gs = grad(bops.gamma, x, n, s)
    n64, s64 = n.astype("float64"), s.astype("float64")
    np.testing.assert_allclose(gx, (1 - s64) / 2 + s64 * n64 / 4, rtol=2e-6)
    np.testing.assert_allclose(gn, -(1 - s64) * LN2 / n64**2, rtol=2e-6)
    np.testing.assert_allclose(gs, 0.5 - LN2 / n64, rtol=2e-6)
    r = R_GRID
    xr = np.full(r.shape, zero, F32)
    for fn in (bops.eru, bops.oru):
        gx, gr = grad(fn, xr, r)
        np.testing.assert_allclose(gx, r, rtol=2e-6, err_msg=f"{fn.__name__}'(0) = r")
    _, gr = grad(bops.eru, xr, r)
    np.testing.assert_allclose(gr, 1 / r.astype("float64") ** 2, rtol=2e-6)  # d(1 - 1/r)/dr
    _, gr = grad(bops.oru, xr, r)
    np.testing.assert_array_equal(gr, 0.0)


def _central_difference(fn, args, index, h):
    plus = [a.copy() for a in args]
    minus = [a.copy() for a in args]
    plus[index] = (args[index].astype("float64") + h).astype(F32)
    minus[index] = (args[index].astype("float64") - h).astype(F32)
    step = plus[index].astype("float64") - minus[index].astype("float64")  # the representable step
    fp = evaluate(fn, *plus).astype("float64")
    fm = evaluate(fn, *minus).astype("float64")
    return (fp - fm) / step


def test_gamma_gradients_match_finite_differences():
    xs = np.array([-3.0, -0.8, -0.1, 0.0, 0.2, 0.9, 2.0, 4.0], F32)
    x, n, s = _mesh(xs, np.array([0.3, 1.0, 4.0], F32), np.array([-0.3, 0.0, 0.6, 1.0, 1.4], F32))
    args = [x, n, s]
    got = grad(bops.gamma, *args)
    for i, name in enumerate("xns"):
        h = 2e-3 * np.maximum(1.0, np.abs(args[i].astype("float64")))
        fd = _central_difference(bops.gamma, args, i, h)
        np.testing.assert_allclose(got[i], fd, rtol=1e-2, atol=2e-3, err_msg=f"d gamma / d {name}")


@pytest.mark.parametrize("form", ["eru", "oru"])
def test_bru_gradients_match_finite_differences(form):
    fn = getattr(bops, form)
    xs = np.array([-3.0, -0.8, -0.1, 0.0, 0.2, 0.9, 2.0, 15.0], F32)
    x, r = _mesh(xs, np.array([1.0, 1.7, 3.0, 8.0], F32))
    got = grad(fn, x, r)
    # At x = 0 the second derivative jumps (from r^2 or -(r-1)r^2 to (1-r)r^2), which makes the
    # central difference off by h/4 times the jump: a small step keeps that below 1e-2.
    h = np.where(x == 0, 1e-5, 2e-3 * np.maximum(1.0, np.abs(x)))
    fd = _central_difference(fn, [x, r], 0, h)
    np.testing.assert_allclose(got[0], fd, rtol=1e-2, atol=3e-2, err_msg=f"d {form}/dx")
    fd = _central_difference(fn, [x, r], 1, 2e-3 * r)
    np.testing.assert_allclose(got[1], fd, rtol=1e-2, atol=2e-3, err_msg=f"d {form}/dr")


# ---------------------------------------------------------------------------------------------
# Extreme values


@pytest.mark.parametrize("op", GAMMA_OPS)
def test_gamma_gradient_tails_keep_relative_precision(op):
    """Where sigmoid(n x) rounds to 1, d/dx and d/dn are tiny differences: both must still be
    right to a few ulps of their own size (no `1 - sigma` or `x sigma - softplus` cancellation)."""
    x, n, s = _mesh(
        np.array([3.0, 8.0, 15.0, 30.0], F32), np.array([1.0, 3.0], F32), np.array([0.0, 1.0], F32)
    )
    got = grad(op, x, n, s)
    for name, g, r in zip(("x", "n"), got[:2], gamma_grads_ref(x, n, s)[:2], strict=True):
        tiny = (np.abs(r) < 1e-3) & (np.abs(r) > 1e-30)  # the tails (not float32 subnormals)
        assert tiny.any()
        np.testing.assert_allclose(g[tiny], r[tiny], rtol=2e-5, atol=0, err_msg=f"d gamma / d {name}")


# The numerics grid: inputs from 0 to the float32 maximum, every regime of the parameters (legal
# values only: n > 0, any s, r > 0), in the dtypes a layer computes in under the float32,
# bfloat16 and mixed_float16 policies. Policy -> (dtype of x, the value and d/dx; dtype of the
# parameters and their gradients): a layer feeds the ops its compute dtype and its variables.
POLICIES = {"float32": ("float32", "float32"), "bfloat16": ("bfloat16", "bfloat16"),
            "mixed_float16": ("float16", "float32")}
MAX = {"float32": float(np.finfo(F32).max), "float16": 65504.0, "bfloat16": 3.3895313892515355e38}
GRID_RTOL = {"float32": 3e-5, "float16": 2e-3, "bfloat16": 1e-2}
# Below these, values are noise: flushed subnormals (XLA, TensorFlow's CPU kernels), or float16's
# smallest step.
GRID_ATOL = {"float32": 1e-30, "float16": 6e-8, "bfloat16": 1e-30}
_MAGNITUDES = [0.0, 1e-38, 1e-30, 1e-7, 1.0, 11.2, 88.0, 89.0, 104.0, 5e3, 1e4, 1e19, 1e30, 1e36,
               3.4e36, 1e37, 1e38, 3e38, MAX["float32"]]
GRID_X = np.unique(np.array([sign * m for m in _MAGNITUDES for sign in (1.0, -1.0)], F32))
GRID_N = np.array([0.01, 0.1, 1.0, 20.0, 1e3, 1e6], F32)
GRID_S = np.array([-10.0, -0.5, 0.0, 0.3, 1.0, 1.5, 10.0], F32)
GRID_R = np.array([0.1, 0.5, 0.9, 1.0, 1.0001, 1.5, 2.0, 3.5, 10.0], F32)


def _rounded(a, dtype):
    """`a` rounded to `dtype` by the backend, back in float32."""
    return to_numpy(ops.cast(ops.cast(ops.convert_to_tensor(a), dtype), F32))


@functools.cache
def _grid_op(name, dtype, param_dtype):
    """`op(cast(x, dtype), *cast(params, param_dtype))`: one stable function per combination, so
    that compiled versions are cached."""
    fn = getattr(bops, name)
    return lambda x, *params: fn(ops.cast(x, dtype), *(ops.cast(p, param_dtype) for p in params))


def _check_grid(name, got, ref, dtype, scale, inputs, saturates):
    """Where the float64 reference is a finite `dtype` value, `got` is finite and equal to it
    within `GRID_RTOL` (relative to `|ref| + scale`, the size of the terms summed); where the
    reference exceeds the dtype's range, `got` has its sign and is at least the largest finite
    value (exactly that value if the op `saturates`); NaN nowhere."""
    got = got.astype("float64")
    with np.errstate(invalid="ignore", over="ignore"):
        mag = np.abs(ref)
        fits = mag <= MAX[dtype] * (1.0 - GRID_RTOL[dtype])
        over = ~(mag <= MAX[dtype] * (1.0 + GRID_RTOL[dtype]))  # NaN references count as over
        bound = GRID_RTOL[dtype] * (mag + np.abs(scale)) + GRID_ATOL[dtype]
        bad = np.isnan(got) | (fits & ~(np.abs(got - ref) <= bound))
        top = MAX[dtype] if saturates else np.inf
        bad |= over & ~((np.sign(got) == np.sign(ref)) & (np.abs(got) >= MAX[dtype]) & (np.abs(got) <= top))
    if bad.any():
        i = np.flatnonzero(bad)[:6]
        where = ", ".join(f"{k}={v[i]}" for k, v in inputs.items())
        raise AssertionError(f"{name}: {bad.sum()} of {bad.size} wrong ({dtype}); first at {where}: got "
                             f"{got[i]}, reference {ref[i]}")


GRID_GAMMA_OPS = ["gamma", pytest.param("gamma_custom_gradient", marks=GAMMA_OPS[1].marks)]


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("op", GRID_GAMMA_OPS)
def test_gamma_numerics_grid(op, policy):
    dtype, pdtype = POLICIES[policy]
    x, n, s = _mesh(GRID_X, GRID_N, GRID_S)
    xr, nr, sr = _rounded(x, dtype), _rounded(n, pdtype), _rounded(s, pdtype)
    finite = np.isfinite(xr)  # float16 has no 1e19: those inputs are not finite ones
    xr[~finite] = 0.0  # skipped below; keeps the references free of inf - inf
    fn = _grid_op(op, dtype, pdtype)
    y = to_numpy(ops.cast(call(fn, x, n, s), F32))
    grads = grad(fn, x, n, s)
    x64, n64, s64, sp, sig = gamma_parts(xr, nr, sr)
    dsig = dsigmoid(n64 * x64)
    refs = [gamma_ref(xr, nr, sr), *gamma_grads_ref(xr, nr, sr)]
    scales = [
        np.abs(1 - s64) * sp + np.abs(s64) * sig,
        np.abs(1 - s64) * sig + np.abs(s64) * n64 * dsig,
        np.abs(1 - s64) / n64 * (np.abs(x64) * sig + sp) + np.abs(s64 * x64) * dsig,
        sig + sp,
    ]
    inputs = {"x": xr[finite], "n": nr[finite], "s": sr[finite]}
    for name, got, ref, scale, dt in zip(("value", "d/dx", "d/dn", "d/ds"), [y, *grads], refs, scales,
                                         (dtype, dtype, pdtype, pdtype), strict=True):
        _check_grid(f"{op} {name}", got[finite], ref[finite], dt, scale[finite], inputs, saturates=False)


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("form", ["eru", "oru"])
def test_bru_numerics_grid(form, policy):
    dtype, pdtype = POLICIES[policy]
    x, r = _mesh(GRID_X, GRID_R)
    xr, rr = _rounded(x, dtype), _rounded(r, pdtype)
    finite = np.isfinite(xr)
    xr[~finite] = 0.0  # skipped below; keeps the references free of inf - inf
    fn = _grid_op(form, dtype, pdtype)
    y = to_numpy(ops.cast(call(fn, x, r), F32))
    grads = grad(fn, x, r)
    ref, grads_ref = (eru_ref, eru_grads_ref) if form == "eru" else (oru_ref, oru_grads_ref)
    with np.errstate(over="ignore", invalid="ignore"):
        refs = [ref(xr, rr), *grads_ref(xr, rr)]
        r64 = rr.astype("float64")
        log1p = np.log1p(r64**2 * np.abs(xr.astype("float64")))
        scales = [1.0 / r64 if form == "eru" else 0.0 * r64, 0.0 * r64,
                  np.exp(log1p / r64) * (1.0 + log1p) + 1.0 / r64**2]
    inputs = {"x": xr[finite], "r": rr[finite]}
    for name, got, ref, scale, dt in zip(("value", "d/dx", "d/dr"), [y, *grads], refs, scales,
                                         (dtype, dtype, pdtype), strict=True):
        _check_grid(f"{form} {name}", got[finite], ref[finite], dt, scale[finite], inputs, saturates=True)


def test_masked_branches_do_not_poison_gradients():
    # The unused branches here are NaN (negative base to a fractional power) or overflow
    # (exp(r x) for large x); the gradient must still be the used branch's, exactly.
    x = np.array([-1.0, -50.0, 100.0, 1e4], F32)
    r = np.full_like(x, 2.0)
    for fn, ref in ((bops.eru, eru_grads_ref), (bops.oru, oru_grads_ref)):
        gx, gr = grad(fn, x, r)
        rx, rr = ref(x, r)
        np.testing.assert_allclose(gx, rx, rtol=1e-5, atol=1e-30)
        np.testing.assert_allclose(gr, rr, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="unknown static sizes: TensorFlow graph tracing")
def test_custom_gradients_with_unknown_static_sizes():
    """The hand-written backward passes reduce broadcast parameters from static sizes that may be
    unknown (a traced batch axis): per-example `n`, broadcast `s`, an `r` of shape (batch, 1)."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4)).astype(F32) * 3
    n = rng.uniform(0.5, 4.0, size=(3, 4)).astype(F32)
    s = rng.uniform(-0.5, 1.5, size=(1, 4)).astype(F32)
    r = rng.uniform(0.5, 3.0, size=(3, 1)).astype(F32)

    def total(x, n, s, r):
        y = ops.sum(bops.gamma_custom_gradient(x, n, s))
        return y + ops.sum(bops.eru(x, r)) + ops.sum(bops.oru(x, r))

    batch = tf.TensorSpec((None, 4))
    signature = [batch, batch, tf.TensorSpec((1, 4)), tf.TensorSpec((None, 1))]

    @tf.function(input_signature=signature)
    def traced(*args):
        with tf.GradientTape() as tape:
            tape.watch(args)
            y = total(*args)
        return tape.gradient(y, args)

    for got, want in zip(traced(x, n, s, r), grad(total, x, n, s, r), strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Compiled


@pytest.mark.skipif(BACKEND not in ("jax", "tensorflow"), reason="XLA compilation: jax and tensorflow")
def test_ops_under_xla_match_eager():
    x, n, s = _mesh(
        np.array([-1e4, -3.0, 0.0, 0.5, 1e4], F32), np.array([1e-2, 2.0, 1e3], F32), np.array([0.0, 0.7], F32)
    )
    r = np.clip(n, 1.0, 10.0)

    def f(x, n, s, r):
        return bops.gamma(x, n, s), bops.eru(x, r), bops.oru(x, r)

    if BACKEND == "jax":
        import jax

        compiled = jax.jit(f)
    else:
        import tensorflow as tf

        compiled = tf.function(f, jit_compile=True)
    for eager, jitted in zip(f(x, n, s, r), compiled(x, n, s, r), strict=True):
        np.testing.assert_allclose(to_numpy(jitted), to_numpy(eager), rtol=2e-6, atol=1e-7)
