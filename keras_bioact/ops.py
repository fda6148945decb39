"""Functional forms of the keras-bioact activations, written with `keras.ops` only.

Every op here is finite, and has finite gradients with respect to every input, for all
finite inputs and every legal parameter value (SPEC section 5): branches are masked
*before* they are evaluated, so no unused branch of a `where` ever produces Inf or NaN.
Half-precision inputs (float16, bfloat16) are computed in float32 and cast back, so
`n * x` cannot overflow where the result itself is representable.
"""

from keras import ops

__all__ = ["gamma", "eru", "oru"]

_HALF = ("float16", "bfloat16")


def _compute_dtype(x):
    dtype = ops.dtype(x) if hasattr(x, "dtype") else None
    dtype = str(dtype) if dtype is not None else "float32"
    if "int" in dtype or dtype == "bool":
        dtype = "float32"
    return dtype, ("float32" if dtype in _HALF else dtype)


def _prepare(x, *params):
    x = ops.convert_to_tensor(x)
    out_dtype, dtype = _compute_dtype(x)
    x = ops.cast(x, dtype)
    params = tuple(ops.cast(ops.convert_to_tensor(p), dtype) for p in params)
    return out_dtype, x, params


def _finish(y, out_dtype):
    return y if str(y.dtype) == out_dtype else ops.cast(y, out_dtype)


def _gamma_parts(x, n):
    """`(sigmoid(n x), softplus(n x) / n)` sharing one exponential.

    With `z = n x` and `e = exp(-|z|)` in (0, 1]: `softplus(z) = max(z, 0) + log1p(e)` and
    `sigmoid(z) = 1 / (1 + e)` (z >= 0) or `e / (1 + e)` (z < 0). Since `n > 0`,
    `max(z, 0) / n = max(x, 0)`. `exp` only sees non-positive arguments, so nothing overflows,
    and both parts keep full relative precision in their tails. (A cheaper `tanh` form was
    measured and rejected: `1 - sigmoid(|z|)` cancels and loses relative precision for z << 0.)
    """
    sig, softplus_n, _, _ = _gamma_terms(x, n)
    return sig, softplus_n


def _gamma_terms(x, n):
    """`_gamma_parts`, `sigmoid'(n x) = e t^2` (`t = 1/(1+e)`) and
    `softplus_n - x sig = |x| e t + log1p(e) / n` (>= 0), each without cancellation (the
    obvious `sig (1 - sig)` and `softplus_n - x sig` cancel where `sig` rounds to 1)."""
    z = n * x
    positive = z >= 0
    # |z| and max(x, 0) through `where`, so the derivative at 0 is the one-sided one
    # (ops.abs / ops.relu have derivative 0 at 0 on some backends).
    e = ops.exp(ops.where(positive, -z, z))
    t = 1.0 / (1.0 + e)
    et = e * t
    sig = ops.where(positive, t, et)
    log_n = ops.log1p(e) / n
    softplus_n = ops.where(positive, x, 0.0) + log_n
    tail = ops.where(positive, x, -x) * et + log_n
    return sig, softplus_n, et * t, tail


def gamma(x, n, s):
    """Gamma activation of Geadah et al. (SPEC section 1.1).

    `gamma(x; n, s) = (1 - s) * softplus(n x) / n + s * sigmoid(n x)`

    `n > 0` is the neuronal gain and `s` the degree of saturation (`s = 0`: softplus with
    gain `n`, ReLU as `n -> inf`; `s = 1`: logistic `sigmoid(n x)`). `n` and `s` broadcast
    against `x` (e.g. shape `(units,)` for one pair per neuron).

    The sigmoid and the softplus share one `exp` (see `_gamma_parts`).

    Non-finite inputs: `gamma(-inf) = 0`; `gamma(+inf) = +inf` for `s < 1` and NaN at exactly
    `s = 1` (the softplus term is `0 * inf` there; its limit would be 1); `gamma(nan) = nan`.

    Args:
        x: input tensor.
        n: gain, broadcastable to `x`, must be > 0.
        s: saturation, broadcastable to `x` (the papers use [0, 1] but let it drift).

    Returns:
        A tensor of the dtype of `x` (float32 if `x` is an integer tensor).
    """
    out_dtype, x, (n, s) = _prepare(x, n, s)
    sig, softplus_n = _gamma_parts(x, n)
    # Not the cheaper `softplus_n + s * (sig - softplus_n)`: its round-off is relative to
    # softplus_n even at s = 1, e.g. gamma(1000; n=0.01, s=1) came out 260 ulps off sigmoid(10).
    return _finish((1.0 - s) * softplus_n + s * sig, out_dtype)


# Past `r^2 a = 2^24`, `log1p(r^2 a)` equals `log(r^2) + log(a)` to float32 round-off, and the
# product `r^2 a` may overflow (a > FLT_MAX / r^2), so the root branches switch to the sum of logs.
_LOG_SPLIT = 2.0**24
_LN2 = 0.6931471805599453


# log of the largest finite value of each compute dtype, rounded down.
_MAX_LOG = {"float32": 88.72283, "float64": 709.782712893}


def _log1p_r2(a, r):
    """`log1p(r^2 a)` for `a >= 0`, finite (with finite gradients) for every finite `a`.

    The large-`a` branch is capped at `r * log(max finite)`, so `exp(log1p(r^2 a) / r)` cannot
    round past the largest finite float (at `r = 1`, `a` near FLT_MAX it is off by round-off).
    """
    rr = r * r
    big = a * (1.0 / _LOG_SPLIT) > 1.0 / rr
    small = ops.log1p(rr * ops.where(big, 0.0, a))
    # log(a) as log(a 2^-64) + 64 log 2: d/da = 1/a would be subnormal for a > 2^126, and
    # TensorFlow's CPU kernels flush it to zero.
    large = 2.0 * ops.log(r) + ops.log(ops.where(big, a, 1.0) * 2.0**-64) + 64.0 * _LN2
    large = ops.minimum(large, r * _MAX_LOG.get(str(a.dtype).split(".")[-1], _MAX_LOG["float32"]))
    return ops.where(big, large, small)


def eru(x, r):
    """Exponential root unit, the "E_rRU" of Bhumbra's BRU family (SPEC section 4.1).

    `eru(x; r) = (r^2 x + 1)^(1/r) - 1/r` for `x >= 0` and `exp(r x) - 1/r` for `x < 0`.

    C1 at 0 with slope `r`; bounded below by `-1/r`; `r = 1` is ELU. The root branch is
    evaluated on `max(x, 0)` and the exponential on `min(x, 0)`, so neither can be NaN
    (negative base) or overflow on the side where it is not used. For `r^2 x > 2^24` the root
    branch is computed as `exp((log(r^2) + log(x)) / r)`, so `r^2 x` never overflows: the
    result is finite for every finite `x` and `r >= 1` (`eru(3e38, r=10)` is 11161), and so are
    the gradients wherever their true value is a finite float (`d/dr` at `r` near 1 is about
    `-x log x`, which exceeds the float32 range for `x > FLT_MAX / 85`).
    Non-finite inputs: `eru(+inf) = +inf`, `eru(-inf) = -1/r`, `eru(nan) = nan`.

    Args:
        x: input tensor.
        r: radix, broadcastable to `x`, must be > 0.
    """
    out_dtype, x, (r,) = _prepare(x, r)
    positive = x >= 0
    xp = ops.where(positive, x, 0.0)
    xn = ops.where(positive, 0.0, x)
    # Both branches are exponentials: (r^2 x + 1)^(1/r) = exp(log1p(r^2 x) / r). One exp of
    # the selected exponent serves both, and each exponent is finite on the side not taken.
    exponent = ops.where(positive, _log1p_r2(xp, r) / r, r * xn)
    y = ops.exp(exponent) - 1.0 / r
    return _finish(y, out_dtype)


def oru(x, r):
    """Odd root unit, the "O_rRU" of Bhumbra's BRU family (SPEC section 4.1).

    `oru(x; r) = sign(x) * ((r^2 |x| + 1)^(1/r) - 1)`

    Odd, slope `r` at 0, unbounded and sub-linear for `r > 1`; `r = 1` is the identity.
    Like `eru`, the root is computed through `log(r^2) + log|x|` for `r^2 |x| > 2^24`, so the
    result and its gradients are finite for every finite `x` and `r >= 1`. Non-finite inputs:
    `oru(+-inf) = +-inf`, `oru(nan) = nan`.

    Args:
        x: input tensor.
        r: radix, broadcastable to `x`, must be > 0.
    """
    out_dtype, x, (r,) = _prepare(x, r)
    positive = x >= 0
    a = ops.where(positive, x, -x)
    g = ops.expm1(_log1p_r2(a, r) / r)
    return _finish(ops.where(positive, g, -g), out_dtype)


def _sum_to_shape(grad, shape):
    """Reduce a broadcast gradient back to the shape of the parameter it belongs to."""
    shape = tuple(shape)
    extra = len(grad.shape) - len(shape)
    if extra > 0:
        grad = ops.sum(grad, axis=tuple(range(extra)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and grad.shape[i] != 1)
    if axes:
        grad = ops.sum(grad, axis=axes, keepdims=True)
    return ops.reshape(grad, shape)


def gamma_custom_gradient(x, n, s):
    """`gamma` with a hand-written backward pass (TensorFlow and JAX backends only).

    Same values as `gamma`. The backward pass uses the closed forms of SPEC section 1.1,
    `dγ/dx = (1-s) σ + s n σ(1-σ)`, `dγ/dn = (1-s)/n (x σ - softplus_n) + s x σ(1-σ)`,
    `dγ/ds = σ - softplus_n`, from values of the forward pass kept as residuals (the backward
    pass needs no transcendental function), with `σ' = e t^2` and `x σ - softplus_n =
    -(|x| e t + log1p(e)/n)` written without cancellation. Gradients agree with
    autodiff of `gamma` (`tests/test_ops.py`). `benchmarks/activation_overhead.py` compares it
    with the autodiff version (`gamma`), which is the default.
    """
    out_dtype, x, (n, s) = _prepare(x, n, s)
    n_shape, s_shape = tuple(n.shape), tuple(s.shape)

    @ops.custom_gradient
    def _gamma(x, n, s):
        sig, softplus_n, dsig, tail = _gamma_terms(x, n)
        y = (1.0 - s) * softplus_n + s * sig

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            dx = (1.0 - s) * sig + s * n * dsig
            dn = s * x * dsig - (1.0 - s) / n * tail
            ds = sig - softplus_n
            return (
                upstream * dx,
                _sum_to_shape(upstream * dn, n_shape),
                _sum_to_shape(upstream * ds, s_shape),
            )

        return y, grad

    return _finish(_gamma(x, n, s), out_dtype)


def _trained_gamma(x, n, s):
    """`gamma` as the layers train it: the hand-written backward pass
    (`gamma_custom_gradient`) on TensorFlow and JAX, where it measured faster, autodiff on
    torch. Same values either way."""
    import keras

    if keras.backend.backend() in ("tensorflow", "jax"):
        return gamma_custom_gradient(x, n, s)
    return gamma(x, n, s)
