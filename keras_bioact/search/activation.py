"""`Activation`: one concrete activation configuration, turned into Keras layers.

A model builder (a template such as `keras_bioact.search.templates.mlp`, or your own
function) receives an `Activation` and asks it for the layers of each activation site:

* `activation.layer(i)`: the activation layer of site `i` (not for families such as
  `two_arg`, whose nonlinearity is part of the preceding Dense/Conv);
* `activation.dense(units, i)`: the layers of a hidden Dense block (`Dense` + activation,
  with the family's initialisation of the Dense, e.g. BRU's r-dependent one; one
  `TwoArgDense` for `two_arg`);
* `activation.conv2d(filters, kernel_size, i, **conv_kwargs)`: the same for a Conv2D block.

Sites are numbered from 0 in the order the builder asks for them; per-site parameters (BRU
uses one radix per site) are suggested from the trial as sites are requested. All `two_arg`
blocks of one `Activation` share ONE inner network (as in the paper); call
`activation.fresh()` for an independent copy when building a second model.

What each family builds is declared in the family registry (`keras_bioact.families`).
The configuration (`activation.config`, a JSON-serialisable dict) is what a search stores in
each trial's `activation` user attribute; `Activation(config)` rebuilds the same layers.
"""

from __future__ import annotations

import copy

from keras_bioact import families as registry
from keras_bioact.families.two_arg import TWO_ARG_MISSING
from keras_bioact.search import space as space_lib

__all__ = ["Activation", "TWO_ARG_MISSING"]


class Activation:
    """A concrete activation configuration and the layer factory for it.

    Args:
        config: dict with `family` and the family's parameters, e.g.
            `{"family": "gamma", "regime": "heterogeneous", "init": "sampled", "n": 5.0, "s": 0.3}`,
            `{"family": "bru", "form": "eru", "r": [2.0, 1.5], "trainable_r": False}`,
            `{"family": "two_arg", "inner_width": 64, "depth": 2, "arity": 2, "normalize": True,
            "pairing": "adjacent"}`, or `{"family": "relu"}` (any registered family).
        trial: optional Optuna trial; per-site values (BRU radii) of sites beyond those in the
            configuration are then suggested from `space` (`bru_r{i}`) and appended to it.
        space: the `SearchSpace` the trial samples from (needed with `trial`).
    """

    def __init__(self, config, trial=None, space=None):
        if isinstance(config, str):
            config = {"family": config}
        config = copy.deepcopy(dict(config))
        family = config.get("family")
        if family not in registry.family_names():
            raise ValueError(
                f"Activation: unknown `family` {family!r}; legal: {', '.join(registry.family_names())}."
            )
        self._family = registry.get_family(family)
        self.config = self._family.normalized(config)
        self._trial = trial
        self._space = space_lib.SearchSpace() if (trial is not None and space is None) else space
        self._shared = {}

    @property
    def family(self):
        return self.config["family"]

    @property
    def declaration(self):
        """The family's registry entry (`keras_bioact.families.Family`)."""
        return self._family

    def __repr__(self):
        return f"Activation({self.config!r})"

    def to_config(self):
        return copy.deepcopy(self.config)

    def fresh(self):
        """A copy with the same configuration and its own (new) shared layers."""
        return Activation(self.config)

    # ------------------------------------------------------------------ per-site parameters
    def site_value(self, index):
        """The family's per-site value of site `index` (e.g. the BRU radix), suggested from the
        trial when not yet known (or repeated from the last site without a trial)."""
        fam = self._family
        if fam.site_key is None:
            raise ValueError(f"Activation.site_value: the {self.family!r} family has no per-site parameter.")
        values = self.config[fam.site_key]
        while len(values) <= index:
            if self._trial is not None:
                values.append(
                    float(space_lib.suggest_site(self._space, self._trial, self.family, len(values)))
                )
            else:
                values.append(fam.site_default(values))
        return values[index]

    def radius(self, index):
        """The BRU radix of site `index` (`site_value`, kept for existing callers)."""
        return self.site_value(index)

    def shared(self, key, factory):
        """One object per `Activation` and `key`, made by `factory()` on first use (e.g. the
        inner network shared by all two-argument blocks)."""
        if key not in self._shared:
            self._shared[key] = factory()
        return self._shared[key]

    def unit(self, index=0):
        """The layer the family's NumPy reference describes (what `best_activation` returns):
        the activation layer of site `index`, or the shared inner network of `two_arg`."""
        fam = self._family
        return fam.unit(self, index) if fam.unit is not None else self.layer(index)

    def inner(self):
        """The shared inner network g of block families such as `two_arg` (one per `Activation`)."""
        if self._family.block is None or self._family.unit is None:
            raise ValueError(
                f"Activation.inner: only families built as whole blocks (two_arg) have an inner "
                f"network, not {self.family!r}."
            )
        return self._family.unit(self, 0)

    # ------------------------------------------------------------------ layers
    def layer(self, index=0, name=None, channel_axes=None):
        """The activation layer of site `index`. `channel_axes`: for feature maps, the axes to
        share per-neuron parameters over (e.g. `[1, 2]`: one set per channel)."""
        if self._family.layer is None:
            raise ValueError(
                f"Activation.layer: the {self.family} family is not a standalone activation layer; its "
                "nonlinearity is part of the preceding Dense/Conv. Use `activation.dense(units, i)` or "
                "`activation.conv2d(filters, kernel_size, i)`."
            )
        return self._family.layer(self, index, name, channel_axes)

    def _kernel_initializer(self, index):
        init = self._family.kernel_initializer
        return init(self, index) if init is not None else "glorot_uniform"

    def dense(self, units, index=0, **dense_kwargs):
        """Layers of a hidden Dense block of width `units` for site `index` (a list)."""
        import keras

        if self._family.block is not None:
            return self._family.block(self, "dense", index, units, **dense_kwargs)
        dense_kwargs.setdefault("kernel_initializer", self._kernel_initializer(index))
        return [keras.layers.Dense(units, **dense_kwargs), self.layer(index)]

    def conv2d(self, filters, kernel_size, index=0, **conv_kwargs):
        """Layers of a hidden Conv2D block for site `index` (a list)."""
        import keras

        if self._family.block is not None:
            return self._family.block(self, "conv2d", index, filters, kernel_size, **conv_kwargs)
        conv_kwargs.setdefault("kernel_initializer", self._kernel_initializer(index))
        channels_first = conv_kwargs.get("data_format") == "channels_first"
        axes = [2, 3] if channels_first else [1, 2]
        return [
            keras.layers.Conv2D(filters, kernel_size, **conv_kwargs),
            self.layer(index, channel_axes=axes),
        ]
