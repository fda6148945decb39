"""Search spaces for activation search, as plain data.

A `SearchSpace` lists the activation families to try and, for each parametric family, the
ranges and choices of its parameters. It is a dataclass tree that converts to and from a
plain dict (`to_dict` / `from_dict`), so a space can live in a TOML or JSON file; nothing in
a space is code. `sample(space, trial)` turns a space into one concrete activation
configuration (a JSON-serialisable dict) by asking an Optuna trial (or anything with
`suggest_float` / `suggest_int` / `suggest_categorical`, such as `optuna.trial.FixedTrial`).

Families:

* baselines: Keras built-ins `relu`, `elu`, `gelu`, `swish`, `tanh`, `sigmoid`;
* `gamma`: `keras_bioact.layers.GammaActivation` with gain `n` (log-uniform) and saturation `s`
  as initial (or, in the `static` regime, fixed) values; regimes `static` (nothing learned),
  `homogeneous` (one learned pair per layer), `heterogeneous` (one learned pair per neuron);
  `init = "paper"` uses the papers' `n0 = 5 + 2 U(0, 1)`, `s0 = 0` instead of sampled values;
* `bru`: `keras_bioact.layers.BRU` with a form (`eru` / `oru`) and one radix `r` per layer
  (sampled lazily, one parameter `bru_r{i}` per activation site of the model);
* `two_arg`: two-argument units (`keras_bioact.layers.TwoArgDense`) with a shared inner MLP of
  `depth` hidden layers of `inner_width` units, `arity` 1 or 2, LayerNorm on/off, pairing.

Parameter names in the study: `family`, `gamma_n`, `gamma_s`, `gamma_regime`, `gamma_init`,
`bru_form`, `bru_r0`, `bru_r1`, ..., `bru_trainable_r`, `two_arg_inner_width`, `two_arg_depth`,
`two_arg_arity`, `two_arg_normalize`, `two_arg_pairing`. A choice with a single option is not
suggested (it is fixed), so it does not clutter importance plots.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

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

BASELINES = ("relu", "elu", "gelu", "swish", "tanh", "sigmoid")
PARAMETRIC = ("gamma", "bru", "two_arg")
FAMILIES = BASELINES + PARAMETRIC
GAMMA_REGIMES = ("static", "homogeneous", "heterogeneous")
GAMMA_INITS = ("sampled", "paper")
BRU_FORMS = ("eru", "oru")
PAIRINGS = ("adjacent", "split")


class SpaceError(ValueError):
    """An invalid search space. `key` is the dotted path of the offending entry."""

    def __init__(self, key, message):
        self.key = key
        super().__init__(f"{key}: {message}")


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _range(value, key, lo_min, hi_max, *, lo_exclusive=False):
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value):
        raise SpaceError(key, f"must be a pair [low, high] of finite numbers, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise SpaceError(key, f"low {lo} is greater than high {hi}")
    if (lo <= lo_min) if lo_exclusive else (lo < lo_min):
        op = ">" if lo_exclusive else ">="
        raise SpaceError(key, f"low must be {op} {lo_min}, got {lo}")
    if hi > hi_max:
        raise SpaceError(key, f"high must be <= {hi_max}, got {hi}")
    return (lo, hi)


def _choices(value, key, legal=None, kind=None):
    if isinstance(value, (str, bool, int)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpaceError(key, f"must be a non-empty list of choices, got {value!r}")
    out = []
    for v in value:
        if kind is bool and not isinstance(v, bool):
            raise SpaceError(key, f"choices must be true/false, got {v!r}")
        if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise SpaceError(key, f"choices must be integers, got {v!r}")
        if legal is not None and v not in legal:
            raise SpaceError(key, f"unknown choice {v!r}; legal: {', '.join(map(repr, legal))}")
        if v not in out:
            out.append(v)
    return tuple(out)


def _int_choices(value, key, lo, hi):
    out = _choices(value, key, kind=int)
    for v in out:
        if not lo <= v <= hi:
            raise SpaceError(key, f"choice {v} out of range [{lo}, {hi}]")
    return out


def _check_keys(data, cls, key):
    if not isinstance(data, dict):
        raise SpaceError(key, f"must be a table, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            raise SpaceError(f"{key}.{k}", f"unknown key; legal keys: {', '.join(sorted(names))}")


class _Space:
    def to_dict(self):
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, _Space):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data, key=None):
        key = key or cls._KEY
        _check_keys(data, cls, key)
        obj = cls(**data)
        obj.validate(key)
        return obj


@dataclass
class GammaSpace(_Space):
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
        self.n = _range(self.n, f"{key}.n", 0.01, 1000.0)
        self.s = _range(self.s, f"{key}.s", 0.0, 1.0)
        self.regime = _choices(self.regime, f"{key}.regime", GAMMA_REGIMES)
        self.init = _choices(self.init, f"{key}.init", GAMMA_INITS)
        if "static" in self.regime and self.init == ("paper",):
            pass  # static + paper init: fixed n ~ U(5, 7), s = 0; legal
        return self


@dataclass
class BRUSpace(_Space):
    """Bionodal root units (Bhumbra). `form`: choices among `eru`, `oru`; `r`: range of the
    per-layer radix within (0, 10] (>= 1 when `trainable_r` may be true); `log`: sample r
    log-uniformly; `trainable_r`: choices among true/false."""

    _KEY = "space.bru"
    form: tuple = BRU_FORMS
    r: tuple = (1.0, 4.0)
    log: bool = False
    trainable_r: tuple = (False,)

    def validate(self, key=_KEY):
        self.form = _choices(self.form, f"{key}.form", BRU_FORMS)
        self.r = _range(self.r, f"{key}.r", 0.0, 10.0, lo_exclusive=True)
        if not isinstance(self.log, bool):
            raise SpaceError(f"{key}.log", f"must be true or false, got {self.log!r}")
        self.trainable_r = _choices(self.trainable_r, f"{key}.trainable_r", kind=bool)
        if True in self.trainable_r and self.r[0] < 1.0:
            raise SpaceError(f"{key}.r", f"low must be >= 1 when trainable_r may be true, got {self.r[0]}")
        return self


@dataclass
class TwoArgSpace(_Space):
    """Two-argument units (Yoon et al.). Choices of the shared inner MLP's hidden width
    (`inner_width`, 1..1024) and number of hidden layers (`depth`, 1..8), `arity` (1 or 2),
    `normalize` (LayerNorm without affine parameters before the inner net: true/false) and
    `pairing` (`adjacent` or `split`)."""

    _KEY = "space.two_arg"
    inner_width: tuple = (16, 32, 64)
    depth: tuple = (2,)
    arity: tuple = (2,)
    normalize: tuple = (True,)
    pairing: tuple = ("adjacent",)

    def validate(self, key=_KEY):
        self.inner_width = _int_choices(self.inner_width, f"{key}.inner_width", 1, 1024)
        self.depth = _int_choices(self.depth, f"{key}.depth", 1, 8)
        self.arity = _int_choices(self.arity, f"{key}.arity", 1, 2)
        self.normalize = _choices(self.normalize, f"{key}.normalize", kind=bool)
        self.pairing = _choices(self.pairing, f"{key}.pairing", PAIRINGS)
        return self


@dataclass
class SearchSpace(_Space):
    """The whole space: `families` to choose from (baselines and parametric families) and the
    sub-space of each parametric family (used only when the family is listed)."""

    _KEY = "space"
    families: tuple = FAMILIES
    gamma: GammaSpace = field(default_factory=GammaSpace)
    bru: BRUSpace = field(default_factory=BRUSpace)
    two_arg: TwoArgSpace = field(default_factory=TwoArgSpace)

    def validate(self, key=_KEY):
        self.families = _choices(self.families, f"{key}.families", FAMILIES)
        for name in PARAMETRIC:
            getattr(self, name).validate(f"{key}.{name}")
        return self

    def __post_init__(self):
        for name, cls in (("gamma", GammaSpace), ("bru", BRUSpace), ("two_arg", TwoArgSpace)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, cls.from_dict(value, f"space.{name}"))
            elif not isinstance(value, cls):
                raise SpaceError(
                    f"space.{name}",
                    f"must be a table such as [space.{name}], got {type(value).__name__} {value!r}",
                )


def _cat(trial, name, choices):
    choices = list(choices)
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, choices)


def _float(trial, name, bounds, log=False):
    lo, hi = bounds
    return float(lo) if lo == hi else trial.suggest_float(name, lo, hi, log=log)


def sample(space, trial):
    """Sample one activation configuration (a JSON-serialisable dict) from `space`.

    Per-layer BRU radii are not sampled here: `keras_bioact.search.Activation` asks the same
    trial for `bru_r{i}` when the model builder requests the activation of site `i`.
    """
    if isinstance(space, dict):
        space = SearchSpace.from_dict(space)
    family = _cat(trial, "family", space.families)
    config = {"family": family}
    if family == "gamma":
        g = space.gamma
        regime = _cat(trial, "gamma_regime", g.regime)
        init = _cat(trial, "gamma_init", g.init)
        config.update(regime=regime, init=init)
        if init == "sampled":
            config["n"] = _float(trial, "gamma_n", g.n, log=True)
            config["s"] = _float(trial, "gamma_s", g.s)
    elif family == "bru":
        b = space.bru
        config.update(
            form=_cat(trial, "bru_form", b.form),
            trainable_r=bool(_cat(trial, "bru_trainable_r", b.trainable_r)),
            r=[],
        )
    elif family == "two_arg":
        t = space.two_arg
        config.update(
            inner_width=int(_cat(trial, "two_arg_inner_width", t.inner_width)),
            depth=int(_cat(trial, "two_arg_depth", t.depth)),
            arity=int(_cat(trial, "two_arg_arity", t.arity)),
            normalize=bool(_cat(trial, "two_arg_normalize", t.normalize)),
            pairing=_cat(trial, "two_arg_pairing", t.pairing),
        )
    return config


def suggest_bru_r(space, trial, index):
    """Suggest the radix of BRU site `index` (parameter `bru_r{index}`)."""
    b = space.bru
    return _float(trial, f"bru_r{index}", b.r, log=b.log)
