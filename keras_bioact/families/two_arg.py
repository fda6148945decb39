"""The two-argument family (Yoon et al.): `keras_bioact.layers.TwoArgDense` / `TwoArgConv2D`
units sharing ONE inner MLP `g` (`InnerNonlinearity`) per `Activation`; its weights form the
evolution target `"inner"`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bioact.families import Family, register_family
from keras_bioact.families.space import SubSpace, choices, int_choices, suggest_choice

__all__ = ["PAIRINGS", "TWO_ARG_MISSING", "TwoArgSpace", "reference"]

PAIRINGS = ("adjacent", "split")
TWO_ARG_MISSING = "two_arg family requires keras_bioact.layers.TwoArgDense"


@dataclass
class TwoArgSpace(SubSpace):
    """Two-argument units (Yoon et al.). Choices of the shared inner MLP's hidden width
    (`inner_width`, 1..1024) and number of hidden layers (`depth`, 1..8), `arity` (1 or 2),
    `normalize` (LayerNorm without affine parameters before the inner net: true/false) and
    `pairing` (`adjacent` or `split`), and `groups` (1..64: independent inner nets, KAT-style;
    only the `transformer` template's `TwoArgFeedForward` blocks take more than 1)."""

    _KEY = "space.two_arg"
    inner_width: tuple = (16, 32, 64)
    depth: tuple = (2,)
    arity: tuple = (2,)
    normalize: tuple = (True,)
    pairing: tuple = ("adjacent",)
    groups: tuple = (1,)

    def validate(self, key=_KEY):
        self.inner_width = int_choices(self.inner_width, f"{key}.inner_width", 1, 1024)
        self.depth = int_choices(self.depth, f"{key}.depth", 1, 8)
        self.arity = int_choices(self.arity, f"{key}.arity", 1, 2)
        self.normalize = choices(self.normalize, f"{key}.normalize", kind=bool)
        self.pairing = choices(self.pairing, f"{key}.pairing", PAIRINGS)
        self.groups = int_choices(self.groups, f"{key}.groups", 1, 64)
        return self


def sample(t, trial):
    return {
        "inner_width": int(suggest_choice(trial, "two_arg_inner_width", t.inner_width)),
        "depth": int(suggest_choice(trial, "two_arg_depth", t.depth)),
        "arity": int(suggest_choice(trial, "two_arg_arity", t.arity)),
        "normalize": bool(suggest_choice(trial, "two_arg_normalize", t.normalize)),
        "pairing": suggest_choice(trial, "two_arg_pairing", t.pairing),
        "groups": int(suggest_choice(trial, "two_arg_groups", t.groups)),
    }


DEFAULTS = {"inner_width": 64, "depth": 2, "arity": 2, "normalize": True, "pairing": "adjacent", "groups": 1}


def _layers():
    try:
        from keras_bioact.layers import InnerNonlinearity, TwoArgConv2D, TwoArgDense
    except ImportError as e:  # pragma: no cover - depends on the installed package version
        raise ImportError(TWO_ARG_MISSING) from e
    return InnerNonlinearity, TwoArgDense, TwoArgConv2D


def unit(activation, index=0):
    """The shared inner network g of `activation` (one per `Activation`)."""
    InnerNonlinearity, _, _ = _layers()
    c = activation.config
    return activation.shared(
        "inner",
        lambda: InnerNonlinearity(
            arity=int(c["arity"]),
            hidden_units=(int(c["inner_width"]),) * int(c["depth"]),
            groups=int(c.get("groups", 1)),
        ),
    )


def block(activation, kind, index, size, *args, **kwargs):
    _, TwoArgDense, TwoArgConv2D = _layers()
    c = activation.config
    if int(c.get("groups", 1)) != 1:
        raise ValueError(
            f"two_arg: groups={c['groups']} (several inner nets) is for the `transformer` template's "
            "feed-forward blocks; TwoArgDense / TwoArgConv2D blocks share one g (groups = 1)."
        )
    options = dict(inner=unit(activation), pairing=c["pairing"], normalize=bool(c["normalize"]))
    if kind == "dense":  # (Dense keyword arguments are for the plain Dense of other families)
        return [TwoArgDense(size, **options)]
    return [TwoArgConv2D(size, *args, **options, **kwargs)]


def reference(z, kernels, biases, activation="relu"):
    """The inner MLP g on `z` of shape (..., arity) in float64; output (..., 1). Grouped nets
    (kernels `(G, n_in, n_out)`): `z` of shape (..., G, arity), net k on index k of axis -2."""
    if activation != "relu":
        raise ValueError(f"two_arg reference: only a relu inner MLP is modelled, got {activation!r}.")
    h = np.asarray(z, dtype="float64")
    for i, (k, b) in enumerate(zip(kernels, biases, strict=True)):
        k = np.asarray(k, dtype="float64")
        h = (np.einsum("...gi,gio->...go", h, k) if k.ndim == 3 else h @ k) + np.asarray(b, dtype="float64")
        if i < len(kernels) - 1:
            h = np.maximum(h, 0.0)
    return h


def reference_params(inner):
    from keras import activations, ops

    def get(name):
        return np.asarray(ops.convert_to_numpy(getattr(inner, name)), dtype="float64")

    return {
        "kernels": [get(f"kernel_{i}") for i in range(inner.depth)],
        "biases": [get(f"bias_{i}") for i in range(inner.depth)],
        "activation": activations.serialize(inner.activation),
    }


def inspect(layer, names):
    arity = getattr(layer, "arity", None)
    return {2: "surface", 1: "inner_curve"}.get(arity) if names else None


FAMILY = register_family(
    Family(
        name="two_arg",
        description="two-argument units sharing one inner MLP g(a, b)",
        reference=reference,
        reference_params=reference_params,
        block=block,
        unit=unit,
        defaults=DEFAULTS,
        space_cls=TwoArgSpace,
        sample=sample,
        target="inner",
        catch_all=True,
        inspect=inspect,
        curve_label=lambda layer: "inner g(x)",
        probe_shape=lambda activation: (
            (5, int(activation.config["arity"]))
            if int(activation.config.get("groups", 1)) == 1
            else (5, int(activation.config["groups"]), int(activation.config["arity"]))
        ),
    )
)
