"""The activation-parameter view of a model.

Every keras-bioact layer or RNN cell lists the names of its activation parameters in the
attribute (or property) `bioact_parameters` (e.g. `("n", "s")` for `GammaActivation`, `("r",)` for
`BRU`, every weight of a shared inner MLP). `activation_parameters(model)` finds them in any
model, nested models and RNN cells included, each once even when a layer is shared, and
`ParameterView` flattens them to one vector and writes a vector back.

Bounds come from each variable's constraint (`keras_bioact.constraints.Bounds`), so a
vector written back is clipped to the same legal range an optimizer step would be. The
`"unconstrained"` space maps every bounded parameter to the real line
(`low + exp(u)` for a lower bound, `low + (high - low) * sigmoid(u)` for an interval) for
optimisers that cannot handle bounds, such as CMA-ES in EvoTorch or evosax.
"""

import dataclasses
import math

import numpy as np
from keras import ops

from keras_bioact.constraints import bounds_of

__all__ = ["ActivationParameter", "ParameterView", "activation_parameters"]

_EPS = 1e-12


@dataclasses.dataclass(frozen=True)
class ActivationParameter:
    """One activation parameter of a model.

    Attributes:
        layer: the layer (or RNN cell) that owns it.
        name: the parameter's name within the layer (e.g. `"n"`).
        variable: the Keras variable.
        low, high: legal range (`None` for an open side), from the variable's constraint.
    """

    layer: object
    name: str
    variable: object
    low: float | None
    high: float | None

    @property
    def path(self):
        return f"{self.layer.name}/{self.name}"

    @property
    def shape(self):
        return tuple(self.variable.shape)

    @property
    def size(self):
        return int(math.prod(self.shape))

    @property
    def bounds(self):
        """`(low, high)`, `None` for an open side."""
        return self.low, self.high

    @property
    def transform(self):
        if self.low is not None and self.high is not None:
            return "interval"
        if self.low is not None:
            return "lower"
        if self.high is not None:
            return "upper"
        return "identity"

    def clip(self, value):
        if self.low is not None or self.high is not None:
            value = np.clip(value, self.low, self.high)
        return value

    def to_unconstrained(self, value):
        value = np.asarray(value, dtype="float64")
        t = self.transform
        if t == "interval":
            p = np.clip((value - self.low) / (self.high - self.low), _EPS, 1 - _EPS)
            return np.log(p) - np.log1p(-p)
        if t == "lower":
            return np.log(np.maximum(value - self.low, _EPS))
        if t == "upper":
            return np.log(np.maximum(self.high - value, _EPS))
        return value

    def from_unconstrained(self, u):
        # Values that `to_unconstrained` clipped (at a bound, within 1e-12) map back to the
        # bound itself, so that a parameter sitting on its bound round-trips exactly.
        u = np.asarray(u, dtype="float64")
        t = self.transform
        if t == "interval":
            p = 1.0 / (1.0 + np.exp(-u))
            p = np.where(p <= _EPS, 0.0, np.where(p >= 1.0 - _EPS, 1.0, p))
            return self.low + (self.high - self.low) * p
        if t == "lower":
            e = np.exp(np.minimum(u, 700.0))
            return self.low + np.where(e <= _EPS, 0.0, e)
        if t == "upper":
            e = np.exp(np.minimum(u, 700.0))
            return self.high - np.where(e <= _EPS, 0.0, e)
        return u


def walk_layers(model):
    seen = set()
    stack = [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        children = list(layer._flatten_layers(include_self=False, recursive=False))
        cell = getattr(layer, "cell", None)
        if cell is not None and id(cell) not in {id(c) for c in children}:
            children.append(cell)
        stack.extend(reversed(children))


def activation_parameters(model, trainable_only=False):
    """List the activation parameters of `model` (a model, a layer or an RNN cell).

    Args:
        model: the model to inspect; it must be built.
        trainable_only: list only the parameters that are currently trainable.

    Returns:
        A list of `ActivationParameter`, in a stable order (depth-first over layers).
    """
    found = []
    seen_vars = set()
    for layer in walk_layers(model):
        names = getattr(layer, "bioact_parameters", ())
        if names and not layer.built:
            raise ValueError(
                f"activation_parameters: layer {layer.name!r} is not built yet; call the model on "
                "data (or `model.build(input_shape)`) first."
            )
        for name in names:
            variable = getattr(layer, name)
            if id(variable) in seen_vars or (trainable_only and not variable.trainable):
                continue
            seen_vars.add(id(variable))
            low, high = bounds_of(getattr(variable, "constraint", None))
            found.append(ActivationParameter(layer, name, variable, low, high))
    return found


class ParameterView:
    """A flat-vector view of a model's activation parameters.

    Example:
    ```python
    view = ParameterView(model)
    x = view.get_vector()            # natural space, float64, length view.size
    view.set_vector(x * 1.1)         # clipped to each parameter's bounds
    u = view.get_vector("unconstrained")
    ```

    Args:
        model: a built model (or layer).
        parameters: optional list of `ActivationParameter` (default: all of the model's).
        trainable_only: restrict to trainable parameters.
    """

    def __init__(self, model, parameters=None, trainable_only=False):
        self.parameters = (
            list(parameters)
            if parameters is not None
            else activation_parameters(model, trainable_only=trainable_only)
        )
        if not self.parameters:
            raise ValueError(
                "ParameterView: the model has no keras-bioact activation parameters "
                "(no GammaActivation, BRU, two-argument or gamma RNN layer)."
            )
        self.offsets = np.cumsum([0] + [p.size for p in self.parameters])

    @property
    def size(self):
        return int(self.offsets[-1])

    def bounds(self):
        """Per-element `(low, high)` arrays in the natural space (`-inf`/`inf` for open sides)."""
        params = self.parameters
        low = np.concatenate([np.full(p.size, -np.inf if p.low is None else p.low) for p in params])
        high = np.concatenate([np.full(p.size, np.inf if p.high is None else p.high) for p in params])
        return low, high

    def describe(self):
        """One dict per parameter: path, layer, name, shape, size, low, high, transform, trainable."""
        return [
            {
                "path": p.path,
                "layer": p.layer.name,
                "name": p.name,
                "shape": p.shape,
                "size": p.size,
                "low": p.low,
                "high": p.high,
                "transform": p.transform,
                "trainable": bool(p.variable.trainable),
            }
            for p in self.parameters
        ]

    def split(self, vector):
        """Split a flat vector into one array per parameter, shaped like the variable."""
        vector = np.asarray(vector)
        if vector.shape[-1] != self.size:
            raise ValueError(f"ParameterView: expected a vector of length {self.size}, got {vector.shape}.")
        lead = vector.shape[:-1]
        return [
            vector[..., a:b].reshape(lead + p.shape)
            for p, a, b in zip(self.parameters, self.offsets[:-1], self.offsets[1:], strict=True)
        ]

    def get_vector(self, space="natural"):
        _check_space(space)
        parts = []
        for p in self.parameters:
            value = np.asarray(ops.convert_to_numpy(p.variable.value), dtype="float64").reshape(-1)
            parts.append(p.to_unconstrained(value) if space == "unconstrained" else value)
        return np.concatenate(parts)

    def to_natural(self, vector, space="natural"):
        """Map a vector (or a batch of vectors, last axis) to clipped natural values."""
        _check_space(space)
        vector = np.asarray(vector, dtype="float64")
        parts = []
        for p, a, b in zip(self.parameters, self.offsets[:-1], self.offsets[1:], strict=True):
            chunk = vector[..., a:b]
            chunk = p.from_unconstrained(chunk) if space == "unconstrained" else chunk
            parts.append(p.clip(chunk))
        return np.concatenate(parts, axis=-1)

    def set_vector(self, vector, space="natural"):
        """Write a flat vector back into the variables, respecting each parameter's bounds."""
        natural = self.to_natural(vector, space)
        for p, value in zip(self.parameters, self.split(natural), strict=True):
            p.variable.assign(value.astype(p.variable.dtype))


def _check_space(space):
    if space not in ("natural", "unconstrained"):
        raise ValueError(f"ParameterView: `space` must be 'natural' or 'unconstrained', got {space!r}.")
