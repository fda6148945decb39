"""Searching a saved model (`[model] path = "model.keras"`): the Optuna engine's model builder.

Each trial loads the model (`safe_mode=True`, so the file runs no code), replaces its
activations with the trial's family using `keras_bioact.convert`, and fine-tunes it from its
saved weights. Gamma: `regime` sets the sharing (`homogeneous`: one pair per layer, otherwise
one per channel) and whether `n, s` learn (`static`: fixed); `init = "paper"` keeps the saved
model's function (each unit starts as close as possible to the activation it replaces,
`convert(init="match")`); `init = "sampled"` starts every unit at the sampled `(n, s)`. BRU:
`form` and one sampled radix per converted layer; `trainable_r` as sampled. A model that does
not end in a softmax gets one, so that the objective's cross-entropy on probabilities applies.
"""

from __future__ import annotations

__all__ = ["CONVERTIBLE", "converted_builder"]

CONVERTIBLE = ("gamma", "bru")


def _set(variable, value):
    from keras import ops

    variable.assign(ops.full(variable.shape, float(value), dtype=variable.dtype))


def converted_builder(path):
    """`activation -> keras.Model`: the saved model at `path`, converted to `activation`."""

    def build(activation):
        import keras

        from keras_bioact.convert import convert
        from keras_bioact.layers import BRU, GammaActivation
        from keras_bioact.search.evaluator import _ends_with_softmax

        c = activation.config
        if activation.family not in CONVERTIBLE:
            raise ValueError(
                f"model.path: a saved model converts to {', '.join(CONVERTIBLE)}, not {activation.family!r}"
            )
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        if activation.family == "gamma":
            regime = c["regime"]
            model = convert(
                model,
                family="gamma",
                sharing="all" if regime == "homogeneous" else "channel",
                trainable=regime != "static",
                init="match" if c["init"] == "paper" else "default",
                warn_deviation=None,
            )
            if c["init"] == "sampled":
                for layer in _layers(model, GammaActivation):
                    _set(layer.n, c["n"])
                    _set(layer.s, c["s"])
        else:
            model = convert(
                model, family="bru", form=c["form"], trainable=bool(c["trainable_r"]), warn_deviation=None
            )
            for i, layer in enumerate(_layers(model, BRU)):
                _set(layer.r, activation.radius(i))
        if not _ends_with_softmax(model):
            model = keras.Sequential([model, keras.layers.Softmax()], name=f"{model.name}_softmax")
        return model

    return build


def _layers(model, cls):
    """The layers of type `cls` in `model`, nested models included, in order."""
    out = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, cls):
            out.append(layer)
        out += _layers(layer, cls)
    return out
