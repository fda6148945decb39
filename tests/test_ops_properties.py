"""Property-based tests (hypothesis) of keras_bioact.ops over random shapes, dtypes and parameters."""

import functools

import keras
import numpy as np
from helpers.testing import (
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from keras import ops

from keras_bioact import ops as bops

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Tolerances of one rounding of the float32 result to the dtype (plus float32 round-off).
RTOL = {"float32": 1e-5, "float16": 1e-3, "bfloat16": 8e-3}
# Compiled code (XLA) flushes float32 subnormals to zero: exp(z) < 1.2e-38, divided by n >= 1e-2.
ATOL = {"float32": 1e-35, "float16": 1e-7, "bfloat16": 1e-35}

# A fixed menu of shapes (ranks 1-3, size-1 axes included) keeps jax's compile cache warm; each
# shape costs every op a compile per dtype under JAX, so the menu is short.
shapes = st.sampled_from([(6,), (3, 4), (5, 1), (2, 1, 3)])
dtypes = st.sampled_from(["float32", "float16", "bfloat16"])


def _values(magnitude):
    """Finite float32 values: mostly moderate, with 0, tiny and huge magnitudes mixed in."""
    return st.one_of(
        st.floats(-8.0, 8.0, width=32),
        st.floats(-magnitude, magnitude, width=32),
        st.sampled_from([float(np.float32(v)) for v in (0.0, -0.0, 1e-30, -1e-30, magnitude, -magnitude)]),
    )


@st.composite
def inputs(draw, magnitude=1e4):
    shape = draw(shapes)
    dtype = draw(dtypes)
    x = draw(hnp.arrays(np.float32, shape, elements=_values(magnitude)))
    # Parameters either scalar or per last-axis element (broadcast like a Dense layer's units).
    per_unit = draw(st.booleans())
    pshape = (shape[-1],) if per_unit else ()
    return x, dtype, pshape


@functools.cache
def _op(name, dtype):
    """A stable function per (op, dtype), so that compiled versions are cached."""
    fn = getattr(bops, name)
    if name == "gamma":
        return lambda x, n, s: fn(ops.cast(x, dtype), n, s)
    return lambda x, r: fn(ops.cast(x, dtype), r)


def _log_uniform(low, high):
    return st.floats(np.log(low), np.log(high)).map(
        lambda v: float(np.float32(np.clip(np.exp(v), low, high)))
    )


@SETTINGS
@given(inputs(), st.data())
def test_gamma_property(case, data):
    x, dtype, pshape = case
    n = data.draw(hnp.arrays(np.float32, pshape, elements=_log_uniform(1e-2, 1e3)), label="n")
    if dtype == "float32":
        s = data.draw(hnp.arrays(np.float32, pshape, elements=st.floats(-0.5, 1.5, width=32)), label="s")
    else:  # keep every output representable in half precision (|gamma| <= (1 + |s|) |x|)
        s = data.draw(hnp.arrays(np.float32, pshape, elements=st.floats(0.0, 1.0, width=32)), label="s")
    x64 = to_numpy(ops.cast(ops.cast(x, dtype), "float32")).astype("float64")
    y = call(_op("gamma", dtype), x, n, s)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    assert tuple(y.shape) == x.shape
    y = to_numpy(ops.cast(y, "float32"))
    assert np.isfinite(y).all()
    _, _, s64, sp, sig = gamma_parts(x64, n, s)
    assert_close(y, gamma_ref(x64, n, s), scale=np.abs(1 - s64) * sp + np.abs(s64) * sig,
                 rtol=RTOL[dtype], atol=ATOL[dtype])

    nb = np.broadcast_to(n, x.shape).copy()
    sb = np.broadcast_to(s, x.shape).copy()
    grads = grad(_op("gamma", dtype), x, nb, sb)
    for g in grads:
        assert g.shape == x.shape and np.isfinite(g).all()
    if dtype == "float32":
        xx, n64, s64, sp, sig = gamma_parts(x, nb, sb)
        dsig = dsigmoid(n64 * xx)
        scales = [
            np.abs(1 - s64) * sig + np.abs(s64) * n64 * dsig,
            np.abs(1 - s64) / n64 * (np.abs(xx) * sig + sp) + np.abs(s64 * xx) * dsig,
            sig + sp,
        ]
        for name, g, r, sc in zip("xns", grads, gamma_grads_ref(x, nb, sb), scales, strict=True):
            assert_close(g, r, scale=sc, rtol=5e-5, atol=1e-35, err_msg=f"d gamma/d{name}:")


@SETTINGS
@given(inputs(), st.sampled_from(["eru", "oru"]), st.data())
def test_bru_property(case, form, data):
    x, dtype, pshape = case
    ref, grads_ref = {"eru": (eru_ref, eru_grads_ref), "oru": (oru_ref, oru_grads_ref)}[form]
    r = data.draw(hnp.arrays(np.float32, pshape, elements=st.floats(1.0, 10.0, width=32)), label="r")
    x64 = to_numpy(ops.cast(ops.cast(x, dtype), "float32")).astype("float64")
    y = call(_op(form, dtype), x, r)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    assert tuple(y.shape) == x.shape
    y = to_numpy(ops.cast(y, "float32"))
    assert np.isfinite(y).all()
    assert_close(y, ref(x64, r), scale=1.0 / r.astype("float64"), rtol=RTOL[dtype], atol=ATOL[dtype])

    rb = np.broadcast_to(r, x.shape).copy()
    gx, gr = grad(_op(form, dtype), x, rb)
    assert np.isfinite(gx).all() and np.isfinite(gr).all()
    if dtype == "float32":
        rx, rr = grads_ref(x, rb)
        r64 = rb.astype("float64")
        root = (r64**2 * np.abs(x) + 1) ** (1 / r64)
        assert_close(gx, rx, rtol=3e-5, atol=1e-35, err_msg=f"d {form}/dx:")
        assert_close(gr, rr, scale=root * (1 + np.log1p(r64**2 * np.abs(x))) + 1 / r64**2, rtol=3e-5,
                     err_msg=f"d {form}/dr:")


@SETTINGS
@given(hnp.arrays(np.float32, shapes, elements=st.floats(-1e4, 1e4, width=32)),
       st.floats(1.0, 10.0, width=32))
def test_oru_is_odd_and_bru_monotone(x, r):
    x = np.unique(x)  # sorted
    o_pos = evaluate(bops.oru, x, r)
    o_neg = evaluate(bops.oru, -x, r)
    np.testing.assert_allclose(o_neg, -o_pos, rtol=3e-7, atol=0)
    for fn in (bops.eru, bops.oru):
        y = evaluate(fn, x, r)
        assert np.all(np.diff(y) >= 0), f"{fn.__name__} not monotone on {x}: {y}"


@SETTINGS
@given(hnp.arrays(np.float32, shapes, elements=st.floats(-1e3, 1e3, width=32)),
       _log_uniform(1e-2, 1e3), st.floats(0.0, 1.0, width=32))
def test_gamma_monotone_for_unit_saturation(x, n, s):
    # For s in [0, 1] gamma is a convex combination of two nondecreasing functions.
    x = np.unique(x)
    y = evaluate(bops.gamma, x, n, s)
    assert np.all(np.diff(y) >= 0), (x, y)
    # ... and bounded below by 0 (softplus, sigmoid >= 0).
    assert np.all(y >= 0)
