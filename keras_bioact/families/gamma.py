"""The gamma family: `keras_bioact.layers.GammaActivation` (Geadah et al.), gain `n` and
saturation `s`, learned per neuron, per layer, or fixed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bioact.families import ConvertRule, Family, register_family
from keras_bioact.families._space import (
    SubSpace,
    choices,
    fill,
    layers_of,
    suggest_choice,
    suggest_float,
    value_range,
)

__all__ = ["GAMMA_INITS", "GAMMA_REGIMES", "GammaSpace", "reference"]

GAMMA_REGIMES = ("static", "homogeneous", "heterogeneous")
GAMMA_INITS = ("sampled", "paper")


@dataclass
class GammaSpace(SubSpace):
    """Gamma activation (Geadah et al.). `n`: log-uniform range of the gain (initial or fixed
    value), within [0.01, 1000]; `s`: uniform range of the saturation within [0, 1]; `regime`:
    choices among `static`, `homogeneous`, `heterogeneous`; `init`: choices among `sampled`
    (use the sampled n, s as initial values) and `paper` (n0 = 5 + 2U(0,1), s0 = 0)."""

    _KEY = "space.gamma"
    n: tuple = (1.0, 20.0)
    s: tuple = (0.0, 1.0)
    regime: tuple = GAMMA_REGIMES
    init: tuple = ("sampled",)

    def validate(self, key=_KEY):
        self.n = value_range(self.n, f"{key}.n", 0.01, 1000.0)
        self.s = value_range(self.s, f"{key}.s", 0.0, 1.0)
        self.regime = choices(self.regime, f"{key}.regime", GAMMA_REGIMES)
        self.init = choices(self.init, f"{key}.init", GAMMA_INITS)
        return self  # static + paper init (fixed n ~ U(5, 7), s = 0) is legal


def sample(g, trial):
    regime = suggest_choice(trial, "gamma_regime", g.regime)
    init = suggest_choice(trial, "gamma_init", g.init)
    config = {"regime": regime, "init": init}
    if init == "sampled":
        config["n"] = suggest_float(trial, "gamma_n", g.n, log=True)
        config["s"] = suggest_float(trial, "gamma_s", g.s)
    return config


def normalize(config):
    config.setdefault("regime", "heterogeneous")
    config.setdefault("init", "sampled" if "n" in config else "paper")
    if config["regime"] not in GAMMA_REGIMES:
        raise ValueError(f"gamma: `regime` must be one of {GAMMA_REGIMES}, got {config['regime']!r}.")
    return config


def layer(activation, index=0, name=None, channel_axes=None):
    from keras_bioact.layers import GammaActivation

    c = activation.config
    kwargs = {}
    if c["init"] == "sampled":
        kwargs.update(n_initializer=float(c["n"]), s_initializer=float(c["s"]))
    regime = c["regime"]
    return GammaActivation(
        shared_axes="all" if regime == "homogeneous" else channel_axes,
        trainable_params=() if regime == "static" else ("n", "s"),
        name=name,
        **kwargs,
    )


def reference(x, n, s):
    """`(1 - s) softplus(n x) / n + s sigmoid(n x)` in float64."""
    x, n, s = (np.asarray(v, dtype="float64") for v in (x, n, s))
    z = n * x
    return (1.0 - s) * np.logaddexp(0.0, z) / n + s * 0.5 * (1.0 + np.tanh(0.5 * z))


def _numpy(variable):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(variable), dtype="float64")


def reference_params(unit):
    return {"n": _numpy(unit.n), "s": _numpy(unit.s)}


def inspect(layer, names):
    return "gamma" if {"n", "s"} <= set(names) else None


# ------------------------------------------------------------------ convert rule


def _parameters(converter, spec):
    """`(recipe, {"n", "s"} or None for the layer defaults)`."""
    from keras_bioact._convert_graph import FALLBACK_RELU_GAIN
    from keras_bioact._convert_recipes import fit_gamma, gamma_recipe

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


def convert_make(converter, spec, name, shared_axes, dtype):
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


def convert_deviation(record, probe):
    from keras_bioact._convert_recipes import reference as activation_reference

    unit, recipe = record["unit"], record["recipe"]
    n = _numpy(unit.n).reshape(-1)
    s = np.broadcast_to(_numpy(unit.s).reshape(-1), n.shape)
    pairs = np.unique(np.stack([n, s], axis=1), axis=0)
    y = recipe.compose(probe[:, None], lambda z: reference(z, pairs[None, :, 0], pairs[None, :, 1]))
    if record["correction"] is not None:  # + the fixed difference to the original at (n0, s0)
        c = record["correction"]
        y = (
            y
            + (
                activation_reference(record["spec"])(probe)
                - recipe.compose(probe, lambda z: reference(z, c["n"], c["s"]))
            )[:, None]
        )
    return y, {"n": _summary(n), "s": _summary(s)}


def convert_trial(model, activation):
    """A saved model converted for one trial: `regime` sets the sharing (`homogeneous`: one
    pair per layer, otherwise one per channel) and whether `n, s` learn (`static`: fixed);
    `init = "paper"` keeps the model's function (`convert(init="match")`), `init = "sampled"`
    starts every unit at the sampled `(n, s)`."""
    from keras_bioact.convert import convert
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


FAMILY = register_family(
    Family(
        name="gamma",
        description="GammaActivation: (1 - s) softplus(n x) / n + s sigmoid(n x)",
        reference=reference,
        reference_params=reference_params,
        layer=layer,
        normalize=normalize,
        space_cls=GammaSpace,
        sample=sample,
        target="gamma",
        parameter_names=("n", "s"),
        convert=ConvertRule(
            make=convert_make,
            deviation=convert_deviation,
            default_sharing="channel",
            calibrates=True,
            trial=convert_trial,
        ),
        inspect=inspect,
        curve_label=lambda layer: "gamma(x; n, s)",
    )
)
