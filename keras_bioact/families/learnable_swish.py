"""The learnable Swish family: `x * sigmoid(beta * x)` with a trainable `beta` per neuron
(Ramachandran, Zoph & Le, "Searching for activation functions", arXiv:1710.05941, 2017;
`beta = 1` is SiLU, `beta = 0` the linear map `x / 2`, and the unit tends to ReLU as
`beta -> inf`).

Everything about the family lives in this module: the op (`learnable_swish`, keras.ops), the
layer (`LearnableSwish`), the Optuna sub-space (`[space.learnable_swish]`), the evolution
target `"learnable_swish"` (the per-neuron `beta`), the conversion rule from Keras
`silu`/`swish` (exact at `beta = 1`), the inspector curve and the NumPy reference. It is
declared to the rest of keras-bioact through `keras_bioact.families.register_family` only.

Importing this module does not import Keras: the op and the layer class are created on first
use (`learnable_swish`, `LearnableSwish` are module attributes resolved lazily).
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np

from keras_bioact.families import ConvertRule, Family, register_family
from keras_bioact.families._space import (
    SpaceError,
    SubSpace,
    check_bool,
    choices,
    suggest_choice,
    suggest_float,
    value_range,
)

# LearnableSwish is resolved lazily by the module __getattr__ below.
__all__ = ["LearnableSwish", "LearnableSwishSpace", "REGIMES", "learnable_swish", "reference"]  # noqa: F822

NAME = "learnable_swish"
REGIMES = ("static", "homogeneous", "heterogeneous")
BETA_MAX = 100.0  # the search space's upper limit for beta
_HALF = ("float16", "bfloat16")


# ------------------------------------------------------------------ NumPy reference


def reference(x, beta=1.0):
    """`x * sigmoid(beta * x)` in float64 (sigmoid through tanh: no overflow)."""
    x, beta = np.asarray(x, dtype="float64"), np.asarray(beta, dtype="float64")
    return x * (0.5 * (1.0 + np.tanh(0.5 * beta * x)))


# ------------------------------------------------------------------ op and layer (lazy: Keras)


def _op(x, beta):
    """`x * sigmoid(beta * x)` with keras.ops; finite with finite gradients for finite `x`, `beta`.

    With `z = beta x` and `e = exp(-|z|)` in (0, 1]: `sigmoid(z) = 1 / (1 + e)` for z >= 0 and
    `e / (1 + e)` for z < 0, so `exp` never sees a positive argument and neither branch of the
    `where` can overflow (their gradients are masked, never NaN). Half-precision inputs are
    computed in float32 and the result cast back.
    """
    from keras import backend, ops

    x = ops.convert_to_tensor(x)
    out_dtype = backend.standardize_dtype(x.dtype)
    dtype = "float32" if out_dtype in _HALF or "int" in out_dtype or out_dtype == "bool" else out_dtype
    x = ops.cast(x, dtype)
    beta = ops.cast(ops.convert_to_tensor(beta), dtype)
    z = beta * x
    positive = z >= 0
    e = ops.exp(ops.where(positive, -z, z))
    t = 1.0 / (1.0 + e)
    y = x * ops.where(positive, t, e * t)
    if out_dtype in _HALF:
        y = ops.cast(y, out_dtype)
    return y


def learnable_swish(x, beta=1.0):
    """Swish `x * sigmoid(beta * x)` (Ramachandran et al. 2017), written with keras.ops.

    `beta` broadcasts against `x` (e.g. shape `(units,)` for one value per neuron). The
    output and its gradients with respect to `x` and `beta` are finite for every finite `x`
    and `beta` with finite `beta * x`; float16/bfloat16 inputs are computed in float32 and
    returned in their own dtype; integer inputs give float32.

    Args:
        x: input tensor.
        beta: slope of the gate, broadcastable to `x`.

    Returns:
        A tensor of the dtype of `x` (float32 for integer inputs).
    """
    return _op(x, beta)


def _initializer(value, constraint, layer):
    from keras import initializers

    from keras_bioact.constraints import bounds_of

    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(float(value)):
            raise ValueError(f"{layer}: `beta_initializer` must be a finite number, got {value!r}.")
        low, high = bounds_of(constraint)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(
                f"{layer}: `beta_initializer` {value} is outside the range [{low}, {high}] of "
                "`beta_constraint`."
            )
        return initializers.Constant(float(value))
    try:
        return initializers.get(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{layer}: `beta_initializer` must be a number or a Keras initializer, got {value!r} ({e})."
        ) from None


@functools.cache
def _layer_class():
    import keras
    from keras import constraints, initializers, regularizers

    from keras_bioact import constraints as bioact_constraints
    from keras_bioact.layers import _params

    @keras.saving.register_keras_serializable(package="keras_bioact")
    class LearnableSwish(keras.layers.Layer):
        """Learnable Swish activation of Ramachandran, Zoph & Le (2017).

        Formula:
        ```python
        f(x) = x * sigmoid(beta * x)
        ```
        with a learned `beta` per neuron. `beta = 1` is SiLU (`keras.activations.silu`),
        `beta = 0` the linear map `x / 2`, and `f` tends to ReLU as `beta` grows. The sigmoid is
        evaluated through `exp(-|beta x|)`, so outputs and gradients stay finite for any
        finite input (e.g. `x = 1e4`) and any legal `beta`.

        Parameter sharing follows `keras.layers.PReLU`: by default every element of
        `input_shape[1:]` has its own `beta`; `shared_axes=[1, 2]` on `(batch, H, W, C)`
        feature maps gives one `beta` per channel, and `shared_axes="all"` one for the layer.
        `trainable=False` keeps `beta` fixed (Swish with a constant `beta`).

        `beta` is stored in the variable dtype (float32 under mixed precision) and the
        formula is evaluated in float32 for float16/bfloat16 inputs; the output has the
        compute dtype. `beta` is an activation parameter (`bioact_parameters`), so
        `keras_bioact.params.ParameterView` and the evolution engine (target
        `"learnable_swish"`) can read and set it, within the bounds of `beta_constraint`.

        Args:
            beta_initializer: initializer of `beta`, or a number. Default `"ones"` (SiLU).
                A number must lie within the range of `beta_constraint`.
            beta_regularizer: optional regularizer for `beta`.
            beta_constraint: constraint for `beta`, applied after each optimizer update.
                Default `"non_neg"` (`beta >= 0`); `None` for a free `beta`; a
                `keras_bioact.constraints.Bounds` for an interval.
            shared_axes: axes of the input along which `beta` is shared; `None` (per
                element), an int, a list of ints, or `"all"` (one `beta` for the layer).
            **kwargs: base layer keyword arguments, such as `name`, `dtype` and `trainable`.
        """

        bioact_parameters = ("beta",)
        bioact_family = NAME

        def __init__(
            self,
            beta_initializer="ones",
            beta_regularizer=None,
            beta_constraint="non_neg",
            shared_axes=None,
            **kwargs,
        ):
            super().__init__(**kwargs)
            name = type(self).__name__
            self.supports_masking = True
            try:
                self.beta_constraint = bioact_constraints.get(beta_constraint)
            except (ValueError, TypeError) as e:
                raise ValueError(
                    f"{name}: `beta_constraint` must be None, a constraint or its name, got "
                    f"{beta_constraint!r} ({e})."
                ) from None
            self.beta_initializer = _initializer(beta_initializer, self.beta_constraint, name)
            try:
                self.beta_regularizer = regularizers.get(beta_regularizer)
            except (ValueError, TypeError) as e:
                raise ValueError(
                    f"{name}: `beta_regularizer` must be None, a regularizer or its name, got "
                    f"{beta_regularizer!r} ({e})."
                ) from None
            self.shared_axes = _params.normalize_shared_axes(shared_axes, name)

        def build(self, input_shape):
            shape = _params.param_shape(input_shape, self.shared_axes, type(self).__name__)
            self.beta = self.add_weight(
                shape=shape,
                name="beta",
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                autocast=False,
            )

        def call(self, inputs):
            return _op(inputs, self.beta)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "beta_initializer": initializers.serialize(self.beta_initializer),
                    "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                    "beta_constraint": constraints.serialize(self.beta_constraint),
                    "shared_axes": self.shared_axes,
                }
            )
            return config

    LearnableSwish.__module__ = __name__
    LearnableSwish.__qualname__ = "LearnableSwish"
    return LearnableSwish


def __getattr__(name):
    if name == "LearnableSwish":
        return _layer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------ Optuna sub-space


@dataclass
class LearnableSwishSpace(SubSpace):
    """Learnable Swish (Ramachandran et al.). `beta`: range of the initial (or, in the `static`
    regime, fixed) `beta` within [0, 100] (> 0 when `log`); `log`: sample `beta`
    log-uniformly; `regime`: choices among `static` (fixed `beta`), `homogeneous` (one learned
    `beta` per layer) and `heterogeneous` (one learned `beta` per neuron)."""

    _KEY = f"space.{NAME}"
    beta: tuple = (0.25, 4.0)
    log: bool = True
    regime: tuple = REGIMES

    def validate(self, key=_KEY):
        self.beta = value_range(self.beta, f"{key}.beta", 0.0, BETA_MAX)
        check_bool(self.log, f"{key}.log")
        if self.log and self.beta[0] <= 0.0:
            raise SpaceError(f"{key}.beta", f"low must be > 0 when log = true, got {self.beta[0]}")
        self.regime = choices(self.regime, f"{key}.regime", REGIMES)
        return self


def sample(space, trial):
    return {
        "regime": suggest_choice(trial, f"{NAME}_regime", space.regime),
        "beta": suggest_float(trial, f"{NAME}_beta", space.beta, log=space.log),
    }


def normalize(config):
    config.setdefault("regime", "heterogeneous")
    config.setdefault("beta", 1.0)
    if config["regime"] not in REGIMES:
        raise ValueError(f"{NAME}: `regime` must be one of {REGIMES}, got {config['regime']!r}.")
    config["beta"] = float(config["beta"])
    return config


def layer(activation, index=0, name=None, channel_axes=None):
    c = activation.config
    return _layer_class()(
        beta_initializer=c["beta"],
        shared_axes="all" if c["regime"] == "homogeneous" else channel_axes,
        trainable=c["regime"] != "static",
        name=name,
    )


def reference_params(unit):
    from keras import ops

    return {"beta": np.asarray(ops.convert_to_numpy(unit.beta), dtype="float64")}


def inspect(layer, names):
    return NAME if getattr(layer, "bioact_family", None) == NAME and "beta" in names else None


# ------------------------------------------------------------------ convert rule (silu / swish)


def convert_make(converter, spec, name, shared_axes, dtype):
    # Keras' silu (alias swish) is exactly x * sigmoid(x): beta = 1 under both inits.
    unit = _layer_class()(
        beta_initializer=1.0, shared_axes=shared_axes, trainable=converter.trainable, name=name, dtype=dtype
    )
    return {"unit": unit, "recipe": None, "form": None, "correction": None, "use_adapter": False}


def convert_deviation(record, probe):
    from keras import ops

    beta = np.unique(np.asarray(ops.convert_to_numpy(record["unit"].beta), dtype="float64").reshape(-1))
    summary = float(beta.min()) if beta.min() == beta.max() else f"{beta.min():.4g}..{beta.max():.4g}"
    return reference(probe[:, None], beta[None, :]), {"beta": summary}


FAMILY = register_family(
    Family(
        name=NAME,
        description="LearnableSwish: x * sigmoid(beta x), beta per neuron",
        reference=reference,
        reference_params=reference_params,
        layer=layer,
        normalize=normalize,
        space_cls=LearnableSwishSpace,
        sample=sample,
        target=NAME,
        parameter_names=("beta",),
        convert=ConvertRule(
            make=convert_make,
            deviation=convert_deviation,
            supports=lambda spec: spec.name == "silu",
            default_sharing="channel",
        ),
        inspect=inspect,
        curve_label=lambda layer: "x sigmoid(beta x)",
    )
)
