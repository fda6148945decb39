"""The baseline families: Keras built-in activations (`keras.layers.Activation(name)`)."""

import math

import numpy as np

from keras_bioact.families import Family, register_family

__all__ = ["BASELINES", "NUMPY"]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype="float64")))


def _gelu(x):
    x = np.asarray(x, dtype="float64")
    return 0.5 * x * (1.0 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2.0)))


# float64 NumPy versions of the Keras built-ins (keras.activations.<name>, default arguments).
NUMPY = {
    "relu": lambda x: np.maximum(np.asarray(x, dtype="float64"), 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(np.asarray(x, dtype="float64"), 0.0))),
    "gelu": _gelu,
    "swish": lambda x: np.asarray(x, dtype="float64") * _sigmoid(x),
    "tanh": lambda x: np.tanh(np.asarray(x, dtype="float64")),
    "sigmoid": _sigmoid,
}
BASELINES = tuple(NUMPY)


def _layer(name):
    def layer(activation, index=0, name_=None, channel_axes=None):
        import keras

        return keras.layers.Activation(name, name=name_)

    return layer


for _name, _fn in NUMPY.items():
    register_family(
        Family(
            name=_name,
            reference=_fn,
            baseline=True,
            description=f"Keras built-in activation {_name!r}",
            layer=_layer(_name),
        )
    )
