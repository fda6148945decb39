"""Float64 NumPy references of the formulas keras-bioact computes: one copy of each.

The families' `reference` (`keras_bioact.families`), the conversion's fits and deviations
(`keras_bioact.conversion`) and the inspector's comparison curves (`keras_bioact.callbacks`)
all evaluate these. Every function takes array-likes, broadcasts its arguments and returns
float64; none overflows for finite inputs (sigmoids through `exp(-|x|)`, softplus through
`logaddexp`). Imports NumPy only.
"""

import math

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "COMPOSED_PRIMITIVES",
    "MIXTURE_CANDIDATES",
    "activation",
    "bru",
    "composed",
    "eru",
    "gamma",
    "mixture",
    "oru",
    "sigmoid",
    "softmax",
    "softplus",
    "swish",
]

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _f64(*values):
    return tuple(np.asarray(v, dtype="float64") for v in values)


def sigmoid(x):
    """`1 / (1 + exp(-x))`, through `e = exp(-|x|)` (full relative precision for x << 0)."""
    x = np.asarray(x, dtype="float64")
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def softplus(x):
    """`log(1 + exp(x))`."""
    return np.logaddexp(0.0, np.asarray(x, dtype="float64"))


def gamma(x, n, s):
    """Gamma activation (Geadah et al.): `(1 - s) softplus(n x) / n + s sigmoid(n x)`."""
    x, n, s = _f64(x, n, s)
    z = n * x
    return (1.0 - s) * softplus(z) / n + s * sigmoid(z)


def eru(x, r):
    """Exponential root unit of radix `r` (Bhumbra): `(r^2 x + 1)^(1/r) - 1/r` for `x >= 0`,
    `exp(r x) - 1/r` for `x < 0`."""
    x, r = _f64(x, r)
    root = (r * r * np.maximum(x, 0.0) + 1.0) ** (1.0 / r)
    return np.where(x >= 0, root, np.exp(r * np.minimum(x, 0.0))) - 1.0 / r


def oru(x, r):
    """Odd root unit of radix `r` (Bhumbra): `sign(x) ((r^2 |x| + 1)^(1/r) - 1)`."""
    x, r = _f64(x, r)
    return np.sign(x) * ((r * r * np.abs(x) + 1.0) ** (1.0 / r) - 1.0)


def bru(x, r, form="eru"):
    """Bionodal root unit: `eru(x, r)` or `oru(x, r)` by `form`."""
    if form == "eru":
        return eru(x, r)
    if form == "oru":
        return oru(x, r)
    raise ValueError(f"bru reference: `form` must be one of ('eru', 'oru'), got {form!r}.")


def swish(x, beta=1.0):
    """Swish (Ramachandran et al.): `x sigmoid(beta x)`; `beta = 1` is SiLU."""
    x, beta = _f64(x, beta)
    return x * sigmoid(beta * x)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


# The Keras built-ins (`keras.activations.<name>`, default arguments): `f(x, params)` on float64 `x`.
_ACTIVATIONS = {
    "relu": lambda x, p: np.clip(x, 0.0, p.get("max_value", np.inf)),
    "relu6": lambda x, p: _relu6(x),
    "leaky_relu": lambda x, p: np.where(x > 0, x, p.get("negative_slope", 0.2) * x),
    "elu": lambda x, p: _elu(x),
    "celu": lambda x, p: _elu(x),
    "selu": lambda x, p: SELU_SCALE * _elu(x, SELU_ALPHA),
    "sigmoid": lambda x, p: sigmoid(x),
    "softplus": lambda x, p: softplus(x),
    "tanh": lambda x, p: np.tanh(x),
    "silu": lambda x, p: swish(x),
    "gelu": lambda x, p: 0.5 * x * (1.0 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2.0))),
    "mish": lambda x, p: x * np.tanh(softplus(x)),
    "hard_sigmoid": lambda x, p: _relu6(x + 3.0) / 6.0,
    "hard_silu": lambda x, p: x * _relu6(x + 3.0) / 6.0,
    "hard_tanh": lambda x, p: np.clip(x, -1.0, 1.0),
    "sparse_sigmoid": lambda x, p: np.clip(0.5 * (x + 1.0), 0.0, 1.0),
    "log_sigmoid": lambda x, p: -softplus(-x),
    "tanh_shrink": lambda x, p: x - np.tanh(x),
    "softsign": lambda x, p: x / (1.0 + np.abs(x)),
    "squareplus": lambda x, p: 0.5 * (x + np.sqrt(x * x + 4.0)),
    "sparse_plus": lambda x, p: np.where(x <= -1, 0.0, np.where(x >= 1, x, 0.25 * (x + 1.0) ** 2)),
}
ACTIVATIONS = tuple(_ACTIVATIONS)
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def activation(name, **params):
    """The Keras built-in activation `name` (one of `ACTIVATIONS`, or an alias in `ALIASES`) as
    a float64 function of `x`. `params`: `max_value` of `relu`, `negative_slope` of `leaky_relu`
    (default 0.2, Keras' default)."""
    try:
        fn = _ACTIVATIONS[ALIASES.get(name, name)]
    except (KeyError, TypeError):
        raise ValueError(f"reference.activation: `name` must be one of {ACTIVATIONS}, got {name!r}") from None
    return lambda x: fn(np.asarray(x, dtype="float64"), params)


# ------------------------------------------------------------------ composed activations
# (keras_bioact.expressions: the grammar; keras_bioact.layers.ComposedActivation: the layer)

# The input `x` and the output of every primitive not bounded by construction are clipped to
# [-COMPOSED_VALUE_BOUND, COMPOSED_VALUE_BOUND]; `exp` sees at most COMPOSED_EXP_MAX, `square`
# an input clipped to [-COMPOSED_SQUARE_MAX, COMPOSED_SQUARE_MAX].
COMPOSED_VALUE_BOUND = 1e6
COMPOSED_EXP_MAX = 10.0
COMPOSED_SQUARE_MAX = 1000.0
_ERF = np.vectorize(math.erf, otypes=[float])


# name -> (f(x, *params) for unary, f(u, v, *params) for binary; names of the learnable
# scalars, in that order; whether the output is bounded by construction)
COMPOSED_PRIMITIVES = {
    "identity": (lambda x: x, (), False),
    "neg": (lambda x: -x, (), False),
    "abs": (np.abs, (), False),
    "relu": (lambda x: np.maximum(x, 0.0), (), False),
    "leaky": (lambda x, a: np.where(x >= 0, x, a * x), ("a",), False),
    "elu": (_elu, (), False),
    "selu": (lambda x: SELU_SCALE * _elu(x, SELU_ALPHA), (), False),
    "gelu": (lambda x: 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0))), (), False),
    "silu": (lambda x: swish(x), (), False),
    "swish": (lambda x, beta: swish(x, beta), ("beta",), False),
    "mish": (lambda x: x * np.tanh(softplus(x)), (), False),
    "softplus": (softplus, (), False),
    "sigmoid": (sigmoid, (), True),
    "tanh": (np.tanh, (), True),
    "erf": (_ERF, (), True),
    "sin": (np.sin, (), True),
    "cos": (np.cos, (), True),
    "softsign": (lambda x: x / (1.0 + np.abs(x)), (), True),
    "square": (lambda x: np.clip(x, -COMPOSED_SQUARE_MAX, COMPOSED_SQUARE_MAX) ** 2, (), True),
    "exp": (lambda x: np.exp(np.minimum(x, COMPOSED_EXP_MAX)), (), True),
    "log1p_abs": (lambda x: np.log1p(np.abs(x)), (), False),
    "gamma": (lambda x, n, s: gamma(x, n, s), ("n", "s"), False),
    "eru": (lambda x, r: eru(x, r), ("r",), False),
    "oru": (lambda x, r: oru(x, r), ("r",), False),
    "scale": (lambda x, a: a * x, ("a",), False),
    "shift": (lambda x, b: x + b, ("b",), False),
    "add": (lambda u, v: u + v, (), False),
    "sub": (lambda u, v: u - v, (), False),
    "mul": (lambda u, v: u * v, (), False),
    "max": (np.maximum, (), False),
    "min": (np.minimum, (), False),
    "wsum": (lambda u, v, w: w * u + (1.0 - w) * v, ("w",), False),
}


def composed(tree, x, params):
    """A composed activation in float64: `tree` is nested tuples `(op, *args)` with the leaf
    `"x"` (`keras_bioact.expressions.Node.to_tuple()`), `params` maps each learnable scalar's
    weight name `f"{op}{i}_{name}"` (`i`: the call's pre-order index) to a value broadcasting
    against `x`. The value bounds are those of the layer (see `COMPOSED_VALUE_BOUND`)."""
    bound = COMPOSED_VALUE_BOUND
    x = np.clip(np.asarray(x, dtype="float64"), -bound, bound)
    counter = [0]

    def ev(node):
        if node == "x":
            return x
        op, *args = node
        index = counter[0]
        counter[0] += 1
        fn, names, bounded = COMPOSED_PRIMITIVES[op]
        values = [ev(a) for a in args]
        scalars = [np.asarray(params[f"{op}{index}_{name}"], dtype="float64") for name in names]
        y = fn(*values, *scalars)
        return y if bounded else np.clip(y, -bound, bound)

    return ev(tree)
# The candidates of `keras_bioact.layers.MixtureActivation` (`keras_bioact.mixture_candidates`),
# with the same fixed parameters: gamma n = 5, s = 0.5; ERU/ORU r = 2.
MIXTURE_CANDIDATES = {
    "identity": lambda x: np.asarray(x, dtype="float64"),
    **{
        name: activation(name)
        for name in (
            "relu",
            "gelu",
            "silu",
            "elu",
            "tanh",
            "sigmoid",
            "softplus",
            "mish",
            "leaky_relu",
            "softsign",
        )
    },
    "gamma": lambda x: gamma(x, 5.0, 0.5),
    "eru": lambda x: eru(x, 2.0),
    "oru": lambda x: oru(x, 2.0),
}


def softmax(logits, mask=None, temperature=1.0):
    """`softmax(logits / temperature)` over the last axis, entries with `mask == 0` set to 0."""
    z = np.asarray(logits, dtype="float64") / temperature
    keep = np.ones_like(z, dtype=bool) if mask is None else np.asarray(mask) > 0
    z = np.where(keep, z, -np.inf)
    e = np.where(keep, np.exp(z - np.max(z, axis=-1, keepdims=True)), 0.0)
    return e / np.sum(e, axis=-1, keepdims=True)


def mixture(x, candidates, logits, mask=None, temperature=1.0):
    """The mixture activation: `sum_i softmax(logits / temperature)_i f_i(x)` over the
    `candidates` (names of `MIXTURE_CANDIDATES`), masked candidates weighted 0."""
    x = np.asarray(x, dtype="float64")
    weights = softmax(logits, mask, temperature)
    return sum(w * MIXTURE_CANDIDATES[name](x) for w, name in zip(weights, candidates, strict=True))
