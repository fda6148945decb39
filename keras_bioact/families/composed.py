"""The composed family: activations composed of unary and binary primitives
(`keras_bioact.layers.ComposedActivation`, grammar in `keras_bioact.expressions`), searched over
the schemas `u(x)`, `u1(u2(x))` and `b(u1(x), u2(x))` of Ramachandran et al. 2017 and
Bingham & Miikkulainen 2023 (written from the papers' text; no AQuaSurF code or data used).

Optuna parameters: `composed_schema`, then the slots the schema has: `composed_b` (binary),
`composed_u1`, `composed_u2` (unary), and `composed_sharing`. Functionally equal expressions
have equal `fingerprint`s (`keras_bioact.expressions.fingerprint`), which the Optuna objective
uses so that a study does not train the same function twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bioact import expressions
from keras_bioact.families import Family, register_family
from keras_bioact.families.space import SpaceError, SubSpace, choices, suggest_choice

__all__ = ["SHARINGS", "ComposedSpace", "reference"]

SHARINGS = ("layer", "neuron")


@dataclass
class ComposedSpace(SubSpace):
    """Composed activations. `schemas`: choices among `"u(x)"`, `"u1(u2(x))"`,
    `"b(u1(x), u2(x))"` (whitespace-insensitive); `unary`: the unary primitives a slot `u1`,
    `u2` may take (default: all 26); `binary`: the binary primitives of `b` (default: all 6);
    `sharing`: choices among `layer` (one value of each learnable scalar per layer) and
    `neuron` (one per neuron, per channel on feature maps). The schemas fix the depth (at most
    two nested calls), so there is no separate depth setting."""

    _KEY = "space.composed"
    schemas: tuple = expressions.SCHEMAS
    unary: tuple = expressions.UNARY
    binary: tuple = expressions.BINARY
    sharing: tuple = ("layer",)

    def validate(self, key=_KEY):
        schemas = choices(self.schemas, f"{key}.schemas")
        for s in schemas:
            if expressions.canonical_schema(s) is None:
                legal = ", ".join(map(repr, expressions.SCHEMAS))
                raise SpaceError(f"{key}.schemas", f"unknown schema {s!r}; legal: {legal}")
        self.schemas = tuple(dict.fromkeys(expressions.canonical_schema(s) for s in schemas))
        self.unary = choices(self.unary, f"{key}.unary", expressions.UNARY)
        self.binary = choices(self.binary, f"{key}.binary", expressions.BINARY)
        self.sharing = choices(self.sharing, f"{key}.sharing", SHARINGS)
        return self


def sample(c, trial):
    schema = suggest_choice(trial, "composed_schema", c.schemas)
    slots = expressions.schema_slots(schema)
    filled = {}
    if "b" in slots:
        filled["b"] = suggest_choice(trial, "composed_b", c.binary)
    filled["u1"] = suggest_choice(trial, "composed_u1", c.unary)
    if "u2" in slots:
        filled["u2"] = suggest_choice(trial, "composed_u2", c.unary)
    sharing = suggest_choice(trial, "composed_sharing", c.sharing)
    return {"expression": expressions.fill_schema(schema, **filled), "sharing": sharing}


def normalize(config):
    if "expression" not in config:
        raise ValueError("composed: the configuration needs an `expression`, e.g. 'mul(x, sigmoid(x))'.")
    config["expression"] = str(expressions.parse(config["expression"]))
    config.setdefault("sharing", "layer")
    if config["sharing"] not in SHARINGS:
        raise ValueError(f"composed: `sharing` must be one of {SHARINGS}, got {config['sharing']!r}.")
    return config


def layer(activation, index=0, name=None, channel_axes=None):
    from keras_bioact.layers import ComposedActivation

    c = activation.config
    shared = "all" if c["sharing"] == "layer" else channel_axes
    return ComposedActivation(c["expression"], shared_axes=shared, name=name)


def reference(x, expression, **scalars):
    """The expression in float64 (`keras_bioact.expressions.reference`); `scalars`: the
    learnable scalars by weight name (missing ones at their initial values)."""
    return expressions.reference(expression, x, scalars)


def reference_params(unit):
    from keras import ops

    params = {"expression": unit.expression}
    for name in unit.bioact_parameters:
        params[name] = np.asarray(ops.convert_to_numpy(getattr(unit, name)), dtype="float64")
    return params


def fingerprint(config):
    """The expression's fingerprint; with learnable scalars shared per neuron, marked as such
    (the same function at initialisation, but more to learn than per layer)."""
    expression = config["expression"]
    fp = expressions.fingerprint(expression)
    if config.get("sharing", "layer") != "layer" and expressions.parameter_names(expression):
        fp += "/" + config["sharing"]
    return fp


FAMILY = register_family(
    Family(
        name="composed",
        description="ComposedActivation: unary/binary primitives, e.g. mul(x, sigmoid(x))",
        reference=reference,
        reference_params=reference_params,
        layer=layer,
        defaults={"expression": "silu(x)", "sharing": "layer"},
        normalize=normalize,
        space_cls=ComposedSpace,
        sample=sample,
        fingerprint=fingerprint,
        curve_label=lambda layer: layer.expression,
    )
)
