"""Convert rules: how `keras_bioact.convert(model, family=...)` builds each family's unit.

A family of the registry (`keras_bioact.families`) can be converted to once a `ConvertRule` is
registered for its name (`register_rule`); the built-in rules (gamma, bru, learnable_swish)
are registered when `keras_bioact.conversion` is imported. Importing this module does not
import Keras.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from keras_bioact import families as registry

__all__ = ["ConvertRule", "get_rule", "register_rule", "rule_names"]


@dataclasses.dataclass(frozen=True)
class ConvertRule:
    """How `keras_bioact.convert(model, family=...)` replaces a built-in Keras activation.

    Attributes:
        make: `make(converter, spec, name, shared_axes, dtype) -> dict` with `unit` (the new
            layer), `recipe` (a `keras_bioact.conversion._recipes.Recipe` or None), `form` (or
            None), `correction` (or None) and `use_adapter` (wrap the unit in an
            `ActivationAdapter` built from the recipe). `converter` carries the options of the
            `convert` call (`init`, `trainable`, `relu_gain`, `affine`, `form`, `probe_range`,
            `exact`) and `unique_name(base)`; `spec` is the activation (`.name`, `.params`).
        deviation: `deviation(record, probe) -> (y, params)`: the new activation on the probe
            grid `probe` (G,) for each distinct initial parameter value, shape (G, K), float64,
            and a summary of those values for the report.
        supports: optional `supports(spec) -> bool`; activations it refuses are skipped with a
            reason (default: every activation `convert` knows).
        default_sharing: `sharing` used when `convert(..., sharing=None)`.
        calibrates: the family's ReLU-like units are calibrated on probe inputs (gamma).
        trial: optional `trial(model, activation) -> model`: a loaded saved model converted to
            one search trial's configuration (`activation`, a `keras_bioact.search.Activation`
            of this family). Families with it can search a saved model (`[model] path`).
    """

    make: Callable
    deviation: Callable
    supports: Callable | None = None
    default_sharing: str = "channel"
    calibrates: bool = False
    trial: Callable | None = None


_RULES: dict[str, ConvertRule] = {}


def register_rule(family, rule, *, replace=False):
    """Register `rule` (a `ConvertRule`) for the registered family called `family`; return it.

    Raises `ValueError` for an unknown family (naming the legal ones) or if the family already
    has a rule (unless `replace=True`), `TypeError` if `rule` is not a `ConvertRule`.
    """
    registry.get_family(family)
    if not isinstance(rule, ConvertRule):
        raise TypeError(f"register_rule: `rule` must be a ConvertRule, got {type(rule).__name__}.")
    if family in _RULES and not replace:
        raise ValueError(f"register_rule: family {family!r} already has a convert rule.")
    _RULES[family] = rule
    return rule


def rule_names():
    """Names of the families with a convert rule, in registration order."""
    return tuple(_RULES)


def get_rule(family):
    """The `ConvertRule` of `family`; `ValueError` naming the families with one otherwise."""
    try:
        return _RULES[family]
    except (KeyError, TypeError):
        raise ValueError(f"convert: `family` must be one of {rule_names()}, got {family!r}.") from None
