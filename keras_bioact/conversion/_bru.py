"""The convert rule of the BRU family (`BRU`): the closest bare ERU/ORU, fitted on the probe range."""

import numpy as np

from keras_bioact import reference
from keras_bioact.conversion._recipes import fit_bru
from keras_bioact.conversion.rules import ConvertRule, register_rule
from keras_bioact.families.bru import BRU_FORMS, DEFAULT_R


def _parameters(converter, spec):
    forms = BRU_FORMS if converter.form is None else (converter.form,)
    if converter.init == "default":
        return forms[0], {"r": DEFAULT_R}
    if spec.name in ("elu", "celu") and "eru" in forms:
        return "eru", {"r": 1.0}
    r_min = 1.0 if converter.trainable else 0.1
    low, high = converter.probe_range
    return fit_bru(spec, low, high, r_min, forms)


def make(converter, spec, name, shared_axes, dtype):
    from keras_bioact.layers import BRU

    form, params = _parameters(converter, spec)
    unit = BRU(
        form=form,
        r=params["r"],
        trainable_r=converter.trainable,
        shared_axes=shared_axes,
        name=name,
        dtype=dtype,
    )
    return {"unit": unit, "recipe": None, "form": form, "correction": None, "use_adapter": False}


def deviation(record, probe):
    from keras import ops

    unit = record["unit"]
    r = np.unique(np.asarray(ops.convert_to_numpy(unit.r), dtype="float64").reshape(-1))
    summary = float(r.min()) if r.min() == r.max() else f"{r.min():.4g}..{r.max():.4g}"
    return reference.bru(probe[:, None], r[None, :], unit.form), {"r": summary}


def trial(model, activation):
    """A saved model converted for one trial: the sampled `form`, one sampled radix per
    converted layer, `trainable_r` as sampled."""
    from keras_bioact.conversion._convert import convert
    from keras_bioact.conversion._graph import fill, layers_of
    from keras_bioact.layers import BRU

    c = activation.config
    model = convert(
        model, family="bru", form=c["form"], trainable=bool(c["trainable_r"]), warn_deviation=None
    )
    for i, unit in enumerate(layers_of(model, BRU)):
        fill(unit.r, activation.radius(i))
    return model


RULE = register_rule(
    "bru", ConvertRule(make=make, deviation=deviation, default_sharing="all", trial=trial)
)
