"""The candidate activations of `keras_bioact.layers.MixtureActivation`: one table.

Each entry is `name -> Candidate(fn, layer, doc)`: `fn(x)` computes the activation with
`keras.ops` (and `keras_bioact.ops`) on a float32 tensor, and `layer` is
`(class name, keyword arguments)` of the plain layer that `discretize` puts in the mixture's
place (a `keras.layers.Activation`, or a fixed `GammaActivation` / `BRU`). The float64 NumPy
reference of each candidate is `keras_bioact.reference.MIXTURE_CANDIDATES[name]`.

Bounded growth: every candidate satisfies `|f(x)| <= |x| + 1` for every finite `x`
(`tests/layers/test_mixture_activation.py` checks it on a grid up to the float32 maximum), so
a mixture (weights in [0, 1] summing to 1) cannot overflow where its input does not and needs
no clipping. An operation that grows faster (`exp`, `x**2`) must be clipped before it joins
this table. GELU is written here as `x * (0.5 + 0.5 erf(x / sqrt 2))` because the backends'
`x * (1 + erf) / 2` overflows to inf for `|x|` above half the float32 maximum.

This module is the one place the mixture's candidates are declared (a later unification with
the composed activations' primitives replaces it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from keras import ops

from keras_bioact import ops as bioact_ops

__all__ = ["CANDIDATES", "Candidate", "DEFAULT_CANDIDATES", "names"]

# Fixed parameters of the project's own shapes as mixture candidates.
GAMMA_N, GAMMA_S = 5.0, 0.5
BRU_R = 2.0


class Candidate(NamedTuple):
    fn: object
    layer: tuple
    doc: str


def _gelu(x):
    return x * (0.5 + 0.5 * ops.erf(x * (1.0 / math.sqrt(2.0))))


def _keras(name):
    return ("Activation", {"activation": name})


CANDIDATES = {
    "identity": Candidate(lambda x: x, _keras("linear"), "x"),
    "relu": Candidate(ops.relu, _keras("relu"), "max(x, 0)"),
    "gelu": Candidate(_gelu, _keras("gelu"), "x Phi(x) (exact, erf)"),
    "silu": Candidate(lambda x: x * ops.sigmoid(x), _keras("silu"), "x sigmoid(x)"),
    "elu": Candidate(ops.elu, _keras("elu"), "x for x > 0, exp(x) - 1 otherwise"),
    "tanh": Candidate(ops.tanh, _keras("tanh"), "tanh(x)"),
    "sigmoid": Candidate(ops.sigmoid, _keras("sigmoid"), "1 / (1 + exp(-x))"),
    "softplus": Candidate(ops.softplus, _keras("softplus"), "log(1 + exp(x))"),
    "mish": Candidate(lambda x: x * ops.tanh(ops.softplus(x)), _keras("mish"), "x tanh(softplus(x))"),
    "leaky_relu": Candidate(
        lambda x: ops.leaky_relu(x, 0.2), _keras("leaky_relu"), "x for x > 0, 0.2 x otherwise"
    ),
    "softsign": Candidate(ops.softsign, _keras("softsign"), "x / (1 + |x|)"),
    "gamma": Candidate(
        lambda x: bioact_ops.gamma(x, GAMMA_N, GAMMA_S),
        (
            "GammaActivation",
            {
                "n_initializer": GAMMA_N,
                "s_initializer": GAMMA_S,
                "shared_axes": "all",
                "trainable_params": [],
            },
        ),
        f"gamma(x; n={GAMMA_N}, s={GAMMA_S}) (Geadah et al.), fixed",
    ),
    "eru": Candidate(
        lambda x: bioact_ops.eru(x, BRU_R),
        ("BRU", {"form": "eru", "r": BRU_R}),
        f"ERU of radix r={BRU_R} (Bhumbra), fixed",
    ),
    "oru": Candidate(
        lambda x: bioact_ops.oru(x, BRU_R),
        ("BRU", {"form": "oru", "r": BRU_R}),
        f"ORU of radix r={BRU_R} (Bhumbra), fixed",
    ),
}

DEFAULT_CANDIDATES = ("identity", "relu", "gelu", "silu", "elu", "tanh", "softplus", "sigmoid")


def names():
    """The legal candidate names, in table order."""
    return tuple(CANDIDATES)
