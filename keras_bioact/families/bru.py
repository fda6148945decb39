"""The BRU family: bionodal root units (`keras_bioact.layers.BRU`, Bhumbra), a form (`eru` /
`oru`) and one radix `r` per activation site, with the paper's r-dependent initialisation of
the preceding layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bioact.families import Family, register_family
from keras_bioact.families.space import (
    SpaceError,
    SubSpace,
    check_bool,
    choices,
    suggest_choice,
    suggest_float,
    value_range,
)
from keras_bioact.reference import bru as reference

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


def reference_params(unit):
    from keras import ops

    return {"r": np.asarray(ops.convert_to_numpy(unit.r), dtype="float64"), "form": unit.form}


def inspect(layer, names):
    return "bru" if "r" in names and getattr(layer, "form", None) in BRU_FORMS else None


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
        inspect=inspect,
        curve_label=lambda layer: f"{getattr(layer, 'form', 'bru').upper()}(x; r)",
    )
)
