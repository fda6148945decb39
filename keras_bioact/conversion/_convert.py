"""`convert` and its report (the docstring of `keras_bioact.conversion` explains the conversions)."""

import dataclasses
import warnings

import keras
import numpy as np

from keras_bioact.conversion._calibrate import GAIN_BOUND, calibrate, default_probe
from keras_bioact.conversion._graph import Converter, is_functional, is_sequential, unsupported
from keras_bioact.conversion._recipes import ALIASES, SUPPORTED_ACTIVATIONS
from keras_bioact.conversion.rules import get_rule

__all__ = ["ConversionReport", "ConvertedActivation", "SUPPORTED_ACTIVATIONS", "convert"]

_INITS = ("match", "default")
_SHARING = ("channel", "all", "element")


@dataclasses.dataclass(frozen=True)
class ConvertedActivation:
    """One replaced activation.

    Attributes:
        path: where the activation was, `"outer_model/inner_model/layer"`.
        activation: the replaced activation (`"relu"`, `"relu6"`, `"leaky_relu(negative_slope=0.3)"`, ...).
        source: `"argument"` (the `activation=` of a Dense/Conv layer, which now has a linear
            activation) or `"layer"` (an activation layer, which was replaced).
        new_layer: name of the new layer in the converted model (the keras-bioact layer, or the
            `ActivationAdapter` around it).
        family: the family converted to, e.g. `"gamma"` or `"bru"` (with `form`, `"eru"`/`"oru"`,
            for BRU).
        parameters: initial parameter values (`{"n": .., "s": ..}` or `{"r": ..}`); a range
            `"low..high"` where they differ per channel; for `init="default"` the drawn range.
        affine: `(scale, offset)` of a fixed affine map after the new unit, or `None`.
        max_deviation: `max |new(x) - old(x)|` over the probe range (2001 points), at the new
            layer's initial weights, in float64.
        composition: the fixed arithmetic around the unit (e.g. `"x*gamma(x)"`), or `None`.
        relative_deviation: `max |new - old| / std(old)` of this activation on the tensors it
            receives during the probe pass, or `None` if no probe pass was made.
        degenerate: `None`, or `(count, total, std)` when the probe inputs of `count` of the
            unit's `total` gains were degenerate (pre-activations with zero or near-zero spread,
            `std` the largest of theirs): those gains could not be calibrated and stay at the
            bound `GAIN_BOUND` (see `keras_bioact.conversion`).
    """

    path: str
    activation: str
    source: str
    new_layer: str
    family: str
    form: str | None
    parameters: dict
    affine: tuple | None
    max_deviation: float
    composition: str | None = None
    relative_deviation: float | None = None
    degenerate: tuple | None = None


@dataclasses.dataclass
class ConversionReport:
    """What `convert` did.

    Attributes:
        converted: list of `ConvertedActivation`.
        skipped: list of `(path, reason)` for activations that were left alone
            (unsupported activation, not selected by `where`, recurrent layers, ...).
        probe_range: the `(low, high)` interval the deviations were measured on.
        output_deviation: `max |converted(x) - original(x)|` over the probe inputs, if a probe
            pass was made (`probe_data`, or the default probe when `relu_gain=None`).
        relative_output_deviation: `output_deviation` over the scale (std) of the original outputs.
        output_scale: that scale (the smallest over several outputs).
    """

    converted: list
    skipped: list
    probe_range: tuple
    output_deviation: float | None = None
    relative_output_deviation: float | None = None
    output_scale: float | None = None

    @property
    def max_deviation(self):
        """Largest activation deviation over all replaced activations (0 if none)."""
        return max((c.max_deviation for c in self.converted), default=0.0)

    def __str__(self):
        lines = [
            f"keras-bioact conversion: {len(self.converted)} activation(s) replaced, "
            f"max deviation {self.max_deviation:.3g} on [{self.probe_range[0]:g}, {self.probe_range[1]:g}]"
        ]
        for c in self.converted:
            params = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.parameters.items()
            )
            family = c.family if c.form is None else f"{c.family}/{c.form}"
            shape = f" as {c.composition}" if c.composition else ""
            relative = (
                "" if c.relative_deviation is None else f", {c.relative_deviation:.2%} of scale on probe"
            )
            lines.append(
                f"  {c.path} ({c.activation}, {c.source}) -> {c.new_layer}: {family}({params}){shape}"
                f"  max dev {c.max_deviation:.3g}{relative}{_degenerate_note(c)}"
            )
        for path, reason in self.skipped:
            lines.append(f"  skipped {path}: {reason}")
        if self.output_deviation is not None:
            lines.append(
                f"  max |converted - original| on probe inputs: {self.output_deviation:.3g} "
                f"({self.relative_output_deviation:.3%} of the output scale {self.output_scale:.3g})"
            )
        return "\n".join(lines)


def _degenerate_note(c):
    if c.degenerate is None:
        return ""
    count, total, std = c.degenerate
    return f"; degenerate probe for {count} of {total} gain(s) ({_spread(std)}): n = bound {GAIN_BOUND:g}"


def _spread(std):
    return "zero spread" if std == 0 else f"std <= {std:.2g}"


def _deviation(record, probe, rule):
    """Max |new - old| of one new activation on the probe, at the layer's initial parameter values.

    Evaluated in float64 with the family's reference formulas (the layer ops are tested against
    the same formulas), once per distinct parameter value.
    """
    y, params = rule.deviation(record, probe)
    target = record["spec"].numpy()(probe)[:, None]
    return float(np.abs(y - target).max()), params


def _composition(record):
    recipe = record["recipe"]
    if recipe is None:
        return None
    text = recipe.describe()
    if record["correction"] is not None:
        c = record["correction"]
        text = f"{text or 'gamma(x)'} + [{c['activation']}(x) - same at n={c['n']:.4g}, s={c['s']:.4g}]"
    return text


def _check_arguments(family, init, sharing, activations, form, relu_gain, probe_range, where, tolerance):
    rule = get_rule(family)
    if init not in _INITS:
        raise ValueError(f"convert: `init` must be one of {_INITS}, got {init!r}.")
    if sharing is None:
        sharing = rule.default_sharing
    if sharing not in _SHARING:
        raise ValueError(f"convert: `sharing` must be one of {_SHARING} or None, got {sharing!r}.")
    if isinstance(activations, str):
        activations = (activations,)
    activations = tuple(ALIASES.get(a, a) for a in activations)
    bad = [a for a in activations if a not in SUPPORTED_ACTIVATIONS]
    if bad:
        raise ValueError(f"convert: `activations` must be a subset of {SUPPORTED_ACTIVATIONS}, got {bad}.")
    if form not in (None, "eru", "oru"):
        raise ValueError(f"convert: `form` must be None, 'eru' or 'oru', got {form!r}.")
    if relu_gain is not None and not (
        isinstance(relu_gain, (int, float)) and not isinstance(relu_gain, bool) and relu_gain > 0
    ):
        raise ValueError(f"convert: `relu_gain` must be None (calibrate) or a number > 0, got {relu_gain!r}.")
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise ValueError(f"convert: `tolerance` must be a number in (0, 1), got {tolerance!r}.")
    low, high = (float(v) for v in probe_range)
    if not low < high:
        raise ValueError(f"convert: `probe_range` must be (low, high) with low < high, got {probe_range!r}.")
    if where is not None and not callable(where) and not isinstance(where, tuple):
        if isinstance(where, str):
            where = [where]
        where = list(where)
        if not all(isinstance(w, str) for w in where):
            raise ValueError(
                "convert: `where` must be None, a callable, a layer class (or tuple of classes), "
                f"or a list of layer names; got {where!r}."
            )
    return sharing, activations, (low, high), where


def convert(
    model,
    family="gamma",
    init="match",
    where=None,
    activations=SUPPORTED_ACTIVATIONS,
    sharing=None,
    trainable=True,
    relu_gain=None,
    affine=True,
    form=None,
    probe_range=(-5.0, 5.0),
    probe_data=None,
    warn_deviation=0.1,
    tolerance=0.01,
    exact=True,
    return_report=False,
):
    """Return a copy of `model` with its activations replaced by learnable keras-bioact ones.

    Example:
    ```python
    model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None)
    new_model, report = keras_bioact.convert(model, probe_data=x[:8], return_report=True)
    print(report)          # what was replaced, and how far each replacement starts from the original
    new_model.compile(...); new_model.fit(...)
    ```

    The original model is left untouched. Layers and operations are cloned from their configs
    and the layers' weights copied; a `Dense`/`Conv` layer with a converted `activation=` gets
    `activation="linear"` and is followed by a new layer named `<layer>_<family>`; an
    activation layer is replaced by a new layer named `<layer>_<family>`. If the model was
    compiled, the copy is compiled from the same compile config (a fresh optimizer).

    Args:
        model: a built `keras.Sequential` or functional `keras.Model` (nested Sequential and
            functional models inside it are converted too). Subclassed models raise `TypeError`.
        family: `"gamma"` (`GammaActivation`, learnable gain `n` and saturation `s`), `"bru"`
            (`BRU`, learnable radix `r`), or any other family of the registry with a convert
            rule (`keras_bioact.conversion.rules`; a rule may convert only some activations and
            skip the others, with a reason in the report).
        init: `"match"` (start each new activation as close as possible to the one it replaces,
            see `keras_bioact.conversion`) or `"default"` (the layer's own default initialisation).
        where: which activations to convert: `None` (all supported ones), a callable
            `where(layer) -> bool` on the layer that carries the activation, a layer class or
            tuple of classes, or a list of layer names (a nested model's name selects
            everything inside it).
        activations: the activation names to convert, a subset of `SUPPORTED_ACTIVATIONS`
            (`"swish"` and `"hard_swish"` are accepted for `"silu"` and `"hard_silu"`).
        sharing: parameter sharing of the new layers: `"channel"` (one parameter set per
            channel/unit, shared over spatial or time axes), `"all"` (one per layer) or
            `"element"` (one per output element). Default: `"channel"` for gamma, `"all"` for BRU
            (the BRU paper's choice).
        trainable: make the new activation parameters trainable (default True).
        relu_gain: gain `n` of every gamma replacing a ReLU-like activation (deviation
            `ln 2 / relu_gain` at the kink), or `None` (default) to calibrate it per channel on
            probe inputs (see `keras_bioact.conversion`). Calibrated gains are at most 1e6 (where
            the gamma is a ReLU to float32 precision for inputs of order 1; a larger gain would
            only fit probe pre-activations of tiny scale and could not be trained back down);
            a `UserWarning` names every layer whose probe pre-activations are degenerate (zero or
            near-zero spread), whose gains could not be calibrated and start at that bound.
            Without usable probe inputs (inputs with unknown dimensions or non-float dtypes, and
            no `probe_data`) `None` falls back to 20 with a warning.
        affine: for the gamma family, allow fixed arithmetic around the gamma (see
            `keras_bioact.conversion`): tanh becomes `2 * gamma(x; 2, 1) - 1` (exact), relu6 a
            clipped gamma,
            silu `x * gamma(x; 1, 1)`, .... With `affine=False` the closest plain gamma is used.
        form: BRU form, `"eru"`, `"oru"`, or `None` to pick the closer one per activation.
        probe_range: `(low, high)` interval on which deviations are measured (and fits made).
        probe_data: model inputs for calibration and for the output checks. Default (with
            `relu_gain=None`): 4 standard-normal samples of the model's input shape (seed 0).
            With a fixed `relu_gain` and no `probe_data`, no probe pass is made.
        warn_deviation: emit a `UserWarning` listing replacements whose deviation on
            `probe_range` exceeds it (`None` to disable), unless the probe pass found them within
            `tolerance` on the tensors they actually receive (e.g. a gain calibrated to
            pre-activations of std 100 is far from a ReLU on [-5, 5] but exact at that scale).
        tolerance: relative tolerance of the probe checks (default 0.01): a `UserWarning` names
            every new activation whose output on the probe moves by more than `tolerance` times
            the original output's std, and the model if its outputs do.
        exact: for the gamma family with `affine=True`, add to every replacement that no gamma
            matches exactly (gelu, mish, elu, celu, selu, softsign, squareplus, sparse_plus) the
            fixed, non-trainable difference between the original and the fitted replacement at its
            initial parameters (`ActivationAdapter(correction=...)`), so that it starts exactly;
            training moves the unit, the correction stays. It costs one more evaluation of the
            original activation and of a constant gamma per such layer. `False`: leave the fit's
            deviation (see `keras_bioact.conversion`).
        return_report: return `(new_model, report)` instead of `new_model`.

    Returns:
        The converted model (built, weights copied), or `(model, ConversionReport)`. The report
        is also available as `new_model.bioact_conversion_report`.
    """
    sharing, activations, (low, high), where = _check_arguments(
        family, init, sharing, activations, form, relu_gain, probe_range, where, tolerance
    )
    rule = get_rule(family)
    if not isinstance(model, keras.Model):
        raise TypeError(f"convert: `model` must be a keras.Model, got {type(model).__name__}.")
    if not (is_sequential(model) or is_functional(model)):
        raise unsupported(model, model.name)
    if not model.built:
        raise ValueError(
            f"convert: model {model.name!r} is not built; give it an input shape (keras.Input) or call "
            "`model.build(input_shape)` first."
        )

    converter = Converter(
        family,
        init,
        where,
        activations,
        sharing,
        bool(trainable),
        None if relu_gain is None else float(relu_gain),
        bool(affine),
        form,
        (low, high),
        bool(exact),
    )
    converter.collect_names(model)
    if isinstance(where, list):
        unknown = [w for w in where if w not in converter.names]
        if unknown:
            raise ValueError(f"convert: `where` names {unknown} match no layer or model in {model.name!r}.")
    new_model = converter.convert_model(model)

    for original, clone in converter.pairs:
        clone.set_weights(original.get_weights())
    if model.compiled and not new_model.compiled:
        new_model.compile_from_config(model.get_compile_config())

    records = converter.records
    probe_stats = None
    if records:
        probe = probe_data
        if probe is None and relu_gain is None:
            probe = default_probe(model)
            if probe is None and any(r["recipe"] is not None and r["recipe"].unit == "relu" for r in records):
                warnings.warn(
                    f"convert: cannot make default probe inputs for {model.name!r} (inputs with unknown "
                    "dimensions or non-float dtypes), so ReLU-like gammas start at the uncalibrated gain "
                    "n = 20 (deviation ln2/20 = 0.035 at 0); pass `probe_data=` for an exact start.",
                    UserWarning,
                    stacklevel=2,
                )
        if probe is not None:
            probe_stats = calibrate(
                model,
                new_model,
                records,
                probe,
                float(tolerance),
                calibrate_gains=relu_gain is None
                and rule.calibrates
                and init == "match",
            )

    probe_grid = np.linspace(low, high, 2001)
    converted = []
    for record in records:
        dev, params = _deviation(record, probe_grid, rule)
        recipe = record["recipe"]
        converted.append(
            ConvertedActivation(
                path=record["path"],
                activation=record["spec"].label,
                source=record["source"],
                new_layer=record["top"].name,
                family=family,
                form=record["form"],
                parameters=params,
                affine=None if recipe is None else recipe.affine,
                max_deviation=dev,
                composition=_composition(record),
                relative_deviation=record.get("relative_deviation"),
                degenerate=record.get("degenerate"),
            )
        )
    report = ConversionReport(converted=converted, skipped=converter.skipped, probe_range=(low, high))
    if probe_stats is not None:
        report.output_deviation = probe_stats["output_deviation"]
        report.relative_output_deviation = probe_stats["relative_output_deviation"]
        report.output_scale = probe_stats["output_scale"]
    _warn(model, report, low, high, warn_deviation, float(tolerance))
    object.__setattr__(new_model, "bioact_conversion_report", report)
    return (new_model, report) if return_report else new_model


def _warn(model, report, low, high, warn_deviation, tolerance):
    if not report.converted:
        reasons = "; ".join(f"{p}: {r}" for p, r in report.skipped[:5]) or "the model has no activations"
        warnings.warn(
            f"convert: NO activation of {model.name!r} was replaced; the returned model is a plain copy. "
            f"Skipped: {reasons}{' ...' if len(report.skipped) > 5 else ''}.",
            UserWarning,
            stacklevel=3,
        )
    degenerate = [c for c in report.converted if c.degenerate is not None]
    if degenerate:
        warnings.warn(
            "convert: the probe inputs are degenerate for these layers (pre-activations with zero or "
            "near-zero spread), so their gains n could not be calibrated and start at the bound "
            f"{GAIN_BOUND:g} (a larger gain would not survive training; see keras_bioact.conversion): "
            + ", ".join(
                f"{c.path} ({c.activation}): {c.degenerate[0]} of {c.degenerate[1]} gain(s), "
                f"{_spread(c.degenerate[2])}"
                for c in degenerate
            )
            + ". Pass `probe_data=` drawn from the data the model will see, convert the trained model, "
            "or fix `relu_gain=`.",
            UserWarning,
            stacklevel=3,
        )
    if warn_deviation is not None:
        far = [  # a replacement checked on the probe inputs is judged there instead
            c
            for c in report.converted
            if c.max_deviation > warn_deviation
            and not (c.relative_deviation is not None and c.relative_deviation <= tolerance)
        ]
        if far:
            warnings.warn(
                "convert: these replacements start far from the original activation (max |new - old| on "
                f"[{low:g}, {high:g}]): "
                + ", ".join(f"{c.path} {c.activation}->{c.family}: {c.max_deviation:.3g}" for c in far),
                UserWarning,
                stacklevel=3,
            )
    moved = [
        c for c in report.converted if c.relative_deviation is not None and c.relative_deviation > tolerance
    ]
    if moved:
        warnings.warn(
            f"convert: on the probe inputs, these layers' outputs move by more than {tolerance:.0%} of their "
            "scale (max |new - old| / std(old)): "
            + ", ".join(f"{c.path} ({c.activation}): {c.relative_deviation:.2%}" for c in moved),
            UserWarning,
            stacklevel=3,
        )
    if report.relative_output_deviation is not None and report.relative_output_deviation > tolerance:
        warnings.warn(
            f"convert: the outputs of {model.name!r} move by {report.relative_output_deviation:.2%} of their "
            f"scale on the probe inputs (more than {tolerance:.0%}; max |converted - original| = "
            f"{report.output_deviation:.3g}).",
            UserWarning,
            stacklevel=3,
        )
