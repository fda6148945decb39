"""Fixed-parameter activation functions, usable as `Dense(..., activation=...)`.

For learned parameters use the layers `keras_bioact.layers.GammaActivation` and
`keras_bioact.layers.BRU`. These functions are registered for serialization, so a model
using them saves to `.keras` and loads back.
"""

import keras

from keras_bioact import ops as bioact_ops

__all__ = ["gamma", "eru", "oru"]


@keras.saving.register_keras_serializable(package="keras_bioact")
def gamma(x, n=1.0, s=0.0):
    """`(1 - s) * softplus(n x) / n + s * sigmoid(n x)`; defaults give softplus."""
    return bioact_ops.gamma(x, n, s)


@keras.saving.register_keras_serializable(package="keras_bioact")
def eru(x, r=2.0):
    """Exponential root unit with radix `r` (default 2); `r = 1` is ELU."""
    return bioact_ops.eru(x, r)


@keras.saving.register_keras_serializable(package="keras_bioact")
def oru(x, r=2.0):
    """Odd root unit with radix `r` (default 2); `r = 1` is the identity."""
    return bioact_ops.oru(x, r)
