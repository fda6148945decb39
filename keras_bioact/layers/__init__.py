"""Keras layers of keras-bioact."""

from keras_bioact.layers.bru import BRU
from keras_bioact.layers.gamma_activation import GammaActivation
from keras_bioact.layers.inner_nonlinearity import InnerNonlinearity
from keras_bioact.layers.two_arg_conv2d import TwoArgConv2D
from keras_bioact.layers.two_arg_dense import TwoArgDense

__all__ = ["BRU", "GammaActivation", "InnerNonlinearity", "TwoArgConv2D", "TwoArgDense"]
