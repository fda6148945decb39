"""Plumbing shared by `TwoArgDense` and `TwoArgConv2D` (not public API)."""

import keras
from keras import ops

from keras_bioact.layers import _params
from keras_bioact.layers.inner_nonlinearity import ARITIES, InnerNonlinearity

PAIRINGS = ("adjacent", "split")


def check_positive_int(value, arg, layer):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: `{arg}` must be a positive int, got {value!r}.")
    return int(value)


def check_dropout(rate, layer):
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{layer}: `dropout` must be a number in [0, 1), got {rate!r}.")
    return float(rate)


def resolve_inner(inner, arity, layer, dtype, groups=1):
    """Return the inner net, checking it against `arity` and `groups` (its number of
    independent nets; layers without a `groups` argument pass 1). Created when `inner` is
    None, with the outer layer's dtype policy `dtype`; a given `inner` keeps its own policy."""
    if arity is not None and (isinstance(arity, bool) or arity not in ARITIES):
        raise ValueError(f"{layer}: `arity` must be 1 or 2, got {arity!r}.")
    if inner is None:
        return InnerNonlinearity(arity=2 if arity is None else arity, groups=groups, dtype=dtype)
    legal = (
        "None or a layer with an `arity` attribute of 1 or 2 (such as "
        "keras_bioact.layers.InnerNonlinearity), or its config"
    )
    inner = _params.deserialized(inner, "inner", layer, legal)
    if not isinstance(inner, keras.layers.Layer) or getattr(inner, "arity", None) not in ARITIES:
        raise ValueError(f"{layer}: `inner` must be {legal}, got {inner!r}.")
    if arity is not None and inner.arity != arity:
        raise ValueError(
            f"{layer}: `arity`={arity} does not match the shared `inner` net's arity "
            f"{inner.arity}; pass arity={inner.arity} (or leave `arity` unset) or an inner net "
            f"built with arity={arity}."
        )
    inner_groups = getattr(inner, "groups", 1)
    if inner_groups != groups:
        where = "`groups`" if groups != 1 else "this layer (one g for all units)"
        raise ValueError(
            f"{layer}: the `inner` net has groups={inner_groups}, but {where} needs "
            f"groups={groups}; pass an inner net built with groups={groups}."
        )
    return inner


def layer_norm(x, axes, epsilon):
    """Layer normalisation without affine parameters over `axes` (float32 for half precision)."""
    dtype = x.dtype
    half = keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16")
    if half:
        x = ops.cast(x, "float32")
    mean = ops.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = ops.mean(ops.square(centered), axis=axes, keepdims=True)
    y = centered * ops.rsqrt(var + epsilon)
    return ops.cast(y, dtype) if half else y


def pair(x, arity, pairing):
    """`(..., arity * N) -> (..., N, arity)`: adjacent pre-activations, or halves ("split")."""
    if arity == 1:
        return ops.expand_dims(x, -1)
    lead = ops.shape(x)[:-1]
    width = x.shape[-1]
    units = width // arity
    if pairing == "adjacent":
        return ops.reshape(x, (*lead, units, arity))
    y = ops.reshape(x, (*lead, arity, units))
    rank = len(x.shape) + 1
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return ops.transpose(y, perm)


def apply_inner(layer, z, training):
    """Normalise, pair, apply the shared g to every pair, drop out. `z`: (..., arity*units).
    g computes in its own compute dtype; its output is cast to the layer's."""
    if layer.normalize:
        z = layer_norm(z, layer._norm_axes(len(z.shape)), layer.epsilon)
    pairs = pair(z, layer.arity, layer.pairing)
    y = ops.cast(ops.squeeze(layer.inner(pairs), -1), layer.compute_dtype)
    if training and layer.dropout > 0:
        y = keras.random.dropout(y, layer.dropout, seed=layer.seed_generator)
    return y


def serialize_inner(inner):
    """The `inner` entry of a two-argument layer's config.

    Inside Keras' object-sharing scope (`model.save`, `keras.saving.load_model`,
    `Model.to_json`) the layer object itself is returned, so that Keras serialises it in place
    and marks every later occurrence with the same `shared_object_id`; loading then restores
    ONE shared instance. (A pre-serialised dict would be copied by Keras before the later
    occurrences are marked, and loading would create one copy per layer.) Outside the scope
    the plain serialised dict is returned, so `get_config()` stays JSON-friendly.
    """
    return inner if _in_sharing_scope() else keras.saving.serialize_keras_object(inner)


_PROBE = keras.initializers.Zeros()  # serialised only to detect Keras' object-sharing scope


def _in_sharing_scope():
    """Whether Keras' object-sharing scope is active, found through the public API: inside it,
    serialising the same object twice marks the second config with `shared_object_id`."""
    keras.saving.serialize_keras_object(_PROBE)
    return "shared_object_id" in keras.saving.serialize_keras_object(_PROBE)


def deserialize_inner(config):
    config = dict(config)
    if isinstance(config.get("inner"), dict):
        config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
    return config


def build_inner(layer):
    if not layer.inner.built:
        groups = getattr(layer.inner, "groups", 1)
        layer.inner.build((None, layer.arity) if groups == 1 else (None, groups, layer.arity))
