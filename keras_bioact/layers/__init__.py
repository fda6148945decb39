"""Keras layers of keras-bioact."""

from keras_bioact.layers.anru_cell import ANRUCell
from keras_bioact.layers.bru import BRU
from keras_bioact.layers.checkpointed_rnn import CheckpointedRNN
from keras_bioact.layers.gamma_activation import GammaActivation
from keras_bioact.layers.gamma_rnn_cell import GammaRNNCell
from keras_bioact.layers.preactivation_drive import PreactivationDrive
from keras_bioact.layers.sinusoidal_rescaling import SinusoidalRescaling

__all__ = [
    "ANRUCell",
    "BRU",
    "CheckpointedRNN",
    "GammaActivation",
    "GammaRNNCell",
    "PreactivationDrive",
    "SinusoidalRescaling",
]
