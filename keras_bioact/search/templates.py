"""Model templates for activation search: `activation -> keras.Model` builders.

A template is a function `template(activation, input_shape, num_classes, **options)` that
returns an (uncompiled) Keras model whose hidden nonlinearities all come from `activation`
(a `keras_bioact.search.Activation`).

Specifications are data: a TOML spec names a template of the registry (`"mlp"`, `"cnn"`, or
one added with `register_template`), never a Python module. Custom model code comes in
through the Python API (`register_template("mine", build)`) or through an explicit opt-in on
the command line, `bioact search --allow-code MODULE SPEC.toml`, which imports MODULE (it
may call `register_template`) and lets the spec name `"MODULE:function"`. A spec can never
enable that opt-in itself.
"""

from __future__ import annotations

import importlib
import inspect

__all__ = [
    "TEMPLATES",
    "allow_code",
    "cnn",
    "mlp",
    "register_template",
    "resolve_template",
    "template_options",
]


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
_ALLOWED_MODULES = {}  # name -> module, imported by `allow_code` (the command line's --allow-code)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_template(name, fn):
    if not callable(fn):
        raise ValueError(f"template {name!r}: {fn!r} is not callable")
    try:
        inspect.signature(fn).bind(None, (1,), 2)
    except (TypeError, ValueError):
        raise ValueError(
            f"template {name!r} is not a model template: it must accept "
            "(activation, input_shape, num_classes, **options)"
        ) from None
    return fn


def register_template(name, fn=None):
    """Add a model template to the registry, so that specs can name it (`template = name`).

    Usable as `register_template("mine", build)` or as a decorator `@register_template("mine")`.
    Re-registering a name replaces it; the built-in `"mlp"` and `"cnn"` cannot be replaced.
    """
    if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS:
        raise ValueError(f"register_template: `name` must be a non-empty [A-Za-z0-9_.-] string, got {name!r}")
    if name in ("mlp", "cnn"):
        raise ValueError(f"register_template: {name!r} is a built-in template and cannot be replaced")
    if fn is None:
        return lambda f: register_template(name, f)
    TEMPLATES[name] = _check_template(name, fn)
    return fn


def allow_code(module_name):
    """Import `module_name` and let specs name its functions as `"module_name:function"`.

    This runs the module's code: it is the explicit opt-in behind the command line's
    `--allow-code MODULE`, and is never called because of anything written in a spec.
    """
    if not isinstance(module_name, str) or not module_name or ":" in module_name:
        raise ValueError(
            f"--allow-code: expected a module name such as 'mypackage.models', got {module_name!r}"
        )
    try:
        _ALLOWED_MODULES[module_name] = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"--allow-code {module_name}: cannot import it ({e})") from e
    return _ALLOWED_MODULES[module_name]


def resolve_template(name):
    """A template function from the registry (`"mlp"`, `"cnn"`, registered names), or
    `"module:function"` for a module allowed with `allow_code` (`--allow-code`)."""
    if callable(name):
        return name
    if not isinstance(name, str) or not name:
        raise ValueError(f"template must be a registered template name, got {name!r}")
    if name in TEMPLATES:
        return TEMPLATES[name]
    if ":" not in name:
        raise ValueError(f"unknown template {name!r}; registered: {', '.join(sorted(TEMPLATES))}")
    module_name, _, attr = name.partition(":")
    module = _ALLOWED_MODULES.get(module_name)
    if module is None:
        raise ValueError(
            f"{name!r} names Python code, and a spec never imports code; use a registered template "
            f"({', '.join(sorted(TEMPLATES))}), register one with "
            "keras_bioact.search.register_template(...), or opt in on the command line with "
            f"`--allow-code {module_name}`"
        )
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise ValueError(f"template {name!r}: module {module_name!r} has no attribute {attr!r}")
        fn = getattr(fn, part)
    return _check_template(name, fn)


def template_options(fn):
    """Names of the options a template accepts (None when it takes `**kwargs`)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n in params if n not in ("activation", "input_shape", "num_classes")]
