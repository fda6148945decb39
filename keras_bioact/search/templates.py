"""Model templates for activation search: `activation -> keras.Model` builders.

A template is a function `template(activation, input_shape, num_classes, **options)` that
returns an (uncompiled) Keras model whose hidden nonlinearities all come from `activation`
(a `keras_bioact.search.Activation`). Specifications name a template either by its short
name (`"mlp"`, `"cnn"`) or by an import path `"package.module:function"`; strings are never
evaluated.
"""

from __future__ import annotations

import importlib
import inspect

__all__ = ["TEMPLATES", "cnn", "mlp", "resolve_template", "template_options"]


def mlp(activation, input_shape, num_classes, hidden=(64, 64), dropout=0.0):
    """Flatten, then one `activation.dense` block per entry of `hidden`, then softmax.

    Options:
        hidden: widths of the hidden layers (outputs of the activation sites).
        dropout: dropout rate after each hidden block (0 disables).
    """
    import keras

    layers = [keras.Input(shape=tuple(input_shape)), keras.layers.Flatten()]
    for i, units in enumerate(hidden):
        layers += activation.dense(int(units), i)
        if dropout:
            layers.append(keras.layers.Dropout(float(dropout)))
    layers.append(keras.layers.Dense(int(num_classes), activation="softmax"))
    return keras.Sequential(layers, name=f"mlp_{activation.family}")


def cnn(activation, input_shape, num_classes, filters=(16, 32), kernel_size=3, dense=(64,), dropout=0.0):
    """Conv blocks (`same` padding, 2x2 max-pooling while the map is at least 2x2), then Dense
    blocks, then softmax. Images of shape `(H, W)` get a channel axis.

    Options:
        filters: output channels of the conv blocks (activation sites 0..len(filters)-1).
        kernel_size: conv kernel size.
        dense: widths of the hidden Dense blocks after flattening (the following sites).
        dropout: dropout rate before the classifier (0 disables).
    """
    import keras

    shape = tuple(input_shape)
    layers = [keras.Input(shape=shape)]
    if len(shape) == 2:
        layers.append(keras.layers.Reshape(shape + (1,)))
        shape = shape + (1,)
    h, w = shape[0], shape[1]
    site = 0
    for f in filters:
        layers += activation.conv2d(int(f), int(kernel_size), site, padding="same")
        site += 1
        if h >= 2 and w >= 2:
            layers.append(keras.layers.MaxPooling2D(2))
            h, w = h // 2, w // 2
    layers.append(keras.layers.Flatten())
    for units in dense:
        layers += activation.dense(int(units), site)
        site += 1
    if dropout:
        layers.append(keras.layers.Dropout(float(dropout)))
    layers.append(keras.layers.Dense(int(num_classes), activation="softmax"))
    return keras.Sequential(layers, name=f"cnn_{activation.family}")


TEMPLATES = {"mlp": mlp, "cnn": cnn}


def resolve_template(name):
    """A template function from a short name (`"mlp"`, `"cnn"`) or `"module:function"`."""
    if callable(name):
        return name
    if not isinstance(name, str) or not name:
        raise ValueError(f"template must be a name or 'module:function', got {name!r}")
    if name in TEMPLATES:
        return TEMPLATES[name]
    if ":" not in name:
        raise ValueError(
            f"unknown template {name!r}; use one of {', '.join(sorted(TEMPLATES))} or 'module:function'"
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"template {name!r}: cannot import module {module_name!r} ({e})") from e
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise ValueError(f"template {name!r}: module {module_name!r} has no attribute {attr!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise ValueError(f"template {name!r}: {attr!r} is not callable")
    try:
        inspect.signature(fn).bind(None, (1,), 2)
    except (TypeError, ValueError):
        raise ValueError(
            f"template {name!r} is not a model template: it must accept "
            "(activation, input_shape, num_classes, **options)"
        ) from None
    return fn


def template_options(fn):
    """Names of the options a template accepts (None when it takes `**kwargs`)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n in params if n not in ("activation", "input_shape", "num_classes")]
