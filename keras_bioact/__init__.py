"""keras-bioact: biologically-inspired learnable activations for Keras 3."""

from keras_bioact import activations, constraints, initializers, layers, ops
from keras_bioact.layers import BRU, GammaActivation

__version__ = "0.1.0"

__all__ = ["BRU", "GammaActivation", "activations", "constraints", "initializers", "layers", "ops"]
