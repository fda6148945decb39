"""The convert rule of the gamma family (`GammaActivation`): recipes, fits, calibration."""

import numpy as np

from keras_bioact import reference
from keras_bioact.conversion._recipes import FALLBACK_RELU_GAIN, fit_gamma, gamma_recipe
from keras_bioact.conversion.rules import ConvertRule, register_rule


def _numpy(variable):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(variable), dtype="float64")


def _parameters(converter, spec):
    """`(recipe, {"n", "s"} or None for the layer defaults)`."""
    recipe = gamma_recipe(spec, converter.affine)
    if converter.init == "default":
        return recipe, None
    if recipe.unit == "relu":
        gain = FALLBACK_RELU_GAIN if converter.relu_gain is None else converter.relu_gain
        return recipe, {"n": float(gain), "s": 0.0}
    if recipe.unit == "fixed":
        return recipe, {"n": recipe.n, "s": recipe.s}
    low, high = converter.probe_range
    n_max = float(max(converter.relu_gain or FALLBACK_RELU_GAIN, 20.0))
    return recipe, fit_gamma(spec, recipe, low, high, 0.05, n_max)


def make(converter, spec, name, shared_axes, dtype):
    from keras_bioact.layers import GammaActivation

    recipe, params = _parameters(converter, spec)
    kwargs = {} if params is None else {"n_initializer": params["n"], "s_initializer": params["s"]}
    correction = None
    if converter.exact and converter.affine and recipe.unit == "fit" and params is not None:
        correction = {"activation": spec.name, "n": params["n"], "s": params["s"]}
    use_adapter = recipe.needs_adapter or correction is not None
    unit_name = converter.unique_name(f"{name}_unit") if use_adapter else name
    unit = GammaActivation(
        shared_axes=shared_axes,
        trainable_params=("n", "s") if converter.trainable else (),
        name=unit_name,
        dtype=dtype,
        **kwargs,
    )
    return {
        "unit": unit,
        "recipe": recipe,
        "form": None,
        "correction": correction,
        "use_adapter": use_adapter,
    }


def _summary(values):
    low, high = float(values.min()), float(values.max())
    return low if low == high else f"{low:.4g}..{high:.4g}"


def deviation(record, probe):
    unit, recipe, spec = record["unit"], record["recipe"], record["spec"]
    n = _numpy(unit.n).reshape(-1)
    s = np.broadcast_to(_numpy(unit.s).reshape(-1), n.shape)
    pairs = np.unique(np.stack([n, s], axis=1), axis=0)
    y = recipe.compose(probe[:, None], lambda z: reference.gamma(z, pairs[None, :, 0], pairs[None, :, 1]))
    if record["correction"] is not None:  # + the fixed difference to the original at (n0, s0)
        c = record["correction"]
        original = spec.numpy()(probe)
        y = y + (original - recipe.compose(probe, lambda z: reference.gamma(z, c["n"], c["s"])))[:, None]
    return y, {"n": _summary(n), "s": _summary(s)}


def trial(model, activation):
    """A saved model converted for one trial: `regime` sets the sharing (`homogeneous`: one
    pair per layer, otherwise one per channel) and whether `n, s` learn (`static`: fixed);
    `init = "paper"` keeps the model's function (`convert(init="match")`), `init = "sampled"`
    starts every unit at the sampled `(n, s)`."""
    from keras_bioact.conversion._convert import convert
    from keras_bioact.conversion._graph import fill, layers_of
    from keras_bioact.layers import GammaActivation

    c = activation.config
    model = convert(
        model,
        family="gamma",
        sharing="all" if c["regime"] == "homogeneous" else "channel",
        trainable=c["regime"] != "static",
        init="match" if c["init"] == "paper" else "default",
        warn_deviation=None,
    )
    if c["init"] == "sampled":
        for unit in layers_of(model, GammaActivation):
            fill(unit.n, c["n"])
            fill(unit.s, c["s"])
    return model


RULE = register_rule(
    "gamma",
    ConvertRule(make=make, deviation=deviation, default_sharing="channel", calibrates=True, trial=trial),
)
