"""Validation helpers shared by the families' Optuna sub-spaces (plain Python, no imports of
Keras or Optuna). `keras_bioact.search.space` re-exports `SpaceError`."""

from __future__ import annotations

import dataclasses
import math

from keras_bioact.errors import BioactError

__all__ = [
    "SpaceError",
    "SubSpace",
    "check_bool",
    "choices",
    "int_choices",
    "suggest_choice",
    "suggest_float",
    "value_range",
]


class SpaceError(BioactError):
    """An invalid search space. `key` is the dotted path of the offending entry."""

    def __init__(self, key, message):
        self.key = key
        super().__init__(f"{key}: {message}")


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value_range(value, key, lo_min, hi_max, *, lo_exclusive=False):
    """A pair `[low, high]` of finite numbers within `[lo_min, hi_max]` (`(lo_min, ...` if exclusive)."""
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


def choices(value, key, legal=None, kind=None):
    """A non-empty tuple of distinct choices (a single value counts as one choice)."""
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


def int_choices(value, key, lo, hi):
    out = choices(value, key, kind=int)
    for v in out:
        if not lo <= v <= hi:
            raise SpaceError(key, f"choice {v} out of range [{lo}, {hi}]")
    return out


def check_bool(value, key):
    if not isinstance(value, bool):
        raise SpaceError(key, f"must be true or false, got {value!r}")
    return value


def check_keys(data, cls, key):
    if not isinstance(data, dict):
        raise SpaceError(key, f"must be a table, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            raise SpaceError(f"{key}.{k}", f"unknown key; legal keys: {', '.join(sorted(names))}")


class SubSpace:
    """Base of the families' sub-space dataclasses: `to_dict` / `from_dict(data, key)`."""

    def to_dict(self):
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, SubSpace):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data, key=None):
        key = key or cls._KEY
        check_keys(data, cls, key)
        obj = cls(**data)
        obj.validate(key)
        return obj


def suggest_choice(trial, name, options):
    """`trial.suggest_categorical(name, options)`, or the only option without asking."""
    options = list(options)
    return options[0] if len(options) == 1 else trial.suggest_categorical(name, options)


def suggest_float(trial, name, bounds, log=False):
    """`trial.suggest_float(name, low, high, log=log)`, or `low` without asking if low == high."""
    lo, hi = bounds
    return float(lo) if lo == hi else trial.suggest_float(name, lo, hi, log=log)
