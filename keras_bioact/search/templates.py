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
    "transformer",
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


FEED_FORWARD = ("activation", "reglu", "geglu", "swiglu")


def transformer(
    activation,
    input_shape,
    num_classes,
    patch=2,
    blocks=2,
    width=32,
    heads=2,
    mlp_ratio=2,
    feed_forward="activation",
    dropout=0.0,
):
    """A small vision transformer (pre-norm ViT) whose feed-forward blocks come from `activation`.

    Images `(H, W)` or `(H, W, C)`, cut into `patch x patch` patches by a strided Conv2D of
    `width` channels, plus a depthwise 3x3 conv positional encoding (Chu et al. 2021's
    conditional positional encoding); then `blocks` pre-norm blocks
    `x += MHA(LN(x)); x += FFN(LN(x))` with `heads` heads; LayerNorm, mean over tokens, softmax.

    Every feed-forward block has the parameters of a plain block of hidden width
    `mlp_ratio * width` (within 2 %, `keras_bioact.feed_forward.feed_forward_hidden`):

    * `feed_forward = "activation"` (default): the searched family is the feed-forward's
      nonlinearity. `two_arg` gives `TwoArgFeedForward` blocks sharing the activation's one g
      (its weights counted once for the whole model), with `[space.two_arg] groups` inner nets;
      every other family gives `Dense(hidden)`, the family's activation layer (site i = block i),
      `Dense(width)` (`relu` and `gelu` are the plain baselines).
    * `"reglu"`, `"geglu"`, `"swiglu"`: the GLU baselines (`FeedForward(gated=True)`), fixed by
      the spec: the searched activation is then not used (search the family `relu`, say, to run
      them as one-configuration studies).

    Options:
        patch: patch side, dividing H and W.
        blocks: number of transformer blocks.
        width: token width (divisible by `heads`).
        heads: attention heads.
        mlp_ratio: hidden width of the plain feed-forward block, as a multiple of `width`.
        feed_forward: `"activation"`, `"reglu"`, `"geglu"` or `"swiglu"` (above).
        dropout: dropout rate after attention and feed-forward (0 disables).
    """
    import keras

    from keras_bioact import feed_forward as ffn

    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or shape[0] % int(patch) or shape[1] % int(patch):
        raise ValueError(
            f"transformer: inputs must be images (H, W) or (H, W, C) with H and W divisible by "
            f"`patch`={patch}, got input shape {tuple(input_shape)}."
        )
    if feed_forward not in FEED_FORWARD:
        raise ValueError(
            f"transformer: `feed_forward` must be one of {list(FEED_FORWARD)}, got {feed_forward!r}."
        )
    width, heads, blocks = int(width), int(heads), int(blocks)
    if width % heads:
        raise ValueError(f"transformer: `width`={width} must be divisible by `heads`={heads}.")
    budget = ffn.feed_forward_params("gelu", width, int(mlp_ratio * width))
    two_arg = feed_forward == "activation" and activation.family == "two_arg"
    if two_arg:
        c = activation.config
        groups, arity = int(c.get("groups", 1)), int(c["arity"])
        inner_hidden = (int(c["inner_width"]),) * int(c["depth"])
        # One g for the whole model: each block's share of the budget pays for 1/blocks of it.
        g = ffn.feed_forward_params(
            "two_arg", width, 1, groups=groups, arity=arity, inner_hidden=inner_hidden
        )
        g -= ffn.feed_forward_params("two_arg", width, 1, arity=arity, count_inner=False)
        hidden = ffn.feed_forward_hidden(
            "two_arg",
            width,
            max(1, budget - g // blocks),
            groups=groups,
            arity=arity,
            count_inner=False,
            tolerance=None,
        )
    elif feed_forward == "activation":
        hidden = int(mlp_ratio * width)
    else:
        hidden = ffn.feed_forward_hidden(feed_forward, width, budget)

    inputs = keras.Input(shape=tuple(int(d) for d in input_shape))
    x = keras.layers.Reshape(shape)(inputs) if len(input_shape) == 2 else inputs
    x = keras.layers.Conv2D(width, int(patch), strides=int(patch), name="patches")(x)
    x = keras.layers.Add()([x, keras.layers.DepthwiseConv2D(3, padding="same", name="position")(x)])
    tokens = (shape[0] // int(patch)) * (shape[1] // int(patch))
    x = keras.layers.Reshape((tokens, width))(x)
    for i in range(blocks):
        h = keras.layers.LayerNormalization(epsilon=1e-6)(x)
        h = keras.layers.MultiHeadAttention(heads, width // heads, name=f"attention_{i}")(h, h)
        if dropout:
            h = keras.layers.Dropout(float(dropout))(h)
        x = keras.layers.Add()([x, h])
        h = keras.layers.LayerNormalization(epsilon=1e-6)(x)
        if two_arg:
            from keras_bioact.layers import TwoArgFeedForward

            c = activation.config
            block = TwoArgFeedForward(
                hidden,
                inner=activation.inner(),
                groups=groups,
                pairing=c["pairing"],
                normalize=bool(c["normalize"]),
                name=f"feed_forward_{i}",
            )
            h = block(h)
        elif feed_forward == "activation":
            for layer in activation.dense(hidden, i):
                h = layer(h)
            h = keras.layers.Dense(width)(h)
        else:
            h = ffn.feed_forward(feed_forward, hidden, name=f"feed_forward_{i}")(h)
        if dropout:
            h = keras.layers.Dropout(float(dropout))(h)
        x = keras.layers.Add()([x, h])
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization(epsilon=1e-6)(x))
    outputs = keras.layers.Dense(int(num_classes), activation="softmax")(x)
    name = activation.family if feed_forward == "activation" else feed_forward
    return keras.Model(inputs, outputs, name=f"transformer_{name}")


TEMPLATES = {"mlp": mlp, "cnn": cnn, "transformer": transformer}
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
    Re-registering a name replaces it; the built-in `"mlp"`, `"cnn"` and `"transformer"` cannot be
    replaced.
    """
    if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS:
        raise ValueError(f"register_template: `name` must be a non-empty [A-Za-z0-9_.-] string, got {name!r}")
    if name in ("mlp", "cnn", "transformer"):
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
