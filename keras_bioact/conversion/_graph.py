"""Rebuilding a Sequential/functional model with replaced activations (private helper of `convert`)."""

import keras

from keras_bioact.conversion._recipes import SUPPORTED_ACTIVATIONS, Spec, spec_from_function_name
from keras_bioact.conversion.rules import get_rule
from keras_bioact.layers.activation_adapter import ActivationAdapter


def _layer_types(*names):
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


# Layers whose `activation` is applied last, to the whole output, so that
# `layer(x) == activation(layer_with_linear_activation(x))`.
_ACTIVATION_ARG_LAYERS = _layer_types(
    "Dense",
    "EinsumDense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "SeparableConv1D",
    "SeparableConv2D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
)


# --------------------------------------------------------------------------------------------
# Activation detection
# --------------------------------------------------------------------------------------------


def _function_name(fn):
    """Name of a built-in Keras activation function, or None."""
    if fn is None:
        return None
    name = getattr(fn, "__name__", None)
    if name is None:
        return None
    try:
        builtin = keras.activations.get(name)
    except (ValueError, TypeError):
        return None
    return name if builtin is fn else None


def _describe(fn):
    return _function_name(fn) or getattr(fn, "__name__", repr(fn))


def _relu_layer_spec(layer):
    max_value = None if layer.max_value is None else float(layer.max_value)
    slope, threshold = float(layer.negative_slope), float(layer.threshold)
    if threshold != 0.0:
        return f"relu(threshold={threshold:g})"
    if slope != 0.0 and max_value is not None:
        return f"relu(max_value={max_value:g}, negative_slope={slope:g})"
    if slope != 0.0:
        return Spec("leaky_relu", (("negative_slope", slope),))
    if max_value == 6.0:
        return Spec("relu6")
    if max_value is not None:
        return Spec("relu", (("max_value", max_value),))
    return Spec("relu")


def layer_activation(layer):
    """`(kind, Spec or description string)`; kind in {"argument", "layer", "inside", None}."""
    if isinstance(layer, keras.layers.ReLU):
        return "layer", _relu_layer_spec(layer)
    if isinstance(layer, keras.layers.LeakyReLU):
        return "layer", Spec("leaky_relu", (("negative_slope", float(layer.negative_slope)),))
    if isinstance(layer, keras.layers.ELU):
        return "layer", Spec("elu") if float(layer.alpha) == 1.0 else f"elu(alpha={layer.alpha})"
    if isinstance(layer, keras.layers.Activation):
        name = _function_name(layer.activation)
        if name == "linear":  # an identity (e.g. ConvNeXt's in place of stochastic depth)
            return None, None
        spec = spec_from_function_name(name) if name else None
        return "layer", spec or _describe(layer.activation)
    activation = getattr(layer, "activation", None)
    if activation is None or not callable(activation):
        return None, None
    name = _function_name(activation)
    if name == "linear":
        return None, None
    spec = (spec_from_function_name(name) if name else None) or _describe(activation)
    if isinstance(layer, _ACTIVATION_ARG_LAYERS):
        return "argument", spec
    return "inside", spec if isinstance(spec, str) else spec.label


# --------------------------------------------------------------------------------------------
# Model kinds (public API only: the functional class is found in the model's own MRO)
# --------------------------------------------------------------------------------------------


def is_sequential(model):
    return isinstance(model, keras.Sequential)


def is_functional(model):
    """A functional `keras.Model(inputs, outputs)` whose `call` is not overridden."""
    if not isinstance(model, keras.Model) or is_sequential(model):
        return False
    base = next(
        (c for c in type(model).__mro__ if c.__name__ == "Functional" and c.__module__.startswith("keras")),
        None,
    )
    return base is not None and type(model).call is base.call


def unsupported(model, path):
    return TypeError(
        f"convert: cannot convert {path!r} of class {type(model).__name__}: it is a subclassed "
        "model (its computation is Python code, not a layer graph). Supported: keras.Sequential "
        "models and functional models (keras.Model(inputs, outputs)), nested in each other at any "
        "depth. For a subclassed model, use keras_bioact.layers.GammaActivation / BRU directly in "
        "its code (e.g. `self.act = keras_bioact.layers.GammaActivation()` in place of a relu)."
    )


def layers_of(model, cls):
    """The layers of type `cls` in `model`, nested models included, in order."""
    out = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, cls):
            out.append(layer)
        out += layers_of(layer, cls)
    return out


def fill(variable, value):
    """Set every entry of a Keras variable to `value`."""
    variable.assign(keras.ops.full(variable.shape, float(value), dtype=variable.dtype))


def _output_rank(layer):
    """Rank of the layer's (first) output in the original graph, or None if unknown."""
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    output = keras.tree.flatten(output)[0]
    return len(output.shape)


def _clone_operation(op):
    """A fresh copy of a stateless operation (`x + y`, `keras.ops.mean(...)` nodes), or the op itself."""
    try:
        return op.__class__.from_config(op.get_config())
    except Exception:  # noqa: BLE001 - an op without a usable config is stateless: reuse it
        return op


# --------------------------------------------------------------------------------------------
# The converter
# --------------------------------------------------------------------------------------------


class Converter:
    def __init__(
        self,
        family,
        init,
        where,
        activations,
        sharing,
        trainable,
        relu_gain,
        affine,
        form,
        probe_range,
        exact=True,
    ):
        self.family = family
        self.rule = get_rule(family)
        self.init = init
        self.where = where
        self.activations = activations
        self.sharing = sharing
        self.trainable = trainable
        self.relu_gain = relu_gain  # None: calibrate later (start at _recipes.FALLBACK_RELU_GAIN)
        self.affine = affine
        self.form = form
        self.probe_range = probe_range
        self.exact = exact
        self.pairs = []  # (original layer, cloned layer): weights copied once the model is built
        self.records = []  # one dict per new activation
        self.skipped = []
        self.names = set()

    # -- names --------------------------------------------------------------------------------
    def collect_names(self, model):
        self.names.add(model.name)
        for layer in model._flatten_layers(include_self=False, recursive=True):
            self.names.add(layer.name)

    def unique_name(self, base):
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    # -- selection ----------------------------------------------------------------------------
    def selected(self, layer, ancestors):
        where = self.where
        if where is None:
            return True
        if callable(where) and not isinstance(where, type):
            return bool(where(layer))
        if isinstance(where, type) or (isinstance(where, tuple) and all(isinstance(w, type) for w in where)):
            return isinstance(layer, where)
        names = {layer.name} | {a.name for a in ancestors}
        return bool(names & set(where))

    # -- new activation layers ----------------------------------------------------------------
    def shared_axes(self, rank, data_format):
        sharing = self.sharing
        if sharing == "all":
            return "all"
        if sharing == "element" or rank is None or rank <= 2:
            return None
        if data_format == "channels_first":
            return list(range(2, rank))
        return list(range(1, rank - 1))

    def make_activation(self, spec, base_name, rank, data_format, dtype, path, reference_fn, source):
        """The new layers (applied in order) replacing activation `spec`.

        The family's convert rule (`keras_bioact.conversion.rules`) makes the unit; the fixed
        arithmetic around it (an `ActivationAdapter`, or a `Rescaling`) follows its recipe."""
        name = self.unique_name(f"{base_name}_{self.family}")
        made = self.rule.make(self, spec, name, self.shared_axes(rank, data_format), dtype)
        unit, recipe, form = made["unit"], made["recipe"], made["form"]
        correction, use_adapter = made["correction"], made["use_adapter"]
        rescale = None
        if use_adapter:
            top = ActivationAdapter(
                unit,
                pre_scale=recipe.pre_scale,
                pre_shift=recipe.pre_shift,
                max_value=recipe.max_value,
                scale=recipe.scale,
                offset=recipe.offset,
                gate=recipe.gate,
                slope=recipe.slope,
                correction=correction,
                name=name,
                dtype=dtype,
            )
            layers = [top]
        else:
            top = unit
            layers = [unit]
            if recipe is not None and recipe.affine is not None:
                rescale = recipe.affine
                layers.append(
                    keras.layers.Rescaling(
                        scale=rescale[0],
                        offset=rescale[1],
                        name=self.unique_name(f"{name}_affine"),
                        dtype=dtype,
                    )
                )
        self.records.append(
            dict(
                unit=unit,
                top=top,
                rescale=rescale,
                recipe=recipe,
                path=path,
                spec=spec,
                form=form,
                reference_fn=reference_fn,
                source=source,
                correction=correction,
            )
        )
        return layers

    # -- per layer ----------------------------------------------------------------------------
    def clone_plain(self, layer, path):
        try:
            clone = layer.__class__.from_config(layer.get_config())
        except Exception as err:  # noqa: BLE001 - re-raised with context
            if isinstance(layer, keras.Model):
                raise unsupported(layer, path) from err
            raise TypeError(
                f"convert: cannot clone layer {path!r} ({type(layer).__name__}) from its config: "
                f"{err}. Custom layers need a working `get_config()`."
            ) from err
        self.pairs.append((layer, clone))
        return clone

    def convert_layer(self, layer, ancestors):
        """Returns `(replacement layers, layers to append after it)` for one leaf layer."""
        path = "/".join([a.name for a in ancestors] + [layer.name])
        kind, spec = layer_activation(layer)
        if kind is None:
            return [self.clone_plain(layer, path)], []
        if kind == "inside":
            self.skipped.append(
                (
                    path,
                    f"activation {spec!r} is applied inside {type(layer).__name__} "
                    "(e.g. a recurrent cell) and cannot be factored out",
                )
            )
            return [self.clone_plain(layer, path)], []
        if isinstance(spec, str):
            self.skipped.append(
                (
                    path,
                    f"activation {spec!r} is not supported (supported: {', '.join(SUPPORTED_ACTIVATIONS)})",
                )
            )
            return [self.clone_plain(layer, path)], []
        if spec.name not in self.activations:
            self.skipped.append((path, f"activation {spec.label!r} not in `activations`"))
            return [self.clone_plain(layer, path)], []
        if self.rule.supports is not None and not self.rule.supports(spec):
            self.skipped.append((path, f"activation {spec.label!r} has no {self.family} conversion"))
            return [self.clone_plain(layer, path)], []
        if not self.selected(layer, ancestors):
            self.skipped.append((path, "not selected by `where`"))
            return [self.clone_plain(layer, path)], []
        rank = _output_rank(layer)
        if kind == "layer":
            data_format = None if rank is None or rank <= 2 else keras.config.image_data_format()
            new = self.make_activation(
                spec, layer.name, rank, data_format, layer.dtype_policy, path, layer, "layer"
            )
            return new, []
        config = layer.get_config()
        config["activation"] = "linear"
        clone = layer.__class__.from_config(config)
        self.pairs.append((layer, clone))
        new = self.make_activation(
            spec,
            layer.name,
            rank,
            getattr(layer, "data_format", None),
            layer.dtype_policy,
            path,
            layer.activation,
            "argument",
        )
        return [clone], new

    # -- models -------------------------------------------------------------------------------
    def convert_model(self, model, ancestors=()):
        path = "/".join([a.name for a in ancestors] + [model.name])
        if is_sequential(model):
            return self.convert_sequential(model, ancestors)
        if is_functional(model):
            return self.convert_functional(model, ancestors)
        raise unsupported(model, path)

    def convert_sequential(self, model, ancestors):
        inner = (*ancestors, model)
        new_layers = []
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                new_layers.append(self.convert_model(layer, inner))
                continue
            replaced, after = self.convert_layer(layer, inner)
            new_layers.extend(replaced)
            new_layers.extend(after)
        first = model._layers[0] if model._layers else None
        if isinstance(first, keras.layers.InputLayer):
            inputs = keras.Input(
                batch_shape=first.batch_shape, dtype=first._dtype, name=first.name, optional=first.optional
            )
            new_layers = [inputs, *new_layers]
        new = keras.Sequential(new_layers, name=model.name, trainable=model.trainable)
        if not new.built and model.built and ancestors == ():
            new.build(model.input_shape)
        return new

    def convert_functional(self, model, ancestors):
        inner = (*ancestors, model)
        after_map = {}

        def clone_function(layer):
            if isinstance(layer, keras.Model):
                return self.convert_model(layer, inner)
            if not isinstance(layer, keras.layers.Layer):  # an op node: `x + y`, `keras.ops.*`
                return _clone_operation(layer)
            replaced, after = self.convert_layer(layer, inner)
            if len(replaced) == 1:
                head = replaced[0]
            else:  # an activation layer replaced by activation + fixed affine
                head, after = replaced[0], replaced[1:]
            if after:
                after_map[id(head)] = after
            return head

        def call_function(layer, *args, **kwargs):
            out = layer(*args, **kwargs)
            for extra in after_map.get(id(layer), ()):
                out = extra(out)
            return out

        inputs = keras.tree.map_structure(
            lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name), model.input
        )
        new = keras.models.clone_model(
            model, input_tensors=inputs, clone_function=clone_function, call_function=call_function
        )
        new.trainable = model.trainable
        return new
