"""The BRU family: bionodal root units (`keras_bioact.layers.BRU`, Bhumbra), a form (`eru` /
`oru`) and one radix `r` per activation site, with the paper's r-dependent initialisation of
the preceding layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bioact.families import ConvertRule, Family, register_family
from keras_bioact.families._space import (
    SpaceError,
    SubSpace,
    check_bool,
    choices,
    fill,
    layers_of,
    suggest_choice,
    suggest_float,
    value_range,
)

__all__ = ["BRU_FORMS", "BRUSpace", "reference"]

BRU_FORMS = ("eru", "oru")
DEFAULT_R = 2.0


@dataclass
class BRUSpace(SubSpace):
    """Bionodal root units (Bhumbra). `form`: choices among `eru`, `oru`; `r`: range of the
    per-layer radix within (0, 10] (>= 1 when `trainable_r` may be true); `log`: sample r
    log-uniformly; `trainable_r`: choices among true/false."""

    _KEY = "space.bru"
    form: tuple = BRU_FORMS
    r: tuple = (1.0, 4.0)
    log: bool = False
    trainable_r: tuple = (False,)

    def validate(self, key=_KEY):
        self.form = choices(self.form, f"{key}.form", BRU_FORMS)
        self.r = value_range(self.r, f"{key}.r", 0.0, 10.0, lo_exclusive=True)
        check_bool(self.log, f"{key}.log")
        self.trainable_r = choices(self.trainable_r, f"{key}.trainable_r", kind=bool)
        if True in self.trainable_r and self.r[0] < 1.0:
            raise SpaceError(f"{key}.r", f"low must be >= 1 when trainable_r may be true, got {self.r[0]}")
        return self


def sample(b, trial):
    # Per-site radii are suggested lazily (`bru_r{i}`), when the builder asks for site i.
    return {
        "form": suggest_choice(trial, "bru_form", b.form),
        "trainable_r": bool(suggest_choice(trial, "bru_trainable_r", b.trainable_r)),
        "r": [],
    }


def suggest_r(b, trial, index):
    """The radix of BRU site `index` (Optuna parameter `bru_r{index}`)."""
    return suggest_float(trial, f"bru_r{index}", b.r, log=b.log)


def normalize(config):
    config.setdefault("form", "eru")
    config.setdefault("trainable_r", False)
    r = config.get("r", [])
    config["r"] = [float(r)] if isinstance(r, (int, float)) else [float(v) for v in r]
    return config


def layer(activation, index=0, name=None, channel_axes=None):
    from keras_bioact.layers import BRU

    c = activation.config
    return BRU(form=c["form"], r=activation.site_value(index), trainable_r=bool(c["trainable_r"]), name=name)


def kernel_initializer(activation, index):
    from keras_bioact.initializers import BRUInitializer

    return BRUInitializer(r=activation.site_value(index), form=activation.config["form"])


def reference(x, r, form="eru"):
    """ERU / ORU of radix `r` in float64."""
    x, r = np.asarray(x, dtype="float64"), np.asarray(r, dtype="float64")
    if form == "oru":
        return np.sign(x) * ((r * r * np.abs(x) + 1.0) ** (1.0 / r) - 1.0)
    if form != "eru":
        raise ValueError(f"bru reference: `form` must be one of {BRU_FORMS}, got {form!r}.")
    root = (r * r * np.maximum(x, 0.0) + 1.0) ** (1.0 / r)
    return np.where(x >= 0, root, np.exp(r * np.minimum(x, 0.0))) - 1.0 / r


def reference_params(unit):
    from keras import ops

    return {"r": np.asarray(ops.convert_to_numpy(unit.r), dtype="float64"), "form": unit.form}


def inspect(layer, names):
    return "bru" if "r" in names and getattr(layer, "form", None) in BRU_FORMS else None


# ------------------------------------------------------------------ convert rule


def _parameters(converter, spec):
    from keras_bioact._convert_recipes import fit_bru

    forms = BRU_FORMS if converter.form is None else (converter.form,)
    if converter.init == "default":
        return forms[0], {"r": DEFAULT_R}
    if spec.name in ("elu", "celu") and "eru" in forms:
        return "eru", {"r": 1.0}
    r_min = 1.0 if converter.trainable else 0.1
    low, high = converter.probe_range
    return fit_bru(spec, low, high, r_min, forms)


def convert_make(converter, spec, name, shared_axes, dtype):
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


def convert_deviation(record, probe):
    from keras import ops

    unit = record["unit"]
    r = np.unique(np.asarray(ops.convert_to_numpy(unit.r), dtype="float64").reshape(-1))
    summary = float(r.min()) if r.min() == r.max() else f"{r.min():.4g}..{r.max():.4g}"
    return reference(probe[:, None], r[None, :], unit.form), {"r": summary}


def convert_trial(model, activation):
    """A saved model converted for one trial: the sampled `form`, one sampled radix per
    converted layer, `trainable_r` as sampled."""
    from keras_bioact.convert import convert
    from keras_bioact.layers import BRU

    c = activation.config
    model = convert(
        model, family="bru", form=c["form"], trainable=bool(c["trainable_r"]), warn_deviation=None
    )
    for i, unit in enumerate(layers_of(model, BRU)):
        fill(unit.r, activation.radius(i))
    return model


FAMILY = register_family(
    Family(
        name="bru",
        description="BRU: exponential / odd root units of radix r",
        reference=reference,
        reference_params=reference_params,
        layer=layer,
        kernel_initializer=kernel_initializer,
        normalize=normalize,
        space_cls=BRUSpace,
        sample=sample,
        site_key="r",
        suggest_site=suggest_r,
        site_default=lambda values: values[-1] if values else DEFAULT_R,
        target="bru",
        parameter_names=("r",),
        convert=ConvertRule(
            make=convert_make, deviation=convert_deviation, default_sharing="all", trial=convert_trial
        ),
        inspect=inspect,
        curve_label=lambda layer: f"{getattr(layer, 'form', 'bru').upper()}(x; r)",
    )
)
