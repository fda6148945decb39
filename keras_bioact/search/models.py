"""Models of a search, shared by the Optuna and the EvoTorch engine: `model_builder(spec, ...)`
gives the one `activation -> keras.Model` builder of both, from a template or a saved model.

Searching a saved model (`[model] path = "model.keras"`): each model loads the file
(`safe_mode=True`, so the file runs no code), replaces its activations with the trial's family
using that family's convert rule (`ConvertRule.trial` in `keras_bioact.conversion.rules`: gamma
and BRU), and fine-tunes it from its saved weights. A model that does not end in a softmax gets
one, so that the objective's cross-entropy on probabilities applies.
"""

from __future__ import annotations

import warnings

__all__ = ["check_model", "converted_builder", "convertible", "ends_with_softmax", "load", "model_builder"]


def model_builder(spec, input_shape, num_classes):
    """`activation -> keras.Model` of `spec`'s `[model]`: the template with its options, or the
    saved model (`model.path`) with its activations converted to the activation's family."""
    if spec.model_path:
        return converted_builder(spec.model_path, input_shape, num_classes)
    from keras_bioact.search.templates import resolve_template

    template = resolve_template(spec.template)
    options = dict(spec.template_options)
    return lambda activation: template(
        activation, input_shape=input_shape, num_classes=num_classes, **options
    )


def ends_with_softmax(model):
    """Whether `model`'s outputs are probabilities: its last layer is a `keras.layers.Softmax` or
    has `activation="softmax"` (otherwise a loss or metric takes them as logits)."""
    import keras

    layers = getattr(model, "layers", [])
    if not layers:
        return False
    last = layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(getattr(last, "activation", None), "__name__", "") == "softmax"


def convertible():
    """Names of the families a saved model can be converted to for a search."""
    from keras_bioact.conversion import rules

    return tuple(name for name in rules.rule_names() if rules.get_rule(name).trial is not None)


def load(path):
    """The saved model at `path`, loaded with `safe_mode=True` (the file runs no code);
    `ValueError` naming `model.path` if Keras refuses or cannot read it."""
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a refused or damaged file
        raise ValueError(
            f"model.path: Keras cannot load {path} with safe_mode=True: {type(e).__name__}: {e}"
        ) from None


def check_model(model, input_shape, num_classes, path="model.path"):
    """`ValueError` naming `model.path` unless `model` takes the data's inputs and classes."""
    have = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    want = tuple(int(d) for d in input_shape)
    if (
        have is None
        or len(have) != len(want)
        or any(h not in (None, w) for h, w in zip(have, want, strict=True))
    ):
        raise ValueError(
            f"model.path: the saved model {path} takes inputs of shape {have}, but the data set "
            f"gives samples of shape {want}; save a model whose Input matches the data (e.g. "
            "keras.Input(shape) followed by Flatten)."
        )
    outputs = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    if outputs is not None and num_classes is not None and outputs != int(num_classes):
        raise ValueError(
            f"model.path: the saved model {path} has {outputs} outputs, but the data set has "
            f"{num_classes} classes."
        )


def converted_builder(path, input_shape=None, num_classes=None):
    """`activation -> keras.Model`: the saved model at `path`, converted to `activation`.

    With `input_shape` (and `num_classes`), the file is loaded once here and checked against
    the data (`ValueError` naming `model.path` on a mismatch), before any trial runs."""
    if input_shape is not None:
        check_model(load(path), input_shape, num_classes, path)

    def build(activation):
        import keras

        from keras_bioact.conversion import rules

        legal = convertible()
        if activation.family not in legal:
            raise ValueError(
                f"model.path: a saved model converts to {', '.join(legal)}, not {activation.family!r}"
            )
        model = load(path)
        with warnings.catch_warnings():  # a trial sets its own start: deviations are expected
            warnings.filterwarnings("ignore", message="convert: ", category=UserWarning)
            model = rules.get_rule(activation.family).trial(model, activation)
        if not ends_with_softmax(model):
            model = keras.Sequential([model, keras.layers.Softmax()], name=f"{model.name}_softmax")
        return model

    return build
