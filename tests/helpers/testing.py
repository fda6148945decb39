"""Shared helpers for the keras-bioact tests: backend autodiff and float64 NumPy references."""

import keras
import numpy as np
from keras import ops

BACKEND = keras.backend.backend()
_JIT_CACHE = {}


def grad(fn, *args):
    """Gradients of `sum(fn(*args))` with respect to every argument, by the backend's autodiff.

    `args` are NumPy arrays (or numbers); each gradient comes back as a NumPy array of the
    argument's shape. The output is cast to float32 before the sum, so `fn` may compute
    in any dtype (cast inside `fn` to test half precision).
    """
    args = [np.asarray(a, dtype="float32") if not isinstance(a, np.ndarray) else a for a in args]

    def total(*tensors):
        return ops.sum(ops.cast(fn(*tensors), "float32"))

    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        # Compiled: op-by-op jax dispatch compiles every primitive for every new shape, which
        # is much slower for these evaluations. Cached per `fn` so that repeated shapes hit.
        key = ("grad", fn, len(args))
        if key not in _JIT_CACHE:
            _JIT_CACHE[key] = jax.jit(jax.grad(total, argnums=tuple(range(len(args)))))
        grads = _JIT_CACHE[key](*[jnp.asarray(a) for a in args])
        return [np.asarray(g) for g in grads]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            y = total(*tensors)
        grads = tape.gradient(y, tensors)
        return [
            np.zeros(a.shape, a.dtype) if g is None else np.asarray(g)
            for a, g in zip(args, grads, strict=True)
        ]
    if BACKEND == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in args]
        total(*tensors).backward()
        return [
            np.zeros(a.shape, a.dtype) if t.grad is None else t.grad.numpy()
            for a, t in zip(args, tensors, strict=True)
        ]
    raise NotImplementedError(f"grad: backend {BACKEND!r} has no autodiff")


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def call(fn, *args):
    """`fn(*args)`, compiled with `jax.jit` under jax (one compile instead of one per op)."""
    if BACKEND == "jax":
        import jax

        if fn not in _JIT_CACHE:
            _JIT_CACHE[fn] = jax.jit(fn)
        return _JIT_CACHE[fn](*args)
    return fn(*args)


def evaluate(fn, *args):
    """`call(fn, *args)` as NumPy."""
    return to_numpy(call(fn, *args))


# ---------------------------------------------------------------------------------------------
# float64 NumPy references (SPEC 1.1 and 4.1)


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def dsigmoid(z):
    """sigmoid'(z) = e / (1 + e)^2 with e = exp(-|z|), without the cancellation in 1 - sigmoid."""
    e = np.exp(-np.abs(z))
    return e / (1.0 + e) ** 2


def gamma_parts(x, n, s):
    x, n, s = (np.asarray(v, dtype="float64") for v in (x, n, s))
    z = n * x
    sp = np.logaddexp(0.0, z) / n
    sig = _sigmoid(z)
    return x, n, s, sp, sig


def gamma_ref(x, n, s):
    x, n, s, sp, sig = gamma_parts(x, n, s)
    return (1.0 - s) * sp + s * sig


def gamma_grads_ref(x, n, s):
    """(d/dx, d/dn, d/ds) of gamma, SPEC 1.1. `x sigma - softplus_n`, which cancels in float64
    too where sigma rounds to 1, is written as `-(|x| e t + log1p(e) / n)` (`e = exp(-|n x|)`,
    `t = 1 / (1 + e)`), exactly equal."""
    x, n, s, sp, sig = gamma_parts(x, n, s)
    z = n * x
    dsig = dsigmoid(z)
    e = np.exp(-np.abs(z))
    dx = (1.0 - s) * sig + s * (n * dsig)
    dn = -(1.0 - s) / n * (np.abs(x) * e / (1.0 + e) + np.log1p(e) / n) + s * (x * dsig)
    ds = sig - sp
    return dx, dn, ds


def _root(x, r):
    """(r^2 |x| + 1)^(1/r) and its log, float64."""
    a = np.abs(x)
    log = np.log1p(r * r * a) / r
    return np.exp(log), a


def eru_ref(x, r):
    x, r = np.broadcast_arrays(np.asarray(x, "float64"), np.asarray(r, "float64"))
    root, _ = _root(np.maximum(x, 0.0), r)
    return np.where(x >= 0, root, np.exp(r * np.minimum(x, 0.0))) - 1.0 / r


def oru_ref(x, r):
    x, r = np.broadcast_arrays(np.asarray(x, "float64"), np.asarray(r, "float64"))
    return np.sign(x) * np.expm1(np.log1p(r * r * np.abs(x)) / r)  # root - 1 without cancellation


def _root_dr(a, r):
    root, _ = _root(a, r)
    return root * (2.0 * a / (1.0 + r * r * a) - np.log1p(r * r * a) / (r * r))


def eru_grads_ref(x, r):
    """(d/dx, d/dr) of ERU, SPEC 4.1."""
    x, r = np.broadcast_arrays(np.asarray(x, "float64"), np.asarray(r, "float64"))
    xp = np.maximum(x, 0.0)
    xn = np.minimum(x, 0.0)
    dx = np.where(x >= 0, r * (r * r * xp + 1.0) ** ((1.0 - r) / r), r * np.exp(r * xn))
    dr = np.where(x >= 0, _root_dr(xp, r), xn * np.exp(r * xn)) + 1.0 / (r * r)
    return dx, dr


def oru_grads_ref(x, r):
    """(d/dx, d/dr) of ORU, SPEC 4.1."""
    x, r = np.broadcast_arrays(np.asarray(x, "float64"), np.asarray(r, "float64"))
    a = np.abs(x)
    dx = r * (r * r * a + 1.0) ** ((1.0 - r) / r)
    dr = np.sign(x) * _root_dr(a, r)
    return dx, dr


def assert_close(actual, expected, scale=None, rtol=1e-5, atol=1e-30, err_msg=""):
    """`|actual - expected| <= rtol * (|expected| + scale) + atol`, elementwise.

    `scale` is the magnitude of the terms that were summed to form `expected` (round-off in a
    sum of large terms is relative to the terms, not to the possibly tiny result).
    """
    actual = np.asarray(actual, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    bound = rtol * (np.abs(expected) + (0.0 if scale is None else np.abs(scale))) + atol
    err = np.abs(actual - expected)
    bad = ~(err <= bound)
    if bad.any():
        i = np.flatnonzero(bad.reshape(-1))[:5]
        raise AssertionError(
            f"{err_msg} {bad.sum()} of {bad.size} elements differ; first at flat index {i}: "
            f"actual {actual.reshape(-1)[i]}, expected {expected.reshape(-1)[i]}, "
            f"err {err.reshape(-1)[i]}, bound {np.broadcast_to(bound, err.shape).reshape(-1)[i]}"
        )
