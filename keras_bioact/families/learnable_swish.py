"""The learnable Swish family: `x * sigmoid(beta * x)` with a trainable `beta` per neuron
(Ramachandran, Zoph & Le, "Searching for activation functions", arXiv:1710.05941, 2017;
`beta = 1` is SiLU, `beta = 0` the linear map `x / 2`, and the unit tends to ReLU as
`beta -> inf`).

The family's declaration: the layer (`keras_bioact.layers.LearnableSwish`), the Optuna
sub-space (`[space.learnable_swish]`), the evolution target `"learnable_swish"` (the
per-neuron `beta`), the inspector curve and the NumPy reference (`keras_bioact.reference.swish`).
Its conversion rule from Keras `silu`/`swish` (exact at `beta = 1`) is in
`keras_bioact.conversion`. Importing this module does not import Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bioact.families import Family, register_family
from keras_bioact.families.space import (
    SpaceError,
    SubSpace,
    check_bool,
    choices,
    suggest_choice,
    suggest_float,
    value_range,
)
from keras_bioact.reference import swish as reference

__all__ = ["LearnableSwishSpace", "REGIMES", "reference"]

NAME = "learnable_swish"
REGIMES = ("static", "homogeneous", "heterogeneous")
BETA_MAX = 100.0  # the search space's upper limit for beta


# ------------------------------------------------------------------ Optuna sub-space


@dataclass
class LearnableSwishSpace(SubSpace):
    """Learnable Swish (Ramachandran et al.). `beta`: range of the initial (or, in the `static`
    regime, fixed) `beta` within [0, 100] (> 0 when `log`); `log`: sample `beta`
    log-uniformly; `regime`: choices among `static` (fixed `beta`), `homogeneous` (one learned
    `beta` per layer) and `heterogeneous` (one learned `beta` per neuron)."""

    _KEY = f"space.{NAME}"
    beta: tuple = (0.25, 4.0)
    log: bool = True
    regime: tuple = REGIMES

    def validate(self, key=_KEY):
        self.beta = value_range(self.beta, f"{key}.beta", 0.0, BETA_MAX)
        check_bool(self.log, f"{key}.log")
        if self.log and self.beta[0] <= 0.0:
            raise SpaceError(f"{key}.beta", f"low must be > 0 when log = true, got {self.beta[0]}")
        self.regime = choices(self.regime, f"{key}.regime", REGIMES)
        return self


def sample(space, trial):
    return {
        "regime": suggest_choice(trial, f"{NAME}_regime", space.regime),
        "beta": suggest_float(trial, f"{NAME}_beta", space.beta, log=space.log),
    }


def normalize(config):
    config.setdefault("regime", "heterogeneous")
    config.setdefault("beta", 1.0)
    if config["regime"] not in REGIMES:
        raise ValueError(f"{NAME}: `regime` must be one of {REGIMES}, got {config['regime']!r}.")
    config["beta"] = float(config["beta"])
    return config


def layer(activation, index=0, name=None, channel_axes=None):
    from keras_bioact.layers import LearnableSwish

    c = activation.config
    return LearnableSwish(
        beta_initializer=c["beta"],
        shared_axes="all" if c["regime"] == "homogeneous" else channel_axes,
        trainable=c["regime"] != "static",
        name=name,
    )


def reference_params(unit):
    from keras import ops

    return {"beta": np.asarray(ops.convert_to_numpy(unit.beta), dtype="float64")}


def inspect(layer, names):
    return NAME if getattr(layer, "bioact_family", None) == NAME and "beta" in names else None


FAMILY = register_family(
    Family(
        name=NAME,
        description="LearnableSwish: x * sigmoid(beta x), beta per neuron",
        reference=reference,
        reference_params=reference_params,
        layer=layer,
        normalize=normalize,
        space_cls=LearnableSwishSpace,
        sample=sample,
        target=NAME,
        parameter_names=("beta",),
        inspect=inspect,
        curve_label=lambda layer: "x sigmoid(beta x)",
    )
)
