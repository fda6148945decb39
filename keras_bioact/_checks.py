"""Argument checks shared by the layers, initializers and constraints (private).

A bad argument raises, at construction time, `ValueError("<owner>: `<arg>` must be <the legal
values>, got <value>.")`. This module imports nothing of keras_bioact, so every package may use it.
"""

import math
import numbers


def choice(value, choices, arg, owner):
    """`value` if it is one of the strings `choices`, else a `ValueError` listing them."""
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"{owner}: `{arg}` must be one of {listing(choices)}, got {value!r}.")


def number(value, arg, owner, none=False):
    """`value` as a float if it is a finite real number (bools rejected; `None` kept if `none`),
    else a `ValueError`."""
    if none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        legal = "None or a finite number" if none else "a finite number"
        raise ValueError(f"{owner}: `{arg}` must be {legal}, got {value!r}.")
    return float(value)


def identifier(get, value, arg, owner, legal):
    """`get(value)` (e.g. `keras.constraints.get`), or a `ValueError` naming `arg` and saying what
    is `legal` (a text, or a `(what, get, candidate names)` triple whose names that `get` accepts
    are listed; computed only for the error message)."""
    try:
        return get(value)
    except Exception as e:  # any failure of a lookup means: not a legal identifier
        if not isinstance(legal, str):
            what, lookup, candidates = legal
            legal = f"{what} or one of the names {listing(n for n in candidates if _accepts(lookup, n))}"
        raise ValueError(f"{owner}: `{arg}` must be {legal}, got {value!r}.") from e


def public_names(module):
    """The lower-case public callables of a Keras module such as `keras.constraints` (its names)."""
    return sorted(
        name
        for name in dir(module)
        if name.islower()
        and not name.startswith("_")
        and name not in ("get", "serialize", "deserialize")
        and callable(getattr(module, name))
    )


def listing(names):
    return ", ".join(repr(n) for n in names)


def _accepts(get, name):
    try:
        get(name)
    except Exception:
        return False
    return True
