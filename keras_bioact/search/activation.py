"""`Activation`: one concrete activation configuration, turned into Keras layers.

A model builder (a template such as `keras_bioact.search.templates.mlp`, or your own
function) receives an `Activation` and asks it for the layers of each activation site:

* `activation.layer(i)`: the activation layer of site `i` (not for `two_arg`, whose
  nonlinearity is part of the preceding Dense/Conv);
* `activation.dense(units, i)`: the layers of a hidden Dense block (`Dense` + activation,
  with the BRU paper's r-dependent initialisation for `bru`; one `TwoArgDense` for `two_arg`);
* `activation.conv2d(filters, kernel_size, i, **conv_kwargs)`: the same for a Conv2D block.

Sites are numbered from 0 in the order the builder asks for them; BRU uses one radix per
site. All `two_arg` blocks of one `Activation` share ONE inner network (as in the paper);
call `activation.fresh()` for an independent copy when building a second model.

The configuration (`activation.config`, a JSON-serialisable dict) is what a search stores in
each trial's `activation` user attribute; `Activation(config)` rebuilds the same layers.
"""

from __future__ import annotations

import copy

from keras_bioact.search import space as space_lib

__all__ = ["Activation", "TWO_ARG_MISSING"]

TWO_ARG_MISSING = "two_arg family requires keras_bioact.layers.TwoArgDense"
_DEFAULT_R = 2.0


def _two_arg_layers():
    try:
        from keras_bioact.layers import InnerNonlinearity, TwoArgDense
    except ImportError as e:  # pragma: no cover - depends on the installed package version
        raise ImportError(TWO_ARG_MISSING) from e
    try:
        from keras_bioact.layers import TwoArgConv2D
    except ImportError:  # pragma: no cover
        TwoArgConv2D = None
    return InnerNonlinearity, TwoArgDense, TwoArgConv2D


class Activation:
    """A concrete activation configuration and the layer factory for it.

    Args:
        config: dict with `family` and the family's parameters, e.g.
            `{"family": "gamma", "regime": "heterogeneous", "init": "sampled", "n": 5.0, "s": 0.3}`,
            `{"family": "bru", "form": "eru", "r": [2.0, 1.5], "trainable_r": False}`,
            `{"family": "two_arg", "inner_width": 64, "depth": 2, "arity": 2, "normalize": True,
            "pairing": "adjacent"}`, or `{"family": "relu"}`.
        trial: optional Optuna trial; BRU radii of sites beyond `len(config["r"])` are then
            suggested from `space` (`bru_r{i}`) and appended to the configuration.
        space: the `SearchSpace` the trial samples from (needed with `trial`).
    """

    def __init__(self, config, trial=None, space=None):
        if isinstance(config, str):
            config = {"family": config}
        config = copy.deepcopy(dict(config))
        family = config.get("family")
        if family not in space_lib.FAMILIES:
            raise ValueError(
                f"Activation: unknown `family` {family!r}; legal: {', '.join(space_lib.FAMILIES)}."
            )
        if family == "bru":
            config.setdefault("form", "eru")
            config.setdefault("trainable_r", False)
            r = config.get("r", [])
            config["r"] = [float(r)] if isinstance(r, (int, float)) else [float(v) for v in r]
        if family == "gamma":
            config.setdefault("regime", "heterogeneous")
            config.setdefault("init", "sampled" if "n" in config else "paper")
        if family == "two_arg":
            for k, v in (
                ("inner_width", 64),
                ("depth", 2),
                ("arity", 2),
                ("normalize", True),
                ("pairing", "adjacent"),
            ):
                config.setdefault(k, v)
        self.config = config
        self._trial = trial
        self._space = space_lib.SearchSpace() if (trial is not None and space is None) else space
        self._inner = None

    @property
    def family(self):
        return self.config["family"]

    def __repr__(self):
        return f"Activation({self.config!r})"

    def to_config(self):
        return copy.deepcopy(self.config)

    def fresh(self):
        """A copy with the same configuration and its own (new) shared inner network."""
        return Activation(self.config)

    # ------------------------------------------------------------------ per-site parameters
    def radius(self, index):
        """The BRU radix of site `index` (suggested from the trial when not yet known)."""
        r = self.config["r"]
        while len(r) <= index:
            if self._trial is not None:
                r.append(float(space_lib.suggest_bru_r(self._space, self._trial, len(r))))
            else:
                r.append(r[-1] if r else _DEFAULT_R)
        return r[index]

    def inner(self):
        """The shared inner network g of the `two_arg` family (one per `Activation`)."""
        if self.family != "two_arg":
            raise ValueError(
                f"Activation.inner: only the two_arg family has an inner network, not {self.family!r}."
            )
        if self._inner is None:
            InnerNonlinearity, _, _ = _two_arg_layers()
            c = self.config
            self._inner = InnerNonlinearity(
                arity=int(c["arity"]), hidden_units=(int(c["inner_width"]),) * int(c["depth"])
            )
        return self._inner

    # ------------------------------------------------------------------ layers
    def layer(self, index=0, name=None, channel_axes=None):
        """The activation layer of site `index`. `channel_axes`: for feature maps, the axes to
        share heterogeneous gamma parameters over (e.g. `[1, 2]`: one pair per channel)."""
        import keras

        from keras_bioact.layers import BRU, GammaActivation

        family, c = self.family, self.config
        if family in space_lib.BASELINES:
            return keras.layers.Activation(family, name=name)
        if family == "gamma":
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
        if family == "bru":
            return BRU(form=c["form"], r=self.radius(index), trainable_r=bool(c["trainable_r"]), name=name)
        raise ValueError(
            "Activation.layer: the two_arg family is not a standalone activation layer; its "
            "nonlinearity is part of the preceding Dense/Conv. Use `activation.dense(units, i)` or "
            "`activation.conv2d(filters, kernel_size, i)`."
        )

    def _kernel_initializer(self, index):
        if self.family == "bru":
            from keras_bioact.initializers import BRUInitializer

            return BRUInitializer(r=self.radius(index), form=self.config["form"])
        return "glorot_uniform"

    def dense(self, units, index=0, **dense_kwargs):
        """Layers of a hidden Dense block of width `units` for site `index` (a list)."""
        import keras

        if self.family == "two_arg":
            _, TwoArgDense, _ = _two_arg_layers()
            c = self.config
            return [
                TwoArgDense(units, inner=self.inner(), pairing=c["pairing"], normalize=bool(c["normalize"]))
            ]
        dense_kwargs.setdefault("kernel_initializer", self._kernel_initializer(index))
        return [keras.layers.Dense(units, **dense_kwargs), self.layer(index)]

    def conv2d(self, filters, kernel_size, index=0, **conv_kwargs):
        """Layers of a hidden Conv2D block for site `index` (a list)."""
        import keras

        if self.family == "two_arg":
            _, _, TwoArgConv2D = _two_arg_layers()
            if TwoArgConv2D is None:
                raise ImportError("two_arg conv blocks require keras_bioact.layers.TwoArgConv2D")
            c = self.config
            return [
                TwoArgConv2D(
                    filters,
                    kernel_size,
                    inner=self.inner(),
                    pairing=c["pairing"],
                    normalize=bool(c["normalize"]),
                    **conv_kwargs,
                )
            ]
        conv_kwargs.setdefault("kernel_initializer", self._kernel_initializer(index))
        channels_first = conv_kwargs.get("data_format") == "channels_first"
        axes = [2, 3] if channels_first else [1, 2]
        return [
            keras.layers.Conv2D(filters, kernel_size, **conv_kwargs),
            self.layer(index, channel_axes=axes),
        ]
