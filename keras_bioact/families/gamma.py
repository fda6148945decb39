"""The gamma family: `keras_bioact.layers.GammaActivation` (Geadah et al.), gain `n` and
saturation `s`, learned per neuron, per layer, or fixed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bioact.families import Family, register_family
from keras_bioact.families.space import (
    SubSpace,
    choices,
    suggest_choice,
    suggest_float,
    value_range,
)
from keras_bioact.reference import gamma as reference

__all__ = ["GAMMA_INITS", "GAMMA_REGIMES", "GammaSpace", "reference"]

GAMMA_REGIMES = ("static", "homogeneous", "heterogeneous")
GAMMA_INITS = ("sampled", "paper")


@dataclass
class GammaSpace(SubSpace):
    """Gamma activation (Geadah et al.). `n`: log-uniform range of the gain (initial or fixed
    value), within [0.01, 1000]; `s`: uniform range of the saturation within [0, 1]; `regime`:
    choices among `static`, `homogeneous`, `heterogeneous`; `init`: choices among `sampled`
    (use the sampled n, s as initial values) and `paper` (n0 = 5 + 2U(0,1), s0 = 0)."""

    _KEY = "space.gamma"
    n: tuple = (1.0, 20.0)
    s: tuple = (0.0, 1.0)
    regime: tuple = GAMMA_REGIMES
    init: tuple = ("sampled",)

    def validate(self, key=_KEY):
        self.n = value_range(self.n, f"{key}.n", 0.01, 1000.0)
        self.s = value_range(self.s, f"{key}.s", 0.0, 1.0)
        self.regime = choices(self.regime, f"{key}.regime", GAMMA_REGIMES)
        self.init = choices(self.init, f"{key}.init", GAMMA_INITS)
        return self  # static + paper init (fixed n ~ U(5, 7), s = 0) is legal


def sample(g, trial):
    regime = suggest_choice(trial, "gamma_regime", g.regime)
    init = suggest_choice(trial, "gamma_init", g.init)
    config = {"regime": regime, "init": init}
    if init == "sampled":
        config["n"] = suggest_float(trial, "gamma_n", g.n, log=True)
        config["s"] = suggest_float(trial, "gamma_s", g.s)
    return config


def normalize(config):
    config.setdefault("regime", "heterogeneous")
    config.setdefault("init", "sampled" if "n" in config else "paper")
    if config["regime"] not in GAMMA_REGIMES:
        raise ValueError(f"gamma: `regime` must be one of {GAMMA_REGIMES}, got {config['regime']!r}.")
    return config


def layer(activation, index=0, name=None, channel_axes=None):
    from keras_bioact.layers import GammaActivation

    c = activation.config
    kwargs = {}
    if c["init"] == "sampled":
        kwargs.update(n_initializer=float(c["n"]), s_initializer=float(c["s"]))
    regime = c["regime"]
    return GammaActivation(
        shared_axes="all" if regime == "homogeneous" else channel_axes,
        trainable_params=() if regime == "static" else ("n", "s"),
        name=name,
        **kwargs,
    )


def _numpy(variable):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(variable), dtype="float64")


def reference_params(unit):
    return {"n": _numpy(unit.n), "s": _numpy(unit.s)}


def inspect(layer, names):
    return "gamma" if {"n", "s"} <= set(names) else None


FAMILY = register_family(
    Family(
        name="gamma",
        description="GammaActivation: (1 - s) softplus(n x) / n + s sigmoid(n x)",
        reference=reference,
        reference_params=reference_params,
        layer=layer,
        normalize=normalize,
        space_cls=GammaSpace,
        sample=sample,
        target="gamma",
        parameter_names=("n", "s"),
        inspect=inspect,
        curve_label=lambda layer: "gamma(x; n, s)",
    )
)
