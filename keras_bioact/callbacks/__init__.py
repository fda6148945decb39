"""Keras callbacks and TensorBoard writers of keras-bioact.

Nothing here imports TensorFlow, and `tensorboard` / `matplotlib` / `optuna` are imported only
when something is written.
"""

from keras_bioact.callbacks.activation_inspector import ActivationInspector
from keras_bioact.callbacks.evolution_logger import EvolutionTensorBoardLogger
from keras_bioact.callbacks.hparams_logger import HParamsLogger, parameter_hparams
from keras_bioact.callbacks.optuna_tensorboard import OptunaTensorBoardCallback
from keras_bioact.callbacks.stability_guard import StabilityGuard
from keras_bioact.callbacks.summary_writer import SummaryWriter

__all__ = [
    "ActivationInspector",
    "EvolutionTensorBoardLogger",
    "HParamsLogger",
    "OptunaTensorBoardCallback",
    "StabilityGuard",
    "SummaryWriter",
    "parameter_hparams",
]
