import math

import keras
from keras import ops

from keras_bioact import _checks

KINDS = ("step", "gaussian")


@keras.saving.register_keras_serializable(package="keras_bioact")
class PreactivationDrive(keras.layers.Layer):
    """External drive added to the pre-activations of a recurrent layer (Geadah et al. 2024).

    The authors perturb a trained RNN by adding a drive `xi_t` to every pre-activation `a_t`
    for a window of time steps: a constant step `xi` (`"step"`) or Gaussian noise
    `N(0, xi^2)`, drawn independently per example, step and neuron (`"gaussian"`); the
    window is `200 < t < 400` of the 784 psMNIST steps and `xi` in {0.5, 1, ..., 30}.

    This layer appends the drive to the input sequence: `(batch, T, F) -> (batch, T, F + units)`.
    The recurrent cell built with `drive_input=True` (`GammaRNNCell`, `ANRUCell`) adds those last
    `units` features to `a_t`. Kernel shapes do not change with `drive_input`, so a trained
    model's weights transfer to an evaluation copy with `set_weights`:
    ```python
    drive = PreactivationDrive(units=64, kind="step", strength=5.0, start=20, length=20)
    cell = GammaRNNCell(64, drive_input=True)     # same config as the trained cell otherwise
    ```
    The drive is applied whenever the layer is called (it is meant for evaluation).
    `strength` is a non-trainable variable, so a sweep can `layer.strength.assign(v)` without
    recompiling. The window is the half-open step range `[start, start + length)` (0-based),
    clipped to the sequence.

    Args:
        units: width of the driven recurrent layer, >= 1.
        kind: `"step"` (default) or `"gaussian"`.
        strength: initial drive strength `xi` (>= 0; the step height or the noise std).
        start: first driven step (>= 0, default 200).
        length: number of driven steps (>= 1, default 200).
        seed: seed of the Gaussian drive.
        **kwargs: base layer keyword arguments.
    """

    def __init__(self, units, kind="step", strength=1.0, start=200, length=200, seed=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"{name}: `units` must be a positive integer, got {units!r}.")
        _checks.choice(kind, KINDS, "kind", name)
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (
            math.isfinite(strength) and strength >= 0
        ):
            raise ValueError(f"{name}: `strength` must be a finite number >= 0, got {strength!r}.")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"{name}: `start` must be an integer >= 0, got {start!r}.")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"{name}: `length` must be an integer >= 1, got {length!r}.")
        self.units = units
        self.kind = kind
        self.initial_strength = float(strength)
        self.start = start
        self.length = length
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if kind == "gaussian" else None
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__}: inputs must be (batch, time, features), got {input_shape}."
            )
        self.strength = self.add_weight(
            shape=(), name="strength", initializer=keras.initializers.Constant(self.initial_strength),
            trainable=False,
        )

    def call(self, inputs):
        shape = ops.shape(inputs)
        t = ops.arange(shape[1])
        window = ops.cast((t >= self.start) & (t < self.start + self.length), inputs.dtype)
        window = ops.reshape(window, (1, -1, 1))
        strength = ops.cast(self.strength, inputs.dtype)
        if self.kind == "step":
            drive = ops.broadcast_to(window * strength, (shape[0], shape[1], self.units))
        else:
            noise = keras.random.normal(
                (shape[0], shape[1], self.units), seed=self.seed_generator, dtype=inputs.dtype
            )
            drive = noise * window * strength
        return ops.concatenate([inputs, ops.cast(drive, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        last = None if input_shape[-1] is None else input_shape[-1] + self.units
        return tuple(input_shape[:-1]) + (last,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kind": self.kind,
                "strength": float(ops.convert_to_numpy(self.strength)) if self.built
                else self.initial_strength,
                "start": self.start,
                "length": self.length,
                "seed": self.seed,
            }
        )
        return config
