"""Weight constraints used by the keras-bioact layers.

A constraint is applied by Keras after every optimizer update, on every backend. The
layers use `Bounds` as the single source of truth for a parameter's legal range: the
parameter view, the search spaces and the evolution engine read the bounds from it.
"""

import keras
from keras import ops

from keras_bioact import _checks

__all__ = ["Bounds", "get", "names"]


@keras.saving.register_keras_serializable(package="keras_bioact")
class Bounds(keras.constraints.Constraint):
    """Clips a weight into `[min_value, max_value]` after each update.

    Args:
        min_value: lower bound, or `None` for no lower bound.
        max_value: upper bound, or `None` for no upper bound.
    """

    def __init__(self, min_value=None, max_value=None):
        min_value = _checks.number(min_value, "min_value", "Bounds", none=True)
        max_value = _checks.number(max_value, "max_value", "Bounds", none=True)
        if min_value is not None and max_value is not None and min_value > max_value:
            raise ValueError(
                f"Bounds: `min_value` ({min_value}) must be <= `max_value` ({max_value})."
            )
        self.min_value = min_value
        self.max_value = max_value

    def __call__(self, w):
        if self.min_value is not None:
            w = ops.maximum(w, ops.cast(self.min_value, w.dtype))
        if self.max_value is not None:
            w = ops.minimum(w, ops.cast(self.max_value, w.dtype))
        return w

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value}

    def __repr__(self):
        return f"Bounds(min_value={self.min_value}, max_value={self.max_value})"


_ALIASES = {"unit": (0.0, 1.0), "unit_interval": (0.0, 1.0), "positive": (1e-2, None)}


def get(identifier):
    """Like `keras.constraints.get`, plus the aliases `"unit"` ([0, 1]) and `"positive"`."""
    if isinstance(identifier, str) and identifier in _ALIASES:
        return Bounds(*_ALIASES[identifier])
    return keras.constraints.get(identifier)


def names():
    """The constraint names `get` takes: Keras' (`"non_neg"`, `"max_norm"`, ...) and the aliases."""
    return sorted({*_checks.public_names(keras.constraints), *_ALIASES})


def bounds_of(constraint):
    """`(low, high)` implied by a constraint (`None` for an open side)."""
    if isinstance(constraint, Bounds):
        return constraint.min_value, constraint.max_value
    if isinstance(constraint, keras.constraints.NonNeg):
        return 0.0, None
    return None, None
