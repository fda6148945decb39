import keras
from keras import ops

from keras_bioact import _checks
from keras_bioact import ops as bioact_ops
from keras_bioact.layers import _params


@keras.saving.register_keras_serializable(package="keras_bioact")
class ActivationAdapter(keras.layers.Layer):
    """A learnable activation unit wrapped in fixed (non-trainable) arithmetic.

    Formula, with `unit` a keras-bioact activation layer (e.g. `GammaActivation`):
    ```python
    u = unit(pre_scale * x + pre_shift)
    u = minimum(u, max_value)              # if max_value is not None
    z = scale * u + offset
    z = x * z                              # if gate
    y = z + slope * x
    y = y + (activation(x) - y0(x))        # if correction: y0 is y with the unit's initial gamma
    ```
    Only the unit's own parameters are learned; the numbers above are constants of the
    layer. `keras_bioact.convert` uses it to start a learnable unit exactly (or closely) at a
    built-in activation that no bare unit can represent, e.g.
    `relu6(x) = minimum(gamma(x; n, 0), 6)` (as `n` grows), `silu(x) = x * gamma(x; 1, 1)`,
    `leaky_relu(x) = 0.8 * gamma(x; n, 0) + 0.2 * x`, or
    `hard_sigmoid(x) = minimum(gamma(x + 3; n, 0), 6) / 6`.

    The unit keeps its own dtype policy (create it with the adapter's `dtype` to compute in
    the same precision); its output is cast to the adapter's compute dtype.

    Args:
        unit: the learnable activation layer (or its serialized config).
        pre_scale, pre_shift: affine map applied to the input before the unit.
        max_value: upper clip of the unit's output, or `None`.
        scale, offset: affine map applied to the (clipped) unit output.
        gate: multiply by the input (`x * z`), as in SiLU/GELU (`x * sigmoid-like(x)`).
        slope: weight of the linear skip term `slope * x`.
        correction: `None`, or `{"activation": name, "n": n0, "s": s0}`: add the fixed difference
            between the built-in Keras activation `name` and this layer's formula with a gamma of
            constant parameters `(n0, s0)` in place of the unit, so that a unit starting at
            `(n0, s0)` reproduces `name` exactly although no gamma equals it (e.g. GELU, whose
            closest `x * gamma(x)` is 0.014 away). Training moves the unit; the correction stays.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(
        self,
        unit,
        pre_scale=1.0,
        pre_shift=0.0,
        max_value=None,
        scale=1.0,
        offset=0.0,
        gate=False,
        slope=0.0,
        correction=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        legal = "a keras Layer (a keras-bioact activation layer) or its config"
        unit = _params.deserialized(unit, "unit", "ActivationAdapter", legal)
        if not isinstance(unit, keras.layers.Layer):
            raise ValueError(f"ActivationAdapter: `unit` must be {legal}, got {type(unit).__name__}.")
        numbers = {
            "pre_scale": pre_scale,
            "pre_shift": pre_shift,
            "scale": scale,
            "offset": offset,
            "slope": slope,
        }
        if max_value is not None:
            numbers["max_value"] = max_value
        for key, value in numbers.items():
            _checks.number(value, key, "ActivationAdapter")
        self.unit = unit
        self.pre_scale = float(pre_scale)
        self.pre_shift = float(pre_shift)
        self.max_value = None if max_value is None else float(max_value)
        self.scale = float(scale)
        self.offset = float(offset)
        self.gate = bool(gate)
        self.slope = float(slope)
        if correction is not None:
            if not isinstance(correction, dict) or set(correction) != {"activation", "n", "s"}:
                raise ValueError(
                    "ActivationAdapter: `correction` must be None or a dict with keys 'activation', 'n', "
                    f"'s'; got {correction!r}."
                )
            names = _checks.public_names(keras.activations)
            _checks.choice(correction["activation"], names, "correction['activation']", "ActivationAdapter")
            if not float(correction["n"]) > 0:
                raise ValueError(
                    f"ActivationAdapter: `correction['n']` must be > 0, got {correction['n']!r}."
                )
            correction = {
                "activation": str(correction["activation"]),
                "n": float(correction["n"]),
                "s": float(correction["s"]),
            }
        self.correction = correction
        self.supports_masking = True

    def build(self, input_shape):
        if not self.unit.built:
            self.unit.build(input_shape)

    def _around(self, x, unit):
        z = x
        if self.pre_scale != 1.0:
            z = ops.multiply(z, self.pre_scale)
        if self.pre_shift != 0.0:
            z = ops.add(z, self.pre_shift)
        u = ops.cast(unit(z), x.dtype)  # a unit with another dtype policy: back to ours
        if self.max_value is not None:
            u = ops.minimum(u, self.max_value)
        if self.scale != 1.0:
            u = ops.multiply(u, self.scale)
        if self.offset != 0.0:
            u = ops.add(u, self.offset)
        if self.gate:
            u = ops.multiply(u, x)
        if self.slope != 0.0:
            u = ops.add(u, ops.multiply(x, self.slope))
        return u

    def call(self, inputs):
        y = self._around(inputs, self.unit)
        if self.correction is not None:
            c = self.correction
            y0 = self._around(inputs, lambda z: bioact_ops.gamma(z, c["n"], c["s"]))
            target = keras.activations.get(c["activation"])(inputs)
            y = ops.add(y, ops.subtract(ops.cast(target, y.dtype), ops.cast(y0, y.dtype)))
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "unit": keras.saving.serialize_keras_object(self.unit),
                "pre_scale": self.pre_scale,
                "pre_shift": self.pre_shift,
                "max_value": self.max_value,
                "scale": self.scale,
                "offset": self.offset,
                "gate": self.gate,
                "slope": self.slope,
                "correction": self.correction,
            }
        )
        return config
