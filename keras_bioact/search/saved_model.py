"""Searching a saved model (`[model] path = "model.keras"`): the Optuna engine's model builder.

Each trial loads the model (`safe_mode=True`, so the file runs no code), replaces its
activations with the trial's family using that family's convert rule (`ConvertRule.trial` in
`keras_bioact.families`: gamma and BRU), and fine-tunes it from its saved weights. A model
that does not end in a softmax gets one, so that the objective's cross-entropy on
probabilities applies.
"""

from __future__ import annotations

from keras_bioact import families

__all__ = ["convertible", "converted_builder"]


def convertible():
    """Names of the families a saved model can be converted to for a search."""
    return tuple(f.name for f in families.families_with("convert") if f.convert.trial is not None)


def converted_builder(path):
    """`activation -> keras.Model`: the saved model at `path`, converted to `activation`."""

    def build(activation):
        import keras

        from keras_bioact.search.evaluator import _ends_with_softmax

        legal = convertible()
        if activation.family not in legal:
            raise ValueError(
                f"model.path: a saved model converts to {', '.join(legal)}, not {activation.family!r}"
            )
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        model = families.get_family(activation.family).convert.trial(model, activation)
        if not _ends_with_softmax(model):
            model = keras.Sequential([model, keras.layers.Softmax()], name=f"{model.name}_softmax")
        return model

    return build
