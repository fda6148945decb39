"""Shared plumbing of the keras-bioact layers: per-neuron activation parameters, and the
identifier arguments (initializers, constraints, regularizers, activations), whose bad values
raise a `ValueError` naming the argument and its legal values at construction."""

import keras

from keras_bioact import _checks
from keras_bioact import constraints as bioact_constraints
from keras_bioact import initializers as bioact_initializers


def normalize_shared_axes(shared_axes, layer):
    """Validate `shared_axes` at construction: None, "all", an int or a sequence of ints != 0."""
    if shared_axes is None or shared_axes == "all":
        return shared_axes
    axes = [shared_axes] if isinstance(shared_axes, int) else shared_axes
    try:
        axes = list(axes)
    except TypeError:
        axes = [axes]
    if not axes or any(isinstance(a, bool) or not isinstance(a, int) or a == 0 for a in axes):
        raise ValueError(
            f"{layer}: `shared_axes` must be None, 'all', or non-zero int axes of the input "
            f"(1 .. rank-1, or negative from the end; axis 0 is the batch), got {shared_axes!r}."
        )
    return axes


def param_shape(input_shape, shared_axes, layer):
    """Shape of a per-neuron parameter: `input_shape[1:]` with every shared axis set to 1."""
    rank = len(input_shape)
    if shared_axes == "all":
        return ()
    shape = list(input_shape[1:])
    for axis in shared_axes or ():
        index = axis if axis > 0 else rank + axis
        if not 1 <= index < rank:
            raise ValueError(
                f"{layer}: `shared_axes` entry {axis} is out of range for an input of rank "
                f"{rank}; legal axes are 1..{rank - 1} or -{rank - 1}..-1."
            )
        shape[index - 1] = 1
    for axis, size in enumerate(shape, start=1):
        if size is None:
            raise ValueError(
                f"{layer}: input axis {axis} has unknown size; list it in `shared_axes` "
                f"(e.g. shared_axes=[{axis}]) so that the parameters do not depend on it."
            )
    return tuple(shape)


def initializer(value, name, layer, minimum=None):
    """`keras_bioact.initializers.get`, also taking a plain number, checked against a lower bound."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if minimum is not None and not value > minimum:
            raise ValueError(f"{layer}: `{name}` must be > {minimum}, got {value}.")
        return keras.initializers.Constant(float(value))
    legal = ("a number, a keras initializer (object or config dict)", bioact_initializers.get,
             bioact_initializers.names())
    init = _checks.identifier(bioact_initializers.get, value, name, layer, legal)
    if minimum is not None:
        config = init.get_config()
        low = config.get("value", config.get("minval"))
        if isinstance(init, keras.initializers.Zeros):  # no config, but certainly not > minimum
            low = 0.0
        if isinstance(low, (int, float)) and not low > minimum:
            raise ValueError(
                f"{layer}: `{name}` must produce values > {minimum}; {type(init).__name__} "
                f"with {config} can produce {low}."
            )
    return init


def constraint(value, name, layer):
    """`keras_bioact.constraints.get` (Keras' constraints and the aliases "positive", "unit")."""
    legal = ("None, a keras constraint (object, callable or config dict)", bioact_constraints.get,
             bioact_constraints.names())
    return _checks.identifier(bioact_constraints.get, value, name, layer, legal)


def regularizer(value, name, layer):
    """`keras.regularizers.get`."""
    get = keras.regularizers.get
    legal = ("None, a keras regularizer (object, callable or config dict)", get,
             _checks.public_names(keras.regularizers))
    return _checks.identifier(get, value, name, layer, legal)


def activation(value, name, layer):
    """`keras.activations.get`."""
    get = keras.activations.get
    legal = ("None, a callable", get, _checks.public_names(keras.activations))
    return _checks.identifier(get, value, name, layer, legal)


def deserialized(value, name, layer, legal):
    """A keras object from its config dict (anything else is returned as it is)."""
    def get(v):
        return keras.saving.deserialize_keras_object(v) if isinstance(v, dict) else v

    return _checks.identifier(get, value, name, layer, legal)
