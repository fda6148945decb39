"""How `keras_bioact.convert` represents each built-in activation (private helper module).

A `Spec` names an activation (with its parameters, e.g. the slope of a leaky ReLU); a
`Recipe` says which learnable unit starts where, and the fixed arithmetic around it (see
`keras_bioact.layers.ActivationAdapter`). Reference formulas are float64 NumPy, used for the
fits and for the deviations in the report.
"""

import dataclasses
import functools
import math

import numpy as np

SUPPORTED_ACTIVATIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "sigmoid",
    "softplus",
    "tanh",
    "silu",
    "gelu",
    "mish",
    "hard_sigmoid",
    "hard_silu",
    "hard_tanh",
    "sparse_sigmoid",
    "log_sigmoid",
    "tanh_shrink",
    "softsign",
    "squareplus",
    "sparse_plus",
)
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@dataclasses.dataclass(frozen=True)
class Spec:
    """An activation: canonical name and `((parameter, value), ...)`."""

    name: str
    params: tuple = ()

    @property
    def label(self):
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v:g}" for k, v in self.params) + ")"

    def get(self, key, default=None):
        return dict(self.params).get(key, default)


def spec_from_function_name(name):
    """`Spec` of a built-in Keras activation function called `name`, or None."""
    name = ALIASES.get(name, name)
    if name == "leaky_relu":
        return Spec("leaky_relu", (("negative_slope", 0.2),))
    return Spec(name) if name in SUPPORTED_ACTIVATIONS else None


def _erf(x):
    return np.vectorize(math.erf, otypes=[float])(x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def reference(spec):
    """Float64 NumPy version of the activation `spec`."""
    name, p = spec.name, dict(spec.params)
    relu6 = lambda x: np.clip(x, 0.0, 6.0)
    table = {
        "relu": lambda x: np.clip(x, 0.0, p.get("max_value", np.inf)),
        "relu6": relu6,
        "leaky_relu": lambda x: np.where(x > 0, x, p.get("negative_slope", 0.2) * x),
        "elu": _elu,
        "celu": _elu,
        "selu": lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
        "sigmoid": _sigmoid,
        "softplus": _softplus,
        "tanh": np.tanh,
        "silu": lambda x: x * _sigmoid(x),
        "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
        "mish": lambda x: x * np.tanh(_softplus(x)),
        "hard_sigmoid": lambda x: relu6(x + 3.0) / 6.0,
        "hard_silu": lambda x: x * relu6(x + 3.0) / 6.0,
        "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
        "sparse_sigmoid": lambda x: np.clip(0.5 * (x + 1.0), 0.0, 1.0),
        "log_sigmoid": lambda x: -_softplus(-x),
        "tanh_shrink": lambda x: x - np.tanh(x),
        "softsign": lambda x: x / (1.0 + np.abs(x)),
        "squareplus": lambda x: 0.5 * (x + np.sqrt(x * x + 4.0)),
        "sparse_plus": lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, 0.25 * (x + 1.0) ** 2)),
    }
    return table[name]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """`y = slope x + [x if gate] * (scale * min(unit(pre_scale x + pre_shift), max_value) + offset)`.

    `unit` is `"relu"` (gamma with `s = 0` and a gain `n` from `relu_gain` or calibration),
    `"fixed"` (gamma with the given `n, s`; exact) or `"fit"` (gamma with a minimax-fitted `n, s`).
    """

    unit: str
    n: float | None = None
    s: float | None = None
    pre_scale: float = 1.0
    pre_shift: float = 0.0
    max_value: float | None = None
    scale: float = 1.0
    offset: float = 0.0
    gate: bool = False
    slope: float = 0.0

    @property
    def affine(self):
        return None if (self.scale, self.offset) == (1.0, 0.0) else (self.scale, self.offset)

    @property
    def needs_adapter(self):
        """True if more than a `Rescaling` after the unit is needed."""
        return (
            self.pre_scale != 1.0
            or self.pre_shift != 0.0
            or self.max_value is not None
            or self.gate
            or self.slope != 0.0
        )

    def describe(self, unit="gamma"):
        """The composition as a formula string, e.g. `"x * gamma(x)"`, or None for a bare unit."""
        if not self.needs_adapter and self.affine is None:
            return None
        arg = "x"
        if self.pre_scale != 1.0:
            arg = f"{self.pre_scale:g}*x"
        if self.pre_shift != 0.0:
            arg = f"{arg}{self.pre_shift:+g}"
        z = f"{unit}({arg})"
        if self.max_value is not None:
            z = f"min({z}, {self.max_value:g})"
        if self.scale != 1.0:
            z = f"{self.scale:.4g}*{z}"
        if self.offset != 0.0:
            z = f"{z}{self.offset:+.4g}"
        if self.gate:
            z = f"x*({z})" if self.scale != 1.0 or self.offset != 0.0 else f"x*{z}"
        if self.slope != 0.0:
            z = f"{z} + {self.slope:g}*x"
        return z

    def compose(self, x, unit_fn):
        """NumPy: the composed activation for a unit function `unit_fn(z)` (broadcasting)."""
        u = unit_fn(self.pre_scale * x + self.pre_shift)
        if self.max_value is not None:
            u = np.minimum(u, self.max_value)
        z = self.scale * u + self.offset
        if self.gate:
            z = z * x
        return z + self.slope * x


def gamma_recipe(spec, affine):
    """The gamma-family recipe of `spec`; `affine=False` allows only a bare (fitted) gamma."""
    name = spec.name
    if name == "relu" and spec.get("max_value") is None:
        return Recipe("relu")
    if name == "softplus":
        return Recipe("fixed", 1.0, 0.0)
    if name == "sigmoid":
        return Recipe("fixed", 1.0, 1.0)
    if not affine:
        return Recipe("fit")
    table = {
        "relu": lambda: Recipe("relu", max_value=spec.get("max_value")),
        "relu6": lambda: Recipe("relu", max_value=6.0),
        "leaky_relu": lambda: Recipe(
            "relu", scale=1.0 - spec.get("negative_slope"), slope=spec.get("negative_slope")
        ),
        "tanh": lambda: Recipe("fixed", 2.0, 1.0, scale=2.0, offset=-1.0),
        "elu": lambda: Recipe("fit", scale=2.0, offset=-1.0),
        "celu": lambda: Recipe("fit", scale=2.0, offset=-1.0),
        # c gamma + d with d = -scale*alpha (x -> -inf) and c (1 - s) = scale, c s + d = 0 (x -> +inf)
        "selu": lambda: Recipe(
            "fit", scale=_SELU_SCALE * (1 + _SELU_ALPHA), offset=-_SELU_SCALE * _SELU_ALPHA
        ),
        "silu": lambda: Recipe("fixed", 1.0, 1.0, gate=True),
        "gelu": lambda: Recipe("fit", gate=True),
        "mish": lambda: Recipe("fit", gate=True),
        "hard_sigmoid": lambda: Recipe("relu", pre_shift=3.0, max_value=6.0, scale=1.0 / 6.0),
        "hard_silu": lambda: Recipe("relu", pre_shift=3.0, max_value=6.0, scale=1.0 / 6.0, gate=True),
        "hard_tanh": lambda: Recipe("relu", pre_shift=1.0, max_value=2.0, offset=-1.0),
        "sparse_sigmoid": lambda: Recipe("relu", pre_shift=1.0, max_value=2.0, scale=0.5),
        "log_sigmoid": lambda: Recipe("fixed", 1.0, 0.0, pre_scale=-1.0, scale=-1.0),
        "tanh_shrink": lambda: Recipe("fixed", 2.0, 1.0, scale=-2.0, offset=1.0, slope=1.0),
        "softsign": lambda: Recipe("fit", scale=2.0, offset=-1.0),
        "squareplus": lambda: Recipe("fit"),
        "sparse_plus": lambda: Recipe("fit"),
    }
    return table[name]()


# --------------------------------------------------------------------------------------------
# Unit formulas and fits
# --------------------------------------------------------------------------------------------


def np_gamma(x, n, s):
    z = n * x
    return (1 - s) * np.logaddexp(0.0, z) / n + s * _sigmoid(z)


def np_eru(x, r):
    root = (r * r * np.maximum(x, 0.0) + 1.0) ** (1.0 / r)
    return np.where(x >= 0, root, np.exp(r * np.minimum(x, 0.0))) - 1.0 / r


def np_oru(x, r):
    return np.sign(x) * ((r * r * np.abs(x) + 1.0) ** (1.0 / r) - 1.0)


@functools.lru_cache(maxsize=128)
def fit_gamma(spec, recipe, low, high, n_min, n_max):
    """Minimax fit of the gamma parameters `(n, s)` of `recipe` to `spec` on [low, high]."""
    x = np.linspace(low, high, 801)
    y = reference(spec)(x)

    def search(ns, ss):
        best = (math.inf, None, None)
        for n in ns:
            out = recipe.compose(x[None, :], lambda z, n=n: np_gamma(z, n, ss[:, None]))
            dev = np.abs(out - y).max(axis=1)
            i = int(dev.argmin())
            if dev[i] < best[0]:
                best = (float(dev[i]), float(n), float(ss[i]))
        return best

    dev, n, s = search(np.geomspace(n_min, n_max, 80), np.linspace(-0.5, 1.5, 81))
    dev, n, s = search(
        np.geomspace(max(n_min, n / 1.2), min(n_max, n * 1.2), 30), np.linspace(s - 0.05, s + 0.05, 41)
    )
    return {"n": n, "s": s}


@functools.lru_cache(maxsize=128)
def fit_bru(spec, low, high, r_min, forms):
    x = np.linspace(low, high, 801)
    y = reference(spec)(x)
    best = (math.inf, None, None)
    for form in forms:
        fn = np_eru if form == "eru" else np_oru
        for r in np.geomspace(r_min, max(8.0, 2 * r_min), 400):
            dev = float(np.abs(fn(x, r) - y).max())
            if dev < best[0]:
                best = (dev, form, float(r))
    return best[1], {"r": best[2]}
