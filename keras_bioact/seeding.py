"""Seeding without importing TensorFlow.

`keras.utils.set_random_seed` seeds Python, NumPy, the torch backend and TensorFlow, and imports
TensorFlow to do so whenever it is installed, even under the JAX or torch backend (about 9 CPU
seconds and several hundred MB per process: every search worker paid it). `set_random_seed` does
the same but seeds TensorFlow only where it is in use: under the TensorFlow backend or when some
code has already imported it. A process that imports TensorFlow only later (for `tf.data`, say)
and wants it seeded calls `keras.utils.set_random_seed` itself.
"""

from __future__ import annotations

import random
import sys

__all__ = ["set_random_seed"]


def set_random_seed(seed):
    """Seed Python's `random`, NumPy, Keras' global seed and the backend, as
    `keras.utils.set_random_seed(seed)` does, and TensorFlow only where it is already imported or
    is the backend. The same seed gives the same weights and draws either way.

    Args:
        seed: int, the seed (NumPy takes 0 to 2**32 - 1).
    """
    import keras

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r} of type {type(seed).__name__}")
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    try:  # what keras.utils.set_random_seed does (keras/src/utils/rng_utils.py), minus TensorFlow
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils

        names = (rng_utils.GLOBAL_RANDOM_SEED, seed_generator.GLOBAL_SEED_GENERATOR)
    except (ImportError, AttributeError):  # another Keras layout: the full version
        keras.utils.set_random_seed(seed)
        return
    import numpy as np

    global_state.set_global_attribute(names[0], seed)
    global_state.set_global_attribute(names[1], None)  # recreated from the seed when next used
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global generator is what is seeded)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
