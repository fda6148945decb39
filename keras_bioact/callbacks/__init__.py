"""Keras callbacks of keras-bioact."""

from keras_bioact.callbacks.stability_guard import StabilityGuard

__all__ = ["StabilityGuard"]
