"""keras-bioact: biologically-inspired learnable activations for Keras 3."""

from keras_bioact import activations, callbacks, constraints, initializers, layers, ops, optimizers, params
from keras_bioact.convert import ConversionReport, convert
from keras_bioact.layers import BRU, GammaActivation

__version__ = "0.1.0"

__all__ = [
    "BRU",
    "ConversionReport",
    "GammaActivation",
    "activations",
    "callbacks",
    "constraints",
    "convert",
    "initializers",
    "layers",
    "ops",
    "optimizers",
    "params",
]
