"""Search spaces for activation search, as plain data.

A `SearchSpace` lists the activation families to try and, for each parametric family, the
ranges and choices of its parameters. It converts to and from a plain dict (`to_dict` /
`from_dict`), so a space can live in a TOML or JSON file; nothing in a space is code.
`sample(space, trial)` turns a space into one concrete activation configuration (a
JSON-serialisable dict) by asking an Optuna trial (or anything with `suggest_float` /
`suggest_int` / `suggest_categorical`, such as `optuna.trial.FixedTrial`).

The families, their sub-spaces (`[space.<family>]`) and how each is sampled come from the
family registry (`keras_bioact.families`); see the family modules for each sub-space:

* baselines: Keras built-ins `relu`, `elu`, `gelu`, `swish`, `tanh`, `sigmoid`;
* `gamma` (`GammaSpace`): gain `n` (log-uniform) and saturation `s` as initial (or, in the
  `static` regime, fixed) values; regimes `static`, `homogeneous`, `heterogeneous`;
  `init = "paper"` uses the papers' `n0 = 5 + 2 U(0, 1)`, `s0 = 0` instead of sampled values;
* `bru` (`BRUSpace`): a form (`eru` / `oru`) and one radix `r` per layer (sampled lazily, one
  parameter `bru_r{i}` per activation site of the model);
* `two_arg` (`TwoArgSpace`): two-argument units with a shared inner MLP of `depth` hidden
  layers of `inner_width` units, `arity` 1 or 2, LayerNorm on/off, pairing;
* every other registered family (e.g. the learnable Swish), with its own sub-space.

`learning_rate = [low, high]` also searches the optimizer's learning rate (log-uniform), so a
baseline such as `families = ["relu"]` gets its learning rate tuned with the same trial budget.

Parameter names in the study: `learning_rate` (when searched), `family`, then
`<family>_<parameter>`: `gamma_n`, `gamma_s`, `gamma_regime`, `gamma_init`, `bru_form`,
`bru_r0`, `bru_r1`, ..., `bru_trainable_r`, `two_arg_inner_width`, `two_arg_depth`,
`two_arg_arity`, `two_arg_normalize`, `two_arg_pairing`, .... A choice with a single option is
not suggested (it is fixed), so it does not clutter importance plots.
"""

from __future__ import annotations

from keras_bioact import families as registry
from keras_bioact.families.bru import BRU_FORMS, BRUSpace  # noqa: F401 - re-exported
from keras_bioact.families.gamma import GAMMA_INITS, GAMMA_REGIMES, GammaSpace  # noqa: F401
from keras_bioact.families.space import SpaceError, choices, suggest_choice
from keras_bioact.families.two_arg import PAIRINGS, TwoArgSpace  # noqa: F401

__all__ = [
    "BASELINES",
    "FAMILIES",
    "BRUSpace",
    "GammaSpace",
    "SearchSpace",
    "SpaceError",
    "TwoArgSpace",
    "sample",
]

# Snapshots of the registry at import time (families registered later are still searchable:
# everything below asks the registry itself).
BASELINES = registry.baseline_names()
PARAMETRIC = registry.parametric_names()
FAMILIES = registry.family_names()


def _subspace_families():
    return tuple(
        registry.get_family(n) for n in registry.parametric_names() if registry.get_family(n).space_cls
    )


class SearchSpace:
    """The whole space: `families` to choose from (baselines and parametric families) and the
    sub-space of each parametric family (an attribute named after the family, e.g.
    `space.gamma`, used only when the family is listed).

    Args:
        families: names of registered families (default: all of them).
        learning_rate: `[low, high]`, searched log-uniformly as the trial parameter
            `learning_rate` (the optimizer's learning rate, jointly with the activation), or
            None (default) to train every trial with `budget.learning_rate`.
        **subspaces: `<family>=` a sub-space object or its dict (default: the family's
            default sub-space).
    """

    _KEY = "space"

    def __init__(self, families=None, learning_rate=None, **subspaces):
        self.families = registry.family_names() if families is None else families
        self.learning_rate = learning_rate
        for fam in _subspace_families():
            value = subspaces.pop(fam.name, None)
            if value is None:
                value = fam.space_cls()
            elif isinstance(value, dict):
                value = fam.space_cls.from_dict(value, f"{self._KEY}.{fam.name}")
            elif not isinstance(value, fam.space_cls):
                raise SpaceError(
                    f"{self._KEY}.{fam.name}",
                    f"must be a table such as [space.{fam.name}], got {type(value).__name__} {value!r}",
                )
            setattr(self, fam.name, value)
        if subspaces:
            raise SpaceError(
                f"{self._KEY}.{sorted(subspaces)[0]}",
                f"unknown key; legal keys: {', '.join(sorted(self._keys()))}",
            )

    @classmethod
    def _keys(cls):
        return ("families", "learning_rate", *(f.name for f in _subspace_families()))

    def subspace(self, family):
        """The sub-space of `family` (a name), or None for a family without one."""
        return getattr(self, family, None) if registry.get_family(family).space_cls else None

    def validate(self, key=_KEY):
        self.families = choices(self.families, f"{key}.families", registry.family_names())
        self.learning_rate = _learning_rate_range(self.learning_rate, f"{key}.learning_rate")
        for fam in _subspace_families():
            getattr(self, fam.name).validate(f"{key}.{fam.name}")
        return self

    def to_dict(self):
        out = {"families": list(self.families)}
        if self.learning_rate is not None:
            out["learning_rate"] = list(self.learning_rate)
        for fam in _subspace_families():
            out[fam.name] = getattr(self, fam.name).to_dict()
        return out

    @classmethod
    def from_dict(cls, data, key=None):
        key = key or cls._KEY
        if not isinstance(data, dict):
            raise SpaceError(key, f"must be a table, got {type(data).__name__}")
        legal = cls._keys()
        for k in data:
            if k not in legal:
                raise SpaceError(f"{key}.{k}", f"unknown key; legal keys: {', '.join(sorted(legal))}")
        obj = cls(**data)
        obj.validate(key)
        return obj

    def __eq__(self, other):
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self):
        parts = [f"families={tuple(self.families)!r}"]
        if self.learning_rate is not None:
            parts.append(f"learning_rate={self.learning_rate!r}")
        parts += [f"{f.name}={getattr(self, f.name)!r}" for f in _subspace_families()]
        return f"SearchSpace({', '.join(parts)})"


def _learning_rate_range(value, key):
    if value is None:
        return None
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
    if not ok or not 0 < value[0] <= value[1] <= 10:
        raise SpaceError(key, f"must be [low, high] with 0 < low <= high <= 10 (log-uniform), got {value!r}")
    return [float(value[0]), float(value[1])]


def suggest_learning_rate(space, trial, default):
    """The trial's learning rate: `default` unless `space.learning_rate` is a range, which is
    searched log-uniformly as the parameter `learning_rate` (a range with low == high is fixed)."""
    if space.learning_rate is None:
        return float(default)
    low, high = space.learning_rate
    return low if low == high else float(trial.suggest_float("learning_rate", low, high, log=True))


def sample(space, trial):
    """Sample one activation configuration (a JSON-serialisable dict) from `space`.

    Per-site parameters (such as per-layer BRU radii) are not sampled here:
    `keras_bioact.search.Activation` asks the same trial for them (`bru_r{i}`) when the model
    builder requests the activation of site `i`.
    """
    if isinstance(space, dict):
        space = SearchSpace.from_dict(space)
    family = suggest_choice(trial, "family", space.families)
    config = {"family": family}
    fam = registry.get_family(family)
    if fam.sample is not None:
        config.update(fam.sample(space.subspace(family), trial))
    return config


def suggest_site(space, trial, family, index):
    """Suggest the per-site parameter of site `index` of `family` (e.g. `bru_r{index}`)."""
    fam = registry.get_family(family)
    return fam.suggest_site(space.subspace(family), trial, index)
