"""Convert an existing Keras model to learnable keras-bioact activations.

`convert(model)` returns a NEW model in which the built-in Keras activations (see
`SUPPORTED_ACTIVATIONS`) are replaced by keras-bioact layers (`GammaActivation` or `BRU`),
whether they were given as the `activation=` argument of a `Dense`, `EinsumDense` or
convolution layer, or as activation layers (`keras.layers.Activation`, `ReLU` with or
without `max_value` / `negative_slope`, `LeakyReLU`, `ELU`). Every other weight is copied, so the
converted model computes (almost) the same function as the original until it is trained.
Sequential and functional models are supported, nested models (Sequential or functional, at
any depth) and functional graphs with operations on symbolic tensors (`x + y`,
`keras.ops.mean(x)`, as in ConvNeXt) included; subclassed models are not, since their
computation lives in Python code that cannot be rewritten.

`init="match"` starts each new activation at the one it replaces. Where a bare unit cannot
represent the activation, the unit is wrapped in fixed, non-trainable arithmetic
(`keras_bioact.layers.ActivationAdapter`, or a `keras.layers.Rescaling` for an affine map only);
only the unit's parameters are learned. Family `"gamma"` (deviation `max |new - old|` on
`[-5, 5]`; `n = 20` in the ReLU-like rows for comparison, calibrated by default (**)):

| original                    | gamma replacement                                   | deviation          |
|-----------------------------|-----------------------------------------------------|--------------------|
| relu                        | `gamma(x; n, 0)`                                    | `ln2 / n` at 0     |
| relu6, ReLU(max_value=m)    | `min(gamma(x; n, 0), 6)` (or `m`)                   | `ln2 / n`          |
| leaky_relu, LeakyReLU(a)    | `(1 - a) gamma(x; n, 0) + a x`                      | `(1 - a) ln2 / n`  |
| hard_sigmoid                | `min(gamma(x + 3; n, 0), 6) / 6`                    | `ln2 / (6 n)`      |
| hard_silu (hard_swish)      | `x * min(gamma(x + 3; n, 0), 6) / 6`                | `ln2 / (2 n)`      |
| hard_tanh                   | `min(gamma(x + 1; n, 0), 2) - 1`                    | `ln2 / n`          |
| sparse_sigmoid              | `min(gamma(x + 1; n, 0), 2) / 2`                    | `ln2 / (2 n)`      |
| softplus                    | `gamma(x; 1, 0)`                                    | exact              |
| sigmoid                     | `gamma(x; 1, 1)`                                    | exact              |
| silu (swish)                | `x * gamma(x; 1, 1)` (learnable Swish-beta, beta = n) | exact            |
| tanh                        | `2 gamma(x; 2, 1) - 1` (*)                          | exact              |
| log_sigmoid                 | `-gamma(-x; 1, 0)`                                  | exact              |
| tanh_shrink                 | `x - (2 gamma(x; 2, 1) - 1)`                        | exact              |
| elu, celu                   | `2 gamma(x; 1.36, 0.50) - 1` (*)                    | exact (***), 0.038 |
| selu                        | `2.809 gamma(x; 1.01, 0.61) - 1.758`                | exact (***), 0.16  |
| gelu                        | `x * gamma(x; 1.78, 1.0)`                           | exact (***), 0.014 |
| mish                        | `x * gamma(x; 1.25, 1.0)`                           | exact (***), 0.10  |
| softsign                    | `2 gamma(x; 0.82, 1.0) - 1`                         | exact (***), 0.14  |
| squareplus                  | `gamma(x; 0.62, -0.01)`                             | exact (***), 0.12  |
| sparse_plus                 | `gamma(x; 2.98, -0.00)`                             | exact (***), 0.020 |

Every other family converts through its convert rule, registered under the family's name
(`keras_bioact.conversion.rules.register_rule`); each replaces only the activations its rule
supports (learnable_swish: `silu`/`swish`, exact at `beta = 1`). Family `"bru"`
replaces each activation by the closest bare ERU/ORU (ELU and CELU: ERU with
`r = 1`, exact; ReLU and relu6 0.61, softplus 0.70, sigmoid ~0.94, tanh 0.19, silu 0.71, gelu
0.68, leaky_relu 0.34; no calibration, no correction).

(*) with `affine=True` (default). With `affine=False` no fixed arithmetic is added: the closest
plain gamma is used instead (deviation about 1 for tanh and ELU, whose negative values a gamma
with s in [0, 1] cannot reach).

(**) Exact start by default (`relu_gain=None`): the gain `n` of every ReLU-like gamma is
calibrated per parameter (per channel by default) on probe inputs (`probe_data`, default 4
standard-normal samples of the model's input shape): `n = ln2 / (tolerance / 2 * scale)`, with
`scale` the smaller of the std of that unit's own inputs and of the original activation's
outputs, so that each layer moves by at most half the `tolerance` (1 %) of its output scale; `n`
is raised 4x (up to 3 times) while the model's outputs move by more than half the `tolerance` of
their scale. Each new activation is then compared with the original on the tensors it receives, and a
`UserWarning` names every layer whose output moves by more than `tolerance` of its scale, and the
model if its outputs do. A large `n` makes the gamma a sharp ReLU: training can still lower it,
but slowly; pass a number (e.g. `relu_gain=20`) for a smoother, less exact start.

Calibrated gains are bounded: `n <= 1e6`. At that gain a gamma is within `ln2 / n = 7e-7` of the
ReLU, a few float32 ulps for inputs of order 1, the scale training brings pre-activations to
(BatchNorm in training mode, standardised inputs); a larger gain only fits probe pre-activations of
tiny scale, an exactness the first training step undoes, and `n` could not be trained back down
(the gradient with respect to `n` is at most `ln2 / n**2`). Where a unit's probe pre-activations
are degenerate, with zero or near-zero spread (a constant, or a std below about 1.4e-4 at the
default `tolerance`, where the calibrated gain would pass the bound), the probe cannot calibrate
the gain: it starts at the bound, the report says so (`ConvertedActivation.degenerate`), and a
`UserWarning` names the layer. Untrained deep models (`weights=None`) in inference mode can have
such pre-activations (std 1e-5..1e-13 in MobileNetV2, which asked for gains up to 2.5e15): pass
`probe_data` from the data the model will see, or convert the trained model.

(***) with `exact=True` (default): the fitted gamma plus the fixed difference between the original
and the fit at its initial parameters (`ActivationAdapter(correction=...)`); the second number is
the fit's own deviation (`exact=False`).

Package layout: `convert` and `ConversionReport` (`_convert`), the model rebuild (`_graph`), the
probe calibration (`_calibrate`), the gamma recipes and fits (`_recipes`), the convert rules
(`rules`, and one private module per built-in family). The NumPy formulas are those of
`keras_bioact.reference`. Importing this package does not import Keras: `convert`,
`ConversionReport` and `ConvertedActivation` load on first use.
"""

import importlib

from keras_bioact.conversion._recipes import SUPPORTED_ACTIVATIONS
from keras_bioact.conversion.rules import ConvertRule, get_rule, register_rule, rule_names

__all__ = [
    "ConversionReport",
    "ConvertRule",
    "ConvertedActivation",
    "SUPPORTED_ACTIVATIONS",
    "convert",
    "get_rule",
    "register_rule",
    "rule_names",
]
_LAZY = ("ConversionReport", "ConvertedActivation", "convert")  # these import Keras


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module("keras_bioact.conversion._convert"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


# The built-in convert rules (each module registers itself). Order matters for `rule_names()`.
from keras_bioact.conversion import _gamma, _bru, _learnable_swish  # noqa: E402, F401, I001
