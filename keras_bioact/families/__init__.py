"""The activation-family registry: every family keras-bioact can search, evolve, convert to
and draw is declared here once, as a `Family`. How `keras_bioact.convert` builds a family's
unit is the family's convert rule, registered under its name in `keras_bioact.conversion`.

A family declaration holds:

* the layer factory `search.Activation` uses (`layer`; `block` for families whose
  nonlinearity is part of the Dense/Conv layer, such as two-argument units; an optional
  `kernel_initializer` for the Dense/Conv before the activation);
* its Optuna sub-space: a dataclass (`space_cls`, read from `[space.<name>]`) and
  `sample(sub_space, trial) -> dict`; per-site parameters (one value per activation site,
  like BRU's radix) through `site_key` and `suggest_site`;
* its evolution target (`target`) and how its parameters are recognised
  (`parameter_names`, or `catch_all` for "every activation parameter no other target claims");
* an optional inspector hook (`inspect(layer, names) -> kind`) and curve label;
* its NumPy reference `reference(x, **params)` (float64) and `reference_params(unit)`, the
  parameters of a built unit in the form `reference` takes.

Importing this package imports neither Keras nor Optuna nor torch: the factories import what
they need when called, so spec validation (`family_names()`, `get_family(name).space_cls`)
stays fast.

Adding a family is one new module that calls `register_family(Family(...))`, imported at the
bottom of this file (or by the user's own code before the family is used). This package may
import `keras_bioact.layers` (inside the factories) but never `keras_bioact.conversion`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

__all__ = [
    "Family",
    "family_names",
    "get_family",
    "parametric_names",
    "baseline_names",
    "register_family",
    "target_names",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Family:
    """One activation family.

    Attributes:
        name: the family's name in specs, configs and trial parameters (lowercase, `_`).
        reference: NumPy reference `reference(x, **params)` in float64.
        reference_params: `reference_params(unit) -> dict`: the parameters of a built unit (the
            layer `Activation.unit` returns) in the form `reference` takes; arrays broadcast
            against the unit's input. Default: no parameters.
        baseline: a fixed Keras built-in (no parameters, no sub-space).
        description: one line for listings and error messages.
        layer: `layer(activation, index, name, channel_axes) -> keras layer` for site `index`
            of `activation` (a `keras_bioact.search.Activation`); None if the family has no
            standalone activation layer (then `block` builds whole blocks).
        block: `block(activation, kind, index, units_or_filters, *args, **kwargs) -> list of
            layers` for `kind` in {"dense", "conv2d"}, or None for "Dense/Conv + layer(...)".
        unit: `unit(activation, index) -> layer`: the layer `study.best_activation` returns
            and the NumPy reference describes. Default: `layer(activation, index)`.
        kernel_initializer: `kernel_initializer(activation, index)` of the Dense/Conv before
            the activation, or None for Keras' default.
        normalize: `normalize(config) -> config`: fills the family's defaults into an
            activation configuration (a dict with `family`).
        space_cls: dataclass of the family's Optuna sub-space (`[space.<name>]`), with
            `from_dict(data, key)`, `to_dict()` and `validate(key)`; None for no sub-space.
        sample: `sample(sub_space, trial) -> dict` of the family's configuration entries.
        site_key: configuration key of a per-site list of values (one per activation site),
            filled lazily by `suggest_site(sub_space, trial, index)` when a trial is given, or
            by `site_default(values)` otherwise.
        target: the evolution target this family's parameters form (`select_parameters`).
        parameter_names: names of the `ActivationParameter`s the target takes.
        catch_all: the target also takes every parameter no other target claims.
        inspect: `inspect(layer, names) -> kind or None`: the inspector's kind for a layer
            whose activation parameters are named `names` (None: not this family's layer).
            A kind equal to the family's name draws `reference` curves of each neuron.
        curve_label: `curve_label(layer) -> str`, the formula in the inspector's titles.
        probe_shape: `probe_shape(activation) -> shape` of a test input of the unit.
        fingerprint: `fingerprint(config) -> str`: equal for configurations that compute the
            same function (the Optuna objective then reuses the earlier trial's value instead
            of training again); None: every configuration is distinct.
    """

    name: str
    reference: Callable
    reference_params: Callable = lambda unit: {}
    baseline: bool = False
    description: str = ""
    layer: Callable | None = None
    block: Callable | None = None
    unit: Callable | None = None
    kernel_initializer: Callable | None = None
    normalize: Callable | None = None
    space_cls: type | None = None
    sample: Callable | None = None
    site_key: str | None = None
    suggest_site: Callable | None = None
    site_default: Callable | None = None
    target: str | None = None
    parameter_names: tuple = ()
    catch_all: bool = False
    inspect: Callable | None = None
    curve_label: Callable | None = None
    probe_shape: Callable = lambda activation: (4, 6)
    fingerprint: Callable | None = None
    defaults: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"Family: `name` must be lowercase letters, digits and '_', got {self.name!r}.")
        if not callable(self.reference):
            raise ValueError(f"Family {self.name!r}: `reference` must be a function, got {self.reference!r}.")
        if self.layer is None and self.block is None and not self.baseline:
            raise ValueError(f"Family {self.name!r}: give `layer` or `block` (how to build it).")
        if (self.space_cls is None) != (self.sample is None):
            raise ValueError(f"Family {self.name!r}: `space_cls` and `sample` go together.")
        if self.site_key is not None and self.suggest_site is None:
            raise ValueError(f"Family {self.name!r}: `site_key` needs `suggest_site`.")
        if (self.parameter_names or self.catch_all) and self.target is None:
            raise ValueError(f"Family {self.name!r}: `parameter_names`/`catch_all` need a `target`.")

    @property
    def parametric(self):
        return not self.baseline

    def normalized(self, config):
        """`config` (a dict with `family`) with the family's defaults filled in (a new dict)."""
        config = {**dict(self.defaults), **dict(config)}
        return self.normalize(config) if self.normalize is not None else config


_REGISTRY: dict[str, Family] = {}
_RESERVED_TARGETS = ("all",)


def register_family(family, *, replace=False):
    """Add `family` (a `Family`) to the registry and return it.

    Raises `ValueError` if a family of that name exists (unless `replace=True`), or if its
    evolution target is already claimed by another family or is reserved ("all").
    """
    if not isinstance(family, Family):
        raise TypeError(f"register_family: `family` must be a Family, got {type(family).__name__}.")
    if family.name in _REGISTRY and not replace:
        raise ValueError(f"register_family: a family named {family.name!r} is already registered.")
    if family.target is not None:
        if family.target in _RESERVED_TARGETS or family.target in _REGISTRY and family.name != family.target:
            raise ValueError(f"register_family: target name {family.target!r} is reserved or a family name.")
        for other in _REGISTRY.values():
            if other.name != family.name and other.target == family.target:
                raise ValueError(
                    f"register_family: target {family.target!r} already belongs to family {other.name!r}."
                )
            clash = sorted(set(other.parameter_names) & set(family.parameter_names))
            if other.name != family.name and clash:
                raise ValueError(
                    f"register_family: parameter names {clash} already belong to family {other.name!r}."
                )
    _REGISTRY[family.name] = family
    return family


def get_family(name):
    """The registered `Family` called `name`; `ValueError` naming the legal ones otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation family {name!r}; legal: {', '.join(_REGISTRY)}") from None


def family_names():
    """Names of all registered families, baselines first, in registration order."""
    return baseline_names() + parametric_names()


def baseline_names():
    return tuple(n for n, f in _REGISTRY.items() if f.baseline)


def parametric_names():
    return tuple(n for n, f in _REGISTRY.items() if not f.baseline)


def target_names():
    """Evolution targets: `"all"` and every family's target, in registration order."""
    return ("all", *(f.target for f in _REGISTRY.values() if f.target is not None))


def target_of(parameter_name):
    """The evolution target of an activation parameter called `parameter_name` (or None)."""
    for family in _REGISTRY.values():
        if parameter_name in family.parameter_names:
            return family.target
    for family in _REGISTRY.values():
        if family.catch_all:
            return family.target
    return None


def families_with(attribute):
    """The registered families whose `attribute` (e.g. `"inspect"`) is set."""
    return tuple(f for f in _REGISTRY.values() if getattr(f, attribute) is not None)


# The built-in families (each module registers itself). Order matters for `family_names()`.
from keras_bioact.families import baselines, gamma, bru, two_arg, learnable_swish, composed  # noqa: E402, F401, I001
