"""How `keras_bioact.convert` represents each built-in activation (private helper module).

A `Spec` names an activation (with its parameters, e.g. the slope of a leaky ReLU); a
`Recipe` says which learnable unit starts where, and the fixed arithmetic around it (see
`keras_bioact.layers.ActivationAdapter`). The fits and the deviations in the report use the
float64 NumPy formulas of `keras_bioact.reference`.
"""

import dataclasses
import functools
import math

import numpy as np

from keras_bioact import reference

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
ALIASES = reference.ALIASES
# A gamma replacing a ReLU-like activation starts at this gain when it is not calibrated.
FALLBACK_RELU_GAIN = 20.0


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

    def numpy(self):
        """The activation as a float64 NumPy function (`keras_bioact.reference.activation`)."""
        return reference.activation(self.name, **dict(self.params))


def spec_from_function_name(name):
    """`Spec` of a built-in Keras activation function called `name`, or None."""
    name = ALIASES.get(name, name)
    if name == "leaky_relu":
        return Spec("leaky_relu", (("negative_slope", 0.2),))
    return Spec(name) if name in SUPPORTED_ACTIVATIONS else None


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
            "fit",
            scale=reference.SELU_SCALE * (1 + reference.SELU_ALPHA),
            offset=-reference.SELU_SCALE * reference.SELU_ALPHA,
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
# Fits
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=128)
def fit_gamma(spec, recipe, low, high, n_min, n_max):
    """Minimax fit of the gamma parameters `(n, s)` of `recipe` to `spec` on [low, high]."""
    x = np.linspace(low, high, 801)
    y = spec.numpy()(x)

    def search(ns, ss):
        best = (math.inf, None, None)
        for n in ns:
            out = recipe.compose(x[None, :], lambda z, n=n: reference.gamma(z, n, ss[:, None]))
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
    y = spec.numpy()(x)
    best = (math.inf, None, None)
    for form in forms:
        for r in np.geomspace(r_min, max(8.0, 2 * r_min), 400):
            dev = float(np.abs(reference.bru(x, r, form) - y).max())
            if dev < best[0]:
                best = (dev, form, float(r))
    return best[1], {"r": best[2]}
