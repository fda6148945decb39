"""Transformer feed-forward blocks by kind, and their sizing to a parameter budget.

Kinds (`KINDS`): `"relu"`, `"gelu"` (plain `FeedForward`), `"reglu"`, `"geglu"`, `"swiglu"`
(gated `FeedForward`, Shazeer 2020) and `"two_arg"` (`TwoArgFeedForward`, with `groups`).
For model width d, output width d_out (= d by default), hidden width H and `use_bias=True`:

    plain:    H (d + 1 + d_out) + d_out
    gated:    H (2 d + 2 + d_out) + d_out
    two_arg:  H (arity d + arity + d_out) + d_out + groups |g|     (|g| counted unless shared)

`|g|` is one inner net's weights (`keras_bioact.nin.inner_param_count`, 4,417 for the
default 2 -> 64 -> 64 -> 1). `feed_forward_hidden` inverts these: the H whose block is
closest to a parameter budget (a multiple of `groups` for `two_arg`). Width 64 with a plain
hidden width of 256 (ratio 4):

>>> feed_forward_params("gelu", 64, 256)
33088
>>> feed_forward_hidden("swiglu", 64, 33088)
170
>>> feed_forward_hidden("two_arg", 64, 33088)
147
>>> feed_forward_hidden("two_arg", 64, 33088, groups=4)
80
"""

from keras_bioact.nin import inner_param_count

__all__ = ["GATED", "KINDS", "PLAIN", "feed_forward", "feed_forward_hidden", "feed_forward_params"]

PLAIN = {"relu": "relu", "gelu": "gelu"}
GATED = {"reglu": "relu", "geglu": "gelu", "swiglu": "silu"}
KINDS = (*PLAIN, *GATED, "two_arg")


def _kind(kind, fn):
    if kind not in KINDS:
        raise ValueError(f"{fn}: `kind` must be one of {list(KINDS)}, got {kind!r}.")
    return kind


def _positive(value, arg, fn, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{fn}: `{arg}` must be a positive int, got {value!r}.")
    return value


def feed_forward(kind, hidden, **kwargs):
    """The feed-forward block of `kind` (see `KINDS`) with hidden width `hidden`.

    `kwargs` go to the layer: `FeedForward` for the plain and gated kinds (its `activation`
    and `gated` are set by the kind), `TwoArgFeedForward` for `"two_arg"` (`groups`, `inner`,
    `arity`, ...).
    """
    from keras_bioact.layers import FeedForward, TwoArgFeedForward

    _kind(kind, "feed_forward")
    if kind == "two_arg":
        return TwoArgFeedForward(hidden, **kwargs)
    for key in ("activation", "gated"):
        if key in kwargs:
            raise ValueError(f"feed_forward: `{key}` is set by `kind`={kind!r}; use FeedForward directly.")
    if kind in PLAIN:
        return FeedForward(hidden, activation=PLAIN[kind], gated=False, **kwargs)
    return FeedForward(hidden, activation=GATED[kind], gated=True, **kwargs)


def _per_hidden(kind, width, output_dim, arity, use_bias):
    """Weights per hidden unit, and those that do not depend on the hidden width (g aside)."""
    inputs = {"two_arg": arity}.get(kind, 2 if kind in GATED else 1)
    return inputs * width + (inputs if use_bias else 0) + output_dim, (output_dim if use_bias else 0)


def feed_forward_params(
    kind,
    width,
    hidden,
    output_dim=None,
    groups=1,
    arity=2,
    inner_hidden=(64, 64),
    use_bias=True,
    count_inner=True,
):
    """Number of weights of the `kind` block mapping `width` to `output_dim` (default `width`)
    with hidden width `hidden` (the formulas of the module docstring). For `"two_arg"`,
    `groups` inner nets of shape `(arity, *inner_hidden, 1)` are counted unless
    `count_inner=False` (a g shared with another block, counted there)."""
    fn = "feed_forward_params"
    _kind(kind, fn)
    width = _positive(width, "width", fn)
    hidden = _positive(hidden, "hidden", fn)
    output_dim = _positive(output_dim, "output_dim", fn, allow_none=True) or width
    per, fixed = _per_hidden(kind, width, output_dim, arity, use_bias)
    total = hidden * per + fixed
    if kind == "two_arg" and count_inner:
        total += _positive(groups, "groups", fn) * inner_param_count(arity, tuple(inner_hidden))
    return total


def feed_forward_hidden(
    kind,
    width,
    params,
    output_dim=None,
    groups=1,
    arity=2,
    inner_hidden=(64, 64),
    use_bias=True,
    count_inner=True,
    tolerance=0.02,
):
    """The hidden width whose `kind` block has the parameter count closest to `params`.

    Args:
        kind: one of `KINDS`.
        width: model (input) width d, positive int.
        params: target number of weights, positive int (e.g. `feed_forward_params("gelu",
            width, 4 * width)` for a ratio-4 plain block).
        output_dim, groups, arity, inner_hidden, use_bias, count_inner: the block, as in
            `feed_forward_params`. For `"two_arg"` the width is a multiple of `groups`.
        tolerance: largest accepted relative mismatch `|count - params| / params`, or None to
            accept the closest width whatever its mismatch. Default 0.02 (2 %).

    Returns:
        The hidden width, a positive int.

    Raises:
        ValueError: for bad arguments, or when the closest width misses `tolerance` (e.g. when
            the inner nets alone exceed the budget).
    """
    fn = "feed_forward_hidden"
    _kind(kind, fn)
    params = _positive(params, "params", fn)
    step = _positive(groups, "groups", fn) if kind == "two_arg" else 1

    block = dict(output_dim=output_dim, groups=groups, arity=arity, inner_hidden=inner_hidden)

    def count(h):
        return feed_forward_params(kind, width, h, use_bias=use_bias, count_inner=count_inner, **block)

    per = count(2 * step) - count(step)
    guess = max(step, step * round((params - count(step)) / per + 1))
    best = min((max(step, guess + d * step) for d in (-1, 0, 1)), key=lambda h: abs(count(h) - params))
    mismatch = abs(count(best) - params) / params
    if tolerance is not None and mismatch > tolerance:
        raise ValueError(
            f"{fn}: the closest `{kind}` block (hidden={best}) has {count(best)} weights, {mismatch:.2%} "
            f"away from params={params}; raise `tolerance` (now {tolerance}) or `params`."
        )
    return best
