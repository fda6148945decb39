"""Functional forms of the keras-bioact activations, written with `keras.ops` only.

For all finite inputs and every legal parameter value (docs/reliability.md, Numerics), every op and its
gradient with respect to every input is exact to round-off wherever the true value is a finite
float of the dtype it is returned in, and never NaN: branches are masked *before* they are
evaluated, so no unused branch of a `where` ever produces Inf or NaN, and no product of a
factor that overflows with one that underflows is formed. Where a true value exceeds the
dtype's range, `gamma` returns +-inf (only possible for `s` outside [0, 1] with `|x|` near the
largest float, or for half-precision outputs), while `eru` and `oru` saturate at the largest
finite value (they exceed the range at moderate inputs when `r < 1`).
Half-precision inputs (float16, bfloat16) are computed in float32 and cast back, so
`n * x` cannot overflow where the result itself is representable.
`tests/test_ops.py::test_*_numerics_grid` check all of this on a grid of inputs up to the
float32 maximum and parameters across their legal range, in float32, bfloat16 and float16.
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
    """Gamma activation of Geadah et al. (Geadah et al. 2020, arXiv:2006.12253).

    `gamma(x; n, s) = (1 - s) * softplus(n x) / n + s * sigmoid(n x)`

    `n > 0` is the neuronal gain and `s` the degree of saturation (`s = 0`: softplus with
    gain `n`, ReLU as `n -> inf`; `s = 1`: logistic `sigmoid(n x)`). `n` and `s` broadcast
    against `x` (e.g. shape `(units,)` for one pair per neuron).

    The sigmoid and the softplus share one `exp` (see `_gamma_parts`). The value and the
    gradients are exact to round-off wherever their true value is a finite float of the
    returned dtype; the value is +-inf only where `|1 - s| softplus_n(x)` exceeds the range
    (`s` outside [0, 1] with `|x|` near the largest float, or half-precision outputs).

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

# Largest finite value of each float dtype: BRU values and derivatives saturate there.
_MAX = {
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
    "float32": 3.4028234663852886e38,
    "float64": 1.7976931348623157e308,
}


def _log1p_r2(a, r):
    """`log1p(r^2 a)` for `a >= 0`, finite for every finite `a` (no `r^2 a` overflow)."""
    rr = r * r
    big = a * (1.0 / _LOG_SPLIT) > 1.0 / rr
    small = ops.log1p(rr * ops.where(big, 0.0, a))
    large = 2.0 * ops.log(r) + ops.log(ops.where(big, a, 1.0))
    return ops.where(big, large, small)


def _signed_exp(c, log_scale):
    """`c exp(log_scale)` as `sign(c) exp(log|c| + log_scale)`: finite (or +-inf) where the
    product is, even where `exp(log_scale)` alone overflows; 0 where `c = 0`."""
    return ops.sign(c) * ops.exp(ops.log(ops.abs(c)) + log_scale)


def _bru(x, r, odd):
    """`eru` (`odd=False`) or `oru`, with a hand-written backward pass on every backend.

    With `a = |x|` (ORU) or `max(x, 0)` (ERU), `L = log1p(r^2 a)` and `root = exp(L / r)`:
    `d root/da = r exp(L (1 - r) / r)` and `d root/dr = root (2 q - L) / r^2` with
    `q = r^2 a / (1 + r^2 a) = -expm1(-L)`, each evaluated as one `exp` of a sum of logs, so a
    derivative is finite wherever its true value is, also where `root` itself overflows.
    Values and derivatives saturate at the largest finite value of the dtype they are returned
    in (the value and `d/dx`: `x`'s dtype; `d/dr`: `r`'s) instead of overflowing to inf; the
    derivatives are those of the unsaturated function.
    """
    r_dtype = _compute_dtype(r)[0]
    out_dtype, x, (r,) = _prepare(x, r)
    y_max, r_max = _MAX.get(out_dtype, _MAX["float32"]), _MAX.get(r_dtype, _MAX["float32"])

    def _forward(x, r):
        positive = x >= 0
        # The root branch sees max(x, 0) (ERU) or |x| (ORU), the exponential min(x, 0): each is
        # finite on the side where it is not used.
        a = ops.where(positive, x, -x if odd else 0.0)
        log1p_r2a = _log1p_r2(a, r)
        log_root = log1p_r2a / r
        if odd:
            y = ops.minimum(ops.expm1(log_root), y_max)
            y = ops.where(positive, y, -y)
        else:
            xn = ops.where(positive, 0.0, x)
            y = ops.minimum(ops.exp(ops.where(positive, log_root, r * xn)) - 1.0 / r, y_max)
        return y, positive, log1p_r2a, log_root, (None if odd else xn)

    if _in_torch_function_transform():
        # torch.func (vmap, grad) cannot run the autograd.Function behind ops.custom_gradient:
        # the same forward pass, differentiated by autodiff (equal where both are finite).
        return _finish(_forward(x, r)[0], out_dtype)

    @ops.custom_gradient
    def _f(x, r):
        y, positive, log1p_r2a, log_root, xn = _forward(x, r)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            log_r = ops.log(r)
            d_root_da = ops.exp(log1p_r2a * ((1.0 - r) / r) + log_r)
            d_root_dr = _signed_exp(-2.0 * ops.expm1(-log1p_r2a) - log1p_r2a, log_root - 2.0 * log_r)
            if odd:
                dx, dr = d_root_da, ops.where(positive, d_root_dr, -d_root_dr)
            else:
                e = ops.exp(r * xn)
                dx = ops.where(positive, d_root_da, r * e)
                dr = ops.where(positive, d_root_dr, xn * e) + 1.0 / (r * r)
            dx = ops.minimum(dx, y_max)
            dr = ops.clip(dr, -r_max, r_max)
            return _sum_to_shape(upstream * dx, x), _sum_to_shape(upstream * dr, r)

        return y, grad

    return _finish(_f(x, r), out_dtype)


def _in_torch_function_transform():
    """Whether this runs inside a `torch.func` transform (vmap, grad, ...) on the torch backend."""
    import keras

    if keras.backend.backend() != "torch":
        return False
    from torch._C import _functorch

    return _functorch.maybe_current_level() is not None


def eru(x, r):
    """Exponential root unit, the "E_rRU" of Bhumbra's BRU family (Bhumbra 2018, arXiv:1804.11237).

    `eru(x; r) = (r^2 x + 1)^(1/r) - 1/r` for `x >= 0` and `exp(r x) - 1/r` for `x < 0`.

    C1 at 0 with slope `r`; bounded below by `-1/r`; `r = 1` is ELU. The root branch is
    evaluated on `max(x, 0)` and the exponential on `min(x, 0)`, so neither can be NaN
    (negative base) or overflow on the side where it is not used. For `r^2 x > 2^24` the root
    branch is computed as `exp((log(r^2) + log(x)) / r)`, so `r^2 x` never overflows
    (`eru(3e38, r=10)` is 11161).

    Every finite `x` and `r > 0` give a finite value and finite gradients: each is exact to
    round-off wherever its true value is a finite float of the dtype it is returned in, and
    saturates at the largest finite float where it is not (the value for `r < 1` and large
    `x`, e.g. `r = 0.5, x > 7e19` in float32, `x > 1020` in float16; `d/dr` near `r = 1` is
    about `-x log x`, past the float32 range for `x > 4e36`). The gradients are those of the
    unsaturated formula (`d/dx` at `r = 0.9, x = 1e36` is 8792 although the value saturates).
    They come from a hand-written backward pass (`_bru`). Non-finite inputs: `eru(+inf)` is
    the largest finite float, `eru(-inf) = -1/r`, `eru(nan) = nan`.

    Args:
        x: input tensor.
        r: radix, broadcastable to `x`, must be > 0.
    """
    return _bru(x, r, odd=False)


def oru(x, r):
    """Odd root unit, the "O_rRU" of Bhumbra's BRU family (Bhumbra 2018, arXiv:1804.11237).

    `oru(x; r) = sign(x) * ((r^2 |x| + 1)^(1/r) - 1)`

    Odd, slope `r` at 0, unbounded and sub-linear for `r > 1`; `r = 1` is the identity.
    Like `eru`, the root is computed through `log(r^2) + log|x|` for `r^2 |x| > 2^24`, and the
    value and gradients are finite for every finite `x` and `r > 0`: exact where the true
    value is a finite float of the returned dtype, saturated at +-(largest finite float) where
    it is not. Non-finite inputs: `oru(+-inf)` is +-(largest finite float), `oru(nan) = nan`.

    Args:
        x: input tensor.
        r: radix, broadcastable to `x`, must be > 0.
    """
    return _bru(x, r, odd=True)


def _sum_to_shape(grad, like):
    """Reduce `grad`, the gradient of `like` broadcast to `grad`'s shape, to `like`'s shape.

    Sums the leading axes `like` lacks and every axis where `like`'s static size is 1 and
    `grad`'s is not (unknown included). An axis of unknown static size (a batch axis while
    TensorFlow traces a graph) is not summed: a tensor is broadcast along an axis only where
    its size is 1, which is known when the tensor is traced.
    """
    extra = len(grad.shape) - len(like.shape)
    if extra > 0:
        grad = ops.sum(grad, axis=tuple(range(extra)))
    axes = tuple(i for i, (d, g) in enumerate(zip(like.shape, grad.shape, strict=True)) if d == 1 and g != 1)
    if axes:
        grad = ops.sum(grad, axis=axes, keepdims=True)
    return grad


def gamma_custom_gradient(x, n, s):
    """`gamma` with a hand-written backward pass (TensorFlow and JAX backends only).

    Same values as `gamma`. The backward pass uses the closed forms of Geadah et al. 2020's gamma,
    `dγ/dx = (1-s) σ + s n σ(1-σ)`, `dγ/dn = (1-s)/n (x σ - softplus_n) + s x σ(1-σ)`,
    `dγ/ds = σ - softplus_n`, from values of the forward pass kept as residuals (the backward
    pass needs no transcendental function), with `σ' = e t^2` and `x σ - softplus_n =
    -(|x| e t + log1p(e)/n)` written without cancellation. Gradients agree with
    autodiff of `gamma` (`tests/test_ops.py`). `benchmarks/activation_overhead.py` compares it
    with the autodiff version (`gamma`), which is the default.
    """
    out_dtype, x, (n, s) = _prepare(x, n, s)

    @ops.custom_gradient
    def _gamma(x, n, s):
        sig, softplus_n, dsig, tail = _gamma_terms(x, n)
        y = (1.0 - s) * softplus_n + s * sig

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            # `n dsig` and `x dsig` first: both are finite (`n dsig <= n / 4`, `|x dsig| <
            # 0.23 / n`), while `s n` or `s x` alone can overflow where dsig = 0 (inf * 0 = NaN).
            dx = (1.0 - s) * sig + s * (n * dsig)
            dn = s * (x * dsig) - (1.0 - s) / n * tail
            ds = sig - softplus_n
            return (
                _sum_to_shape(upstream * dx, x),
                _sum_to_shape(upstream * dn, n),
                _sum_to_shape(upstream * ds, s),
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
