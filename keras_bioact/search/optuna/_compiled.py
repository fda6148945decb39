"""Compile once per architecture: trials whose models differ only in values share one
compiled model.

A trial builds its model as usual (cheap: no compilation), seeded as usual. If an earlier
trial of this objective compiled a model of the same architecture, that model takes the new
model's weights (every variable: the layers' weights and the activation parameters, which are
variables, not constants), its optimizer goes back to its freshly built state with the trial's
learning rate, and its already compiled train and evaluation functions are reused. The trial
then trains exactly what it would have trained on a new model, without XLA compiling it again.

Two models share an architecture when their configurations are equal once layer names and
initial values (`*_initializer`, and activation parameters given by value such as BRU's `r`)
are left out; trainability, shapes, dtypes, forms and
connectivity all count.
"""

from __future__ import annotations

import collections
import json
import re

__all__ = ["CompiledModels", "architecture_key"]

_INIT = re.compile(r".*_initializer$")


def _strip(value, values):
    """`value` without initial values: `*_initializer` entries and activation parameters
    given by value (such as BRU's `r`), which all become variables."""
    if isinstance(value, dict):
        return {
            k: _strip(v, values)
            for k, v in value.items()
            if not (isinstance(k, str) and (_INIT.match(k) or k in values))
        }
    if isinstance(value, (list, tuple)):
        return [_strip(v, values) for v in value]
    return value


def _parameter_names(layer, out):
    """`bioact_parameters` of `layer` and the layers inside it."""
    out.update(getattr(layer, "bioact_parameters", ()) or ())
    for sub in getattr(layer, "layers", []) or []:
        _parameter_names(sub, out)
    return out


def _layer_names(config, out):
    """Names of the layers listed in a (nested) model configuration (input layers included)."""
    if isinstance(config, dict):
        for item in config.get("layers", []) if isinstance(config.get("layers"), list) else []:
            name = item.get("config", {}).get("name") if isinstance(item, dict) else None
            if isinstance(name, str):
                out.add(name)
        for value in config.values():
            _layer_names(value, out)
    elif isinstance(config, list):
        for value in config:
            _layer_names(value, out)
    return out


def architecture_key(model):
    """A string equal for two models exactly when they have the same architecture."""
    config = _strip(model.get_config(), _parameter_names(model, set()))
    names = _layer_names(config, {model.name})
    tokens = {}

    def rename(value):  # string values only (never keys), numbered in traversal order
        if isinstance(value, dict):
            return {k: rename(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, str) and value in names:
            return tokens.setdefault(value, f"<layer {len(tokens)}>")
        return value

    return json.dumps({"class": type(model).__name__, "config": rename(config)}, default=str)


class CompiledModels:
    """A small LRU cache of compiled models, one per architecture.

    Args:
        compile_model: `compile_model(model)` compiles a new model (the objective's
            optimizer, loss and metrics).
        size: number of architectures kept (least recently used dropped first).
    """

    def __init__(self, compile_model, size=8):
        self._compile = compile_model
        self._size = int(size)
        self._models = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, model, learning_rate=None):
        """The compiled model to train in place of `model` (a freshly built, uncompiled model).

        Returns `model` itself, compiled, on the first use of its architecture; otherwise the
        cached model of that architecture holding `model`'s weights and a reset optimizer."""
        if not getattr(model, "built", False):
            self._compile(model)
            return _with_learning_rate(model, learning_rate)
        key = architecture_key(model)
        entry = self._models.get(key)
        if entry is None:
            self.misses += 1
            self._compile(model)
            optimizer = model.optimizer
            optimizer.build(model.trainable_variables)
            self._models[key] = (model, [_host(v) for v in optimizer.variables])
            if len(self._models) > self._size:
                self._models.popitem(last=False)
            return _with_learning_rate(model, learning_rate)
        self.hits += 1
        self._models.move_to_end(key)
        cached, initial = entry
        for target, source in zip(cached.variables, model.variables, strict=True):
            target.assign(source.value)
        for variable, value in zip(cached.optimizer.variables, initial, strict=True):
            variable.assign(value)
        return _with_learning_rate(cached, learning_rate)


def _with_learning_rate(model, learning_rate):
    if learning_rate is not None:
        model.optimizer.learning_rate = float(learning_rate)
    return model


def _host(value):
    import numpy as np
    from keras import ops

    return np.array(ops.convert_to_numpy(value))
