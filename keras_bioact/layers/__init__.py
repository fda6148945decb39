"""Keras layers of keras-bioact."""

from keras_bioact.layers.bru import BRU
from keras_bioact.layers.gamma_activation import GammaActivation

__all__ = ["BRU", "GammaActivation"]
