"""Initializers for the keras-bioact layers."""

import keras

__all__ = ["BRUInitializer", "GammaGain"]

_BRU_FORMS = ("eru", "oru")


@keras.saving.register_keras_serializable(package="keras_bioact")
class BRUInitializer(keras.initializers.VarianceScaling):
    """Kernel initializer for layers followed by a BRU activation (SPEC section 4.2).

    Draws weights with variance `6 / (fan_in * (2r + 1))` for ERU layers and
    `2 / (fan_in * r)` for ORU layers. At `r = 1` the ERU rule is He initialisation.

    Args:
        r: the radix of the BRU that follows the layer, > 0.
        form: `"eru"` or `"oru"`.
        distribution: `"truncated_normal"` (default, as Keras' `he_normal`), `"untruncated_normal"`
            or `"uniform"`.
        seed: optional seed.
    """

    def __init__(self, r=2.0, form="eru", distribution="truncated_normal", seed=None):
        r = float(r)
        if not r > 0:
            raise ValueError(f"BRUInitializer: `r` must be > 0, got {r}.")
        if form not in _BRU_FORMS:
            raise ValueError(f"BRUInitializer: `form` must be one of {_BRU_FORMS}, got {form!r}.")
        scale = 6.0 / (2.0 * r + 1.0) if form == "eru" else 2.0 / r
        super().__init__(scale=scale, mode="fan_in", distribution=distribution, seed=seed)
        self.r = r
        self.form = form

    def get_config(self):
        return {"r": self.r, "form": self.form, "distribution": self.distribution, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_bioact")
class GammaGain(keras.initializers.RandomUniform):
    """The papers' initial gain: `n0 = 5 + 2 U(0, 1)` (SPEC sections 1.2 and 3.2).

    Starts a gamma unit close to a ReLU-like softplus of gain 5-7.

    Args:
        minval: lower end of the uniform draw, > 0 (default 5).
        maxval: upper end, >= minval (default 7).
        seed: optional seed.
    """

    def __init__(self, minval=5.0, maxval=7.0, seed=None):
        if not float(minval) > 0:
            raise ValueError(f"GammaGain: `minval` must be > 0 (the gain n must be > 0), got {minval}.")
        if float(maxval) < float(minval):
            raise ValueError(f"GammaGain: `maxval` ({maxval}) must be >= `minval` ({minval}).")
        super().__init__(minval=float(minval), maxval=float(maxval), seed=seed)
