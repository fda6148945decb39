"""Shared plumbing for the per-neuron activation parameters of keras-bioact layers."""

from keras import initializers


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
    """`keras.initializers.get`, also taking a plain number, checked against a lower bound."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if minimum is not None and not value > minimum:
            raise ValueError(f"{layer}: `{name}` must be > {minimum}, got {value}.")
        return initializers.Constant(float(value))
    init = initializers.get(value)
    if minimum is not None:
        config = init.get_config()
        low = config.get("value", config.get("minval"))
        if isinstance(init, initializers.Zeros):  # no config, but certainly not > minimum
            low = 0.0
        if isinstance(low, (int, float)) and not low > minimum:
            raise ValueError(
                f"{layer}: `{name}` must produce values > {minimum}; {type(init).__name__} "
                f"with {config} can produce {low}."
            )
    return init
