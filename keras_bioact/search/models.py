"""Models of a search, shared by the Optuna and the EvoTorch engine."""

__all__ = ["ends_with_softmax"]


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
