import math

import keras
from keras import ops

from keras_bioact import _checks


@keras.saving.register_keras_serializable(package="keras_bioact")
class SinusoidalRescaling(keras.layers.Layer):
    """Sinusoidal rescaling of input sequences (the `SinTransform` shift of Geadah et al. 2020).

    For inputs of shape `(batch, T, features)`:
    ```python
    y[:, t] = x[:, t] * (1 + amplitude * sin(2 pi frequency t / period + phase)),  t = 0 .. T-1
    ```
    (the authors multiply only nonzero inputs, which is the same thing). `period` defaults to
    the sequence length (784 for psMNIST, so `frequency=1` is one full cycle per sequence); the
    authors' test-time shift is `amplitude=0.5, frequency=1, phase=0`.

    The layer is applied whenever it is called (training and evaluation): put it in front of
    a trained model's recurrent layer to evaluate robustness, e.g.
    `keras.Sequential([SinusoidalRescaling(0.5), trained_model])`. `amplitude` is a
    non-trainable variable, so a sweep can `layer.amplitude.assign(v)` without recompiling.

    Args:
        amplitude: initial amplitude A (a float, default 0.5; A = 0 is the identity).
        frequency: cycles per `period` (default 1).
        phase: phase in radians (default 0).
        period: number of steps of one unit of `t` (default `None`: the sequence length).
        **kwargs: base layer keyword arguments.
    """

    def __init__(self, amplitude=0.5, frequency=1.0, phase=0.0, period=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        for arg, value in (("amplitude", amplitude), ("frequency", frequency), ("phase", phase)):
            _checks.number(value, arg, name)
        if period is not None and (isinstance(period, bool) or not isinstance(period, (int, float))
                                   or not period > 0):
            raise ValueError(f"{name}: `period` must be None or a number > 0, got {period!r}.")
        self.initial_amplitude = float(amplitude)
        self.frequency = float(frequency)
        self.phase = float(phase)
        self.period = None if period is None else float(period)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"{type(self).__name__}: inputs must be sequences (batch, time, features), got {input_shape}."
            )
        self.amplitude = self.add_weight(
            shape=(), name="amplitude", initializer=keras.initializers.Constant(self.initial_amplitude),
            trainable=False,
        )

    def call(self, inputs):
        steps = ops.shape(inputs)[1]
        t = ops.cast(ops.arange(steps), self.compute_dtype)
        period = ops.cast(steps, self.compute_dtype) if self.period is None else self.period
        angle = 2.0 * math.pi * self.frequency * t / period + self.phase
        factor = 1.0 + ops.cast(self.amplitude, self.compute_dtype) * ops.sin(angle)
        factor = ops.reshape(factor, (1, -1) + (1,) * (len(inputs.shape) - 2))
        return inputs * ops.cast(factor, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "amplitude": float(ops.convert_to_numpy(self.amplitude)) if self.built
                else self.initial_amplitude,
                "frequency": self.frequency,
                "phase": self.phase,
                "period": self.period,
            }
        )
        return config
