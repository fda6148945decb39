"""Shared plumbing for the keras-bioact recurrent cells."""

from keras import ops


def check_units(value, name, layer):
    """A strictly positive int (bools rejected), else `ValueError` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{layer}: `{name}` must be a positive integer (>= 1), got {value!r}.")
    return value


def split_drive(inputs, units, drive_input):
    """Split step inputs into `(x, drive)`; drive is the last `units` features when enabled."""
    if not drive_input:
        return inputs, None
    return inputs[..., :-units], inputs[..., -units:]


def input_dim(input_shape, units, drive_input, layer):
    dim = input_shape[-1]
    if dim is None:
        raise ValueError(f"{layer}: the last input axis must be known, got input shape {input_shape}.")
    if drive_input:
        if dim <= units:
            raise ValueError(
                f"{layer}: with `drive_input=True` the inputs must have more than `units` ({units}) "
                f"features (data features followed by a {units}-wide pre-activation drive), got {dim}. "
                "Use `keras_bioact.layers.PreactivationDrive(units)` to append the drive."
            )
        dim -= units
    return dim


def preactivation(x, h, kernel, recurrent_kernel, bias, drive):
    a = ops.matmul(x, kernel) + ops.matmul(h, recurrent_kernel)
    if bias is not None:
        a = a + bias
    if drive is not None:
        a = a + drive
    return a
