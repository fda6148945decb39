"""Calibrating and checking a converted model on probe inputs (private helper of `convert`).

During a probe pass every new activation layer is observed through a temporary per-instance
wrapper of its `call` (removed afterwards; nothing is traced or saved with it): the first
pass measures the per-parameter standard deviation of each ReLU-like unit's input, which
sets its gain `n`; the last pass compares each new activation with the original one on the
very tensors it receives, and the model outputs with the original model's.
"""

import contextlib
import math

import keras
import numpy as np
from keras import ops

from keras_bioact.layers.gamma_activation import GammaActivation

PROBE_BATCH = 4
# The largest calibrated gain. At n = 1e6 a gamma is within ln2 / n = 7e-7 of the ReLU: a few
# float32 ulps for inputs of order 1, the scale training brings pre-activations to (BatchNorm in
# training mode, standardised inputs). A larger gain fits only probe pre-activations of tiny scale
# (untrained deep models in inference mode reach std 1e-11, which asked for n = 2.5e15 in
# MobileNetV2): an exactness that the first training step undoes, while n could not be trained
# back (the gradient of gamma with respect to n is at most ln2 / n**2 in magnitude).
GAIN_BOUND = 1e6
_N_OBSERVE = 1e20  # during the std pass only: a ReLU to float32 precision at any input scale
_N_MIN = 0.01
_MAX_ROUNDS = 4


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def default_probe(model, batch=PROBE_BATCH, seed=0):
    """Standard-normal inputs of the model's input shape, or None if it has unknown or non-float inputs."""
    if isinstance(model, keras.Sequential):
        inputs = getattr(model, "inputs", None)
        structure = inputs[0] if inputs and len(inputs) == 1 else None
    else:
        try:
            structure = model.input
        except (AttributeError, ValueError):
            structure = None
    if structure is None:
        return None
    rng = np.random.default_rng(seed)
    tensors = keras.tree.flatten(structure)
    for t in tensors:
        if any(d is None for d in tuple(t.shape)[1:]) or "float" not in str(t.dtype):
            return None
    return keras.tree.map_structure(
        lambda t: rng.standard_normal((batch, *tuple(t.shape)[1:])).astype("float32"), structure
    )


def _scale(y):
    """The scale of a tensor: its std, but at least 0.1 % of its largest magnitude (else 1).

    The floor keeps float32 round-off of a nearly constant tensor (e.g. the softmax outputs of
    an untrained classifier, std ~1e-10) from counting as a deviation.
    """
    top = float(np.max(np.abs(y))) if y.size else 0.0
    scale = max(float(np.std(y)), 1e-3 * top)
    return scale if scale > 0 else 1.0


def _reduce_axes(unit, rank):
    shared = unit.shared_axes
    if shared == "all":
        return tuple(range(rank))
    return tuple(sorted({0, *(a if a > 0 else rank + a for a in (shared or ()))}))


@contextlib.contextmanager
def _observing(records, observe):
    """Temporarily route each new layer's `call` through `observe(record, inputs, outputs)`."""
    hooked = []
    try:
        for record in records:
            top = record["top"]
            original = top.call

            def call(inputs, *args, _original=original, _record=record, **kwargs):
                outputs = _original(inputs, *args, **kwargs)
                observe(_record, inputs, outputs)
                return outputs

            object.__setattr__(top, "call", call)
            hooked.append(top)
        yield
    finally:
        for top in hooked:
            object.__delattr__(top, "call")


def _observe_std(record, inputs, outputs):
    x = _numpy(inputs)
    std = np.std(x, axis=_reduce_axes(record["unit"], x.ndim), keepdims=True)
    std = std.reshape(tuple(record["unit"].n.shape))
    record["input_std"] = np.maximum(record.get("input_std", std), std)
    scale = _scale(_numpy(record["reference_fn"](inputs)))
    record["output_scale"] = max(record.get("output_scale", scale), scale)


def _observe_deviation(record, inputs, outputs):
    new = _numpy(outputs)
    if record["rescale"] is not None:
        new = new * record["rescale"][0] + record["rescale"][1]
    old = _numpy(record["reference_fn"](inputs))
    dev = float(np.max(np.abs(new - old))) if new.size else 0.0
    record["relative_deviation"] = max(record.get("relative_deviation", 0.0), dev / _scale(old))


def _gains(record, factor):
    """`n = factor * c / min(std(input), scale of the original output)`, per parameter, within
    `[_N_MIN, GAIN_BOUND]` (a zero std gives the bound).

    `c` is the factor by which the fixed arithmetic scales the gamma's deviation at its kink
    (`|scale|`, times the kink's distance from 0 when gated), so the new layer's deviation
    `c ln2 / n` is `ln2 / factor` times the scales of its inputs and outputs.
    """
    recipe = record["recipe"]
    c = abs(recipe.scale) * (max(1.0, abs(recipe.pre_shift / recipe.pre_scale)) if recipe.gate else 1.0)
    std = np.minimum(record["input_std"], record["output_scale"])
    with np.errstate(divide="ignore"):
        return np.clip(factor * c / std, _N_MIN, GAIN_BOUND)


def _set_gains(records, factor):
    for record in records:
        unit = record["unit"]
        unit.n.assign(_gains(record, factor).astype(unit.n.dtype))


def _mark_degenerate(record, factor):
    """Record the parameters whose probe inputs are degenerate: zero or near-zero spread (a
    constant, or a scale so small that the gain for `factor` would exceed `GAIN_BOUND`), so that
    the probe cannot calibrate their gain and it stays at the bound."""
    degenerate = _gains(record, factor) >= GAIN_BOUND
    if degenerate.any():
        std = np.minimum(record["input_std"], record["output_scale"])
        record["degenerate"] = (int(degenerate.sum()), int(degenerate.size), float(std[degenerate].max()))


def _outputs(model, probe):
    return [_numpy(y) for y in keras.tree.flatten(model(probe, training=False))]


def _compare(before, after):
    absolute = max(
        float(np.max(np.abs(a - b))) if b.size else 0.0 for a, b in zip(after, before, strict=True)
    )
    relative = max(
        (float(np.max(np.abs(a - b))) / _scale(b) if b.size else 0.0)
        for a, b in zip(after, before, strict=True)
    )
    scale = min(_scale(b) for b in before)
    return absolute, relative, scale


def calibrate(model, new_model, records, probe, tolerance, calibrate_gains):
    """Calibrate ReLU-like gamma gains (if `calibrate_gains`) and measure deviations on `probe`.

    Gains are set per parameter to `n = factor / min(std(input), std(original output))`,
    `factor = ln 2 / (tolerance / 2)` (a gamma with gain `n` is at most `ln 2 / n` above the
    ReLU, at 0; see `_gains`); while the model's outputs still move by more than half the
    `tolerance` times their scale (a margin for inputs other than the probe), `factor` is
    raised 4x (at most 3 times). Gains are bounded by `GAIN_BOUND`; parameters whose probe
    inputs ask for more at the first `factor` (zero or near-zero spread) are degenerate:
    `record["degenerate"] = (count, total, largest std among them)`. Fills
    `record["relative_deviation"]`.

    Returns:
        dict with `output_deviation` (max abs difference of the outputs),
        `relative_output_deviation` (the same over the outputs' scale, their std) and
        `output_scale`.
    """
    before = _outputs(model, probe)
    relu_records = [
        r
        for r in records
        if calibrate_gains
        and r["recipe"] is not None
        and r["recipe"].unit == "relu"
        and isinstance(r["unit"], GammaActivation)
    ]
    if relu_records:
        for record in relu_records:
            unit = record["unit"]
            # n = 1e20: a ReLU to float32 precision, so every unit sees the original pre-activations.
            unit.n.assign(np.full(tuple(unit.n.shape), _N_OBSERVE, dtype=unit.n.dtype))
        with _observing(relu_records, _observe_std):
            new_model(probe, training=False)
    def measure(factor):
        """Set the gains for `factor`, then compare the converted outputs with the original ones."""
        if relu_records:
            _set_gains(relu_records, factor)
        for record in records:
            record.pop("relative_deviation", None)
        with _observing(records, _observe_deviation):
            after = _outputs(new_model, probe)
        return _compare(before, after)

    factor = math.log(2.0) / (0.5 * tolerance)  # half the tolerance per layer
    for record in relu_records:
        _mark_degenerate(record, factor)
    previous = math.inf
    for round_ in range(_MAX_ROUNDS):
        absolute, relative, scale = measure(factor)
        if relu_records and relative > previous:  # a higher gain did not help: back to the last one
            factor /= 4.0
            absolute, relative, scale = measure(factor)
            break
        if (
            not relu_records
            or relative <= 0.5 * tolerance
            or relative > 0.5 * previous
            or round_ == _MAX_ROUNDS - 1
        ):
            break
        previous = relative
        factor *= 4.0
    return {"output_deviation": absolute, "relative_output_deviation": relative, "output_scale": scale}
