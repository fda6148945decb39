"""Keras layers of keras-bioact."""

from keras_bioact.layers.activation_adapter import ActivationAdapter
from keras_bioact.layers.anru_cell import ANRUCell
from keras_bioact.layers.bru import BRU
from keras_bioact.layers.checkpointed_rnn import CheckpointedRNN
from keras_bioact.layers.feed_forward import FeedForward
from keras_bioact.layers.gamma_activation import GammaActivation
from keras_bioact.layers.gamma_rnn_cell import GammaRNNCell
from keras_bioact.layers.inner_nonlinearity import InnerNonlinearity
from keras_bioact.layers.learnable_swish import LearnableSwish
from keras_bioact.layers.preactivation_drive import PreactivationDrive
from keras_bioact.layers.sinusoidal_rescaling import SinusoidalRescaling
from keras_bioact.layers.tabulated_inner import TabulatedInner
from keras_bioact.layers.two_arg_conv2d import TwoArgConv2D
from keras_bioact.layers.two_arg_dense import TwoArgDense
from keras_bioact.layers.two_arg_feed_forward import TwoArgFeedForward

__all__ = [
    "ANRUCell",
    "ActivationAdapter",
    "BRU",
    "CheckpointedRNN",
    "FeedForward",
    "GammaActivation",
    "GammaRNNCell",
    "InnerNonlinearity",
    "LearnableSwish",
    "PreactivationDrive",
    "SinusoidalRescaling",
    "TabulatedInner",
    "TwoArgConv2D",
    "TwoArgDense",
    "TwoArgFeedForward",
]
