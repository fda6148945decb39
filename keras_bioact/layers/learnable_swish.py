"""Learnable Swish `x * sigmoid(beta * x)` (Ramachandran, Zoph & Le, "Searching for activation
functions", arXiv:1710.05941, 2017): the op `learnable_swish` and the layer `LearnableSwish`.
Its search family (sub-space, evolution target, inspector) is `keras_bioact.families.learnable_swish`."""

import math
import numbers

import keras
from keras import backend, constraints, initializers, ops, regularizers

from keras_bioact import constraints as bioact_constraints
from keras_bioact.layers import _params

__all__ = ["LearnableSwish", "learnable_swish"]

_HALF = ("float16", "bfloat16")


def learnable_swish(x, beta=1.0):
    """Swish `x * sigmoid(beta * x)` (Ramachandran et al. 2017), written with keras.ops.

    `beta` broadcasts against `x` (e.g. shape `(units,)` for one value per neuron). The
    output and its gradients with respect to `x` and `beta` are finite for every finite `x`
    and `beta` with finite `beta * x`; float16/bfloat16 inputs are computed in float32 and
    returned in their own dtype; integer inputs give float32.

    With `z = beta x` and `e = exp(-|z|)` in (0, 1]: `sigmoid(z) = 1 / (1 + e)` for z >= 0 and
    `e / (1 + e)` for z < 0, so `exp` never sees a positive argument and neither branch of the
    `where` can overflow (their gradients are masked, never NaN).

    Args:
        x: input tensor.
        beta: slope of the gate, broadcastable to `x`.

    Returns:
        A tensor of the dtype of `x` (float32 for integer inputs).
    """
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


def _initializer(value, constraint, layer):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(float(value)):
            raise ValueError(f"{layer}: `beta_initializer` must be a finite number, got {value!r}.")
        low, high = bioact_constraints.bounds_of(constraint)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(
                f"{layer}: `beta_initializer` {value} is outside the range [{low}, {high}] of "
                "`beta_constraint`."
            )
        return initializers.Constant(float(value))
    return _params.initializer(value, "beta_initializer", layer)


# Registered as "keras_bioact>LearnableSwish", the name .keras files saved by earlier versions
# (whose class lived in keras_bioact.families.learnable_swish) refer to: keep it.
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
    bioact_family = "learnable_swish"

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
        self.beta_constraint = _params.constraint(beta_constraint, "beta_constraint", name)
        self.beta_initializer = _initializer(beta_initializer, self.beta_constraint, name)
        self.beta_regularizer = _params.regularizer(beta_regularizer, "beta_regularizer", name)
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
        return learnable_swish(inputs, self.beta)

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
