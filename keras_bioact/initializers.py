"""Initializers for the keras-bioact layers."""

import math

import keras
import numpy as np

from keras_bioact import _checks

__all__ = ["BRUInitializer", "GammaGain", "Henaff", "KaimingNormal", "get", "names"]

_BRU_FORMS = ("eru", "oru")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "normal")  # Keras: normal = truncated


@keras.saving.register_keras_serializable(package="keras_bioact")
class BRUInitializer(keras.initializers.VarianceScaling):
    """Kernel initializer for layers followed by a BRU activation (Bhumbra 2018, arXiv:1804.11237).

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
        r = _checks.number(r, "r", "BRUInitializer")
        if not r > 0:
            raise ValueError(f"BRUInitializer: `r` must be > 0, got {r}.")
        _checks.choice(form, _BRU_FORMS, "form", "BRUInitializer")
        _checks.choice(distribution, _DISTRIBUTIONS, "distribution", "BRUInitializer")
        scale = 6.0 / (2.0 * r + 1.0) if form == "eru" else 2.0 / r
        super().__init__(scale=scale, mode="fan_in", distribution=distribution, seed=seed)
        self.r = r
        self.form = form

    def get_config(self):
        return {"r": self.r, "form": self.form, "distribution": self.distribution, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_bioact")
class GammaGain(keras.initializers.RandomUniform):
    """The papers' initial gain: `n0 = 5 + 2 U(0, 1)` (Geadah et al. 2020; Geadah et al. 2024).

    Starts a gamma unit close to a ReLU-like softplus of gain 5-7.

    Args:
        minval: lower end of the uniform draw, > 0 (default 5).
        maxval: upper end, >= minval (default 7).
        seed: optional seed.
    """

    def __init__(self, minval=5.0, maxval=7.0, seed=None):
        minval = _checks.number(minval, "minval", "GammaGain")
        maxval = _checks.number(maxval, "maxval", "GammaGain")
        if not minval > 0:
            raise ValueError(f"GammaGain: `minval` must be > 0 (the gain n must be > 0), got {minval}.")
        if maxval < minval:
            raise ValueError(f"GammaGain: `maxval` ({maxval}) must be >= `minval` ({minval}).")
        super().__init__(minval=minval, maxval=maxval, seed=seed)


@keras.saving.register_keras_serializable(package="keras_bioact")
class Henaff(keras.initializers.Initializer):
    """Henaff orthogonal recurrent initialisation (Henaff et al. 2016, as used by Geadah et al. 2020).

    `W = expm(A)` where `A` is block-diagonal skew-symmetric with 2x2 blocks
    `[[0, theta_k], [-theta_k, 0]]`, `theta_k ~ U(-pi, 0)` (`k = 1 .. floor(n/2)`; for odd `n`
    the last diagonal entry is 1). The matrix exponential of such a block is the rotation
    `[[cos theta, sin theta], [-sin theta, cos theta]]`, so `W` is computed in closed form:
    an orthogonal matrix of 2-D rotations by angles in (-pi, 0), as in the authors' code
    (`henaff_init` + `expm` in `vgeadah/NonlinMod`).

    Only square 2-D shapes `(n, n)` are accepted (recurrent kernels).

    Args:
        low: lower end of the angle draw (default `-pi`).
        high: upper end of the angle draw (default `0`).
        seed: optional int seed (same matrix at every call, like Keras' seeded initializers).
    """

    def __init__(self, low=-math.pi, high=0.0, seed=None):
        low = _checks.number(low, "low", "Henaff")
        high = _checks.number(high, "high", "Henaff")
        if not low <= high:
            raise ValueError(f"Henaff: `low` ({low}) must be <= `high` ({high}).")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"Henaff: `seed` must be an int or None, got {seed!r}.")
        self.low = low
        self.high = high
        self.seed = seed

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"Henaff: the shape must be square (n, n), got {shape}.")
        n = int(shape[0])
        if self.seed is None:
            seed = int(keras.ops.convert_to_numpy(keras.random.randint((), 0, 2**31 - 1)))
        else:
            seed = self.seed
        theta = np.random.default_rng(seed).uniform(self.low, self.high, size=n // 2)
        w = np.eye(n)
        idx = 2 * np.arange(n // 2)
        w[idx, idx] = np.cos(theta)
        w[idx + 1, idx + 1] = np.cos(theta)
        w[idx, idx + 1] = np.sin(theta)
        w[idx + 1, idx] = -np.sin(theta)
        return keras.ops.convert_to_tensor(w, dtype=dtype or keras.backend.floatx())

    def get_config(self):
        return {"low": self.low, "high": self.high, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_bioact")
class KaimingNormal(keras.initializers.VarianceScaling):
    """PyTorch's `kaiming_normal_` (fan-in, ReLU gain): `N(0, 2 / fan_in)`, not truncated.

    The papers' input-kernel initialisation for psMNIST (Geadah et al. 2020; Geadah et al. 2024). Keras'
    `he_normal` uses a truncated normal; this one matches the authors' PyTorch code.

    Args:
        seed: optional seed.
    """

    def __init__(self, seed=None):
        super().__init__(scale=2.0, mode="fan_in", distribution="untruncated_normal", seed=seed)

    def get_config(self):
        return {"seed": self.seed if isinstance(self.seed, int) or self.seed is None else None}


_NAMES = {
    "henaff": Henaff,
    "kaiming": KaimingNormal,
    "kaiming_normal": KaimingNormal,
    "gamma_gain": GammaGain,
}


def get(identifier):
    """Like `keras.initializers.get`, plus the names `"henaff"`, `"kaiming"` and `"gamma_gain"`."""
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    return keras.initializers.get(identifier)


def names():
    """The initializer names `get` takes: Keras' (`"zeros"`, `"he_normal"`, ...) and the above."""
    return sorted({*_checks.public_names(keras.initializers), *_NAMES})
