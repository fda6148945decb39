"""Convert an existing Keras model to learnable keras-bioact activations.

`convert(model)` returns a NEW model in which the built-in activations `relu`, `elu`,
`sigmoid`, `softplus` and `tanh` are replaced by keras-bioact layers (`GammaActivation` or
`BRU`), whether they were given as the `activation=` argument of a `Dense`, `EinsumDense` or
convolution layer, or as activation layers (`keras.layers.Activation`, `ReLU`, `ELU`). Every
other weight is copied, so the converted model computes (almost) the same function as the
original until it is trained. Sequential and functional models are supported, nested
models (Sequential or functional, at any depth) included; subclassed models are not, since
their computation lives in Python code that cannot be rewritten.

`init="match"` starts each new activation as close as possible to the one it replaces, and
the returned `ConversionReport` records, per replaced activation, its parameters and the
largest absolute difference between the new and the old activation on a probe range
(default `[-5, 5]`):

| original  | family `"gamma"`                              | family `"bru"`               |
|-----------|-----------------------------------------------|------------------------------|
| relu      | `n = relu_gain` (20), `s = 0`: dev. `ln2 / n` (0.035) | closest ERU (dev. 0.61) |
| softplus  | `n = 1, s = 0`: exact                          | closest ERU (dev. 0.70)      |
| sigmoid   | `n = 1, s = 1`: exact                          | closest BRU (dev. ~0.94)     |
| tanh      | `2 * gamma(x; n=2, s=1) - 1`: exact (*)         | closest ORU (dev. 0.19)      |
| elu       | `2 * gamma(x; n=1.36, s=0.50) - 1`: dev. 0.038 (*) | ERU, `r = 1`: exact       |

(*) with `affine=True` (default): a fixed, non-trainable `keras.layers.Rescaling(2, -1)`
follows the gamma. With `affine=False` the closest plain gamma is used instead (deviation
about 1 for tanh and ELU, whose negative values a gamma with s in [0, 1] cannot reach).

"exact" means equal up to float32 rounding (measured deviation below 1e-6). The gamma
deviation for ReLU is largest at `x = 0` and decays like `exp(-n |x|) / n`; raise
`relu_gain` for a closer start (at the price of a steeper, slower-to-adapt activation).
A replacement whose deviation exceeds `warn_deviation` triggers a `UserWarning`.
"""

import dataclasses
import functools
import math
import warnings

import keras
import numpy as np
from keras import ops

from keras_bioact.layers.bru import BRU
from keras_bioact.layers.gamma_activation import GammaActivation

__all__ = ["ConversionReport", "ConvertedActivation", "SUPPORTED_ACTIVATIONS", "convert"]

SUPPORTED_ACTIVATIONS = ("relu", "elu", "sigmoid", "softplus", "tanh")
FAMILIES = ("gamma", "bru")
_INITS = ("match", "default")
_SHARING = ("channel", "all", "element")


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
# Report
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConvertedActivation:
    """One replaced activation.

    Attributes:
        path: where the activation was, `"outer_model/inner_model/layer"`.
        activation: the replaced activation (`"relu"`, ...).
        source: `"argument"` (the `activation=` of a Dense/Conv layer, which now has a linear
            activation) or `"layer"` (an activation layer, which was replaced).
        new_layer: name of the keras-bioact layer in the converted model.
        family: `"gamma"` or `"bru"` (with `form`, `"eru"`/`"oru"`, for BRU).
        parameters: initial parameter values (`{"n": .., "s": ..}` or `{"r": ..}`); for
            `init="default"` the range of the drawn values.
        affine: `(scale, offset)` of a fixed `Rescaling` after the new activation, or `None`.
        max_deviation: `max |new(x) - old(x)|` over the probe range (2001 points), at the new
            layer's initial weights, in float64.
    """

    path: str
    activation: str
    source: str
    new_layer: str
    family: str
    form: str | None
    parameters: dict
    affine: tuple | None
    max_deviation: float


@dataclasses.dataclass
class ConversionReport:
    """What `convert` did.

    Attributes:
        converted: list of `ConvertedActivation`.
        skipped: list of `(path, reason)` for activations that were left alone
            (unsupported activation, not selected by `where`, recurrent layers, ...).
        probe_range: the `(low, high)` interval the deviations were measured on.
        output_deviation: `max |converted(x) - original(x)|` over `probe_data`, if given.
    """

    converted: list
    skipped: list
    probe_range: tuple
    output_deviation: float | None = None

    @property
    def max_deviation(self):
        """Largest activation deviation over all replaced activations (0 if none)."""
        return max((c.max_deviation for c in self.converted), default=0.0)

    def __str__(self):
        lines = [
            f"keras-bioact conversion: {len(self.converted)} activation(s) replaced, "
            f"max deviation {self.max_deviation:.3g} on [{self.probe_range[0]:g}, {self.probe_range[1]:g}]"
        ]
        for c in self.converted:
            params = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.parameters.items()
            )
            family = c.family if c.form is None else f"{c.family}/{c.form}"
            affine = "" if c.affine is None else f" then x*{c.affine[0]:g}{c.affine[1]:+g}"
            lines.append(
                f"  {c.path} ({c.activation}, {c.source}) -> {c.new_layer}: {family}({params}){affine}"
                f"  max dev {c.max_deviation:.3g}"
            )
        for path, reason in self.skipped:
            lines.append(f"  skipped {path}: {reason}")
        if self.output_deviation is not None:
            lines.append(f"  max |converted - original| on probe_data: {self.output_deviation:.3g}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Matching parameters
# --------------------------------------------------------------------------------------------


def _reference(name):
    return {
        "relu": lambda x: np.maximum(x, 0.0),
        "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
        "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
        "softplus": lambda x: np.logaddexp(0.0, x),
        "tanh": np.tanh,
    }[name]


def _np_gamma(x, n, s):
    z = n * x
    return (1 - s) * np.logaddexp(0.0, z) / n + s / (1.0 + np.exp(-z))


def _np_eru(x, r):
    root = (r * r * np.maximum(x, 0.0) + 1.0) ** (1.0 / r)
    return np.where(x >= 0, root, np.exp(r * np.minimum(x, 0.0))) - 1.0 / r


def _np_oru(x, r):
    return np.sign(x) * ((r * r * np.abs(x) + 1.0) ** (1.0 / r) - 1.0)


@functools.lru_cache(maxsize=64)
def _fit_gamma(activation, low, high, n_min, n_max, affine):
    """Minimax fit of gamma(x; n, s) (or of `2 gamma - 1` if `affine`) to `activation` on [low, high]."""
    x = np.linspace(low, high, 801)
    y = _reference(activation)(x)
    if affine:  # |2 gamma - 1 - y| = 2 |gamma - (y + 1) / 2|
        y = (y + 1.0) / 2.0

    def search(ns, ss):
        best = (math.inf, None, None)
        for n in ns:
            dev = np.abs(_np_gamma(x[None, :], n, ss[:, None]) - y).max(axis=1)
            i = int(dev.argmin())
            if dev[i] < best[0]:
                best = (float(dev[i]), float(n), float(ss[i]))
        return best

    dev, n, s = search(np.geomspace(n_min, n_max, 80), np.linspace(-0.5, 1.5, 81))
    dev, n, s = search(
        np.geomspace(max(n_min, n / 1.2), min(n_max, n * 1.2), 30), np.linspace(s - 0.05, s + 0.05, 41)
    )
    return {"n": n, "s": s}


@functools.lru_cache(maxsize=64)
def _fit_bru(activation, low, high, r_min, forms):
    x = np.linspace(low, high, 801)
    y = _reference(activation)(x)
    best = (math.inf, None, None)
    for form in forms:
        fn = _np_eru if form == "eru" else _np_oru
        for r in np.geomspace(r_min, max(8.0, 2 * r_min), 400):
            dev = float(np.abs(fn(x, r) - y).max())
            if dev < best[0]:
                best = (dev, form, float(r))
    return best[1], {"r": best[2]}


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


def _layer_activation(layer):
    """`(kind, activation name or description)`; kind in {"argument", "layer", None}."""
    if isinstance(layer, keras.layers.ReLU):
        default = (
            layer.max_value is None
            and float(layer.negative_slope) == 0.0
            and float(layer.threshold) == 0.0
        )
        return "layer", "relu" if default else "relu(max_value/negative_slope/threshold)"
    if isinstance(layer, keras.layers.ELU):
        return "layer", "elu" if float(layer.alpha) == 1.0 else f"elu(alpha={layer.alpha})"
    if isinstance(layer, keras.layers.Activation):
        name = _function_name(layer.activation)
        return "layer", name or getattr(layer.activation, "__name__", repr(layer.activation))
    activation = getattr(layer, "activation", None)
    if activation is None or not callable(activation):
        return None, None
    name = _function_name(activation) or getattr(activation, "__name__", repr(activation))
    if name == "linear":
        return None, None
    if isinstance(layer, _ACTIVATION_ARG_LAYERS):
        return "argument", name
    return "inside", name


# --------------------------------------------------------------------------------------------
# The converter
# --------------------------------------------------------------------------------------------


def _is_sequential(model):
    return isinstance(model, keras.Sequential)


def _is_functional(model):
    from keras.src.models.functional import Functional

    return isinstance(model, Functional) and type(model).call is Functional.call


def _unsupported(model, path):
    return TypeError(
        f"convert: cannot convert {path!r} of class {type(model).__name__}: it is a subclassed "
        "model (its computation is Python code, not a layer graph). Supported: keras.Sequential "
        "models and functional models (keras.Model(inputs, outputs)), nested in each other at any "
        "depth. For a subclassed model, use keras_bioact.layers.GammaActivation / BRU directly in "
        "its code (e.g. `self.act = keras_bioact.layers.GammaActivation()` in place of a relu)."
    )


class _Converter:
    def __init__(self, family, init, where, activations, sharing, trainable, relu_gain, affine, form,
                 probe_range):
        self.family = family
        self.init = init
        self.where = where
        self.activations = activations
        self.sharing = sharing
        self.trainable = trainable
        self.relu_gain = relu_gain
        self.affine = affine
        self.form = form
        self.probe_range = probe_range
        self.pairs = []  # (original layer, cloned layer): weights copied once the model is built
        self.new_activation_layers = []  # (bioact layer, record builder)
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

    def parameters_for(self, activation):
        """`(family form, parameters dict or None for defaults, affine)`."""
        low, high = self.probe_range
        if self.family == "gamma":
            if self.init == "default":
                return None, None, None
            if activation == "relu":
                return None, {"n": float(self.relu_gain), "s": 0.0}, None
            if activation == "softplus":
                return None, {"n": 1.0, "s": 0.0}, None
            if activation == "sigmoid":
                return None, {"n": 1.0, "s": 1.0}, None
            if activation == "tanh" and self.affine:
                return None, {"n": 2.0, "s": 1.0}, (2.0, -1.0)
            n_max = float(max(self.relu_gain, 20.0))
            params = _fit_gamma(activation, low, high, 0.05, n_max, self.affine)
            return None, params, ((2.0, -1.0) if self.affine else None)
        # BRU
        forms = ("eru", "oru") if self.form is None else (self.form,)
        if self.init == "default":
            return forms[0], {"r": 2.0}, None
        if activation == "elu" and "eru" in forms:
            return "eru", {"r": 1.0}, None
        r_min = 1.0 if self.trainable else 0.1
        form, params = _fit_bru(activation, low, high, r_min, forms)
        return form, params, None

    def make_activation(self, activation, base_name, rank, data_format, dtype, path):
        form, params, affine = self.parameters_for(activation)
        name = self.unique_name(f"{base_name}_{self.family}")
        shared_axes = self.shared_axes(rank, data_format)
        if self.family == "gamma":
            kwargs = {}
            if params is not None:
                kwargs = {"n_initializer": params["n"], "s_initializer": params["s"]}
            layer = GammaActivation(
                shared_axes=shared_axes,
                trainable_params=("n", "s") if self.trainable else (),
                name=name,
                dtype=dtype,
                **kwargs,
            )
        else:
            layer = BRU(
                form=form, r=params["r"], trainable_r=self.trainable, shared_axes=shared_axes,
                name=name, dtype=dtype,
            )
        layers = [layer]
        if affine is not None:
            layers.append(
                keras.layers.Rescaling(
                    scale=affine[0], offset=affine[1], name=self.unique_name(f"{name}_affine"), dtype=dtype
                )
            )
        self.new_activation_layers.append(
            dict(layer=layer, path=path, activation=activation, form=form, affine=affine)
        )
        return layers

    # -- per layer ----------------------------------------------------------------------------
    def clone_plain(self, layer, path):
        try:
            clone = layer.__class__.from_config(layer.get_config())
        except Exception as err:  # noqa: BLE001 - re-raised with context
            if isinstance(layer, keras.Model):
                raise _unsupported(layer, path) from err
            raise TypeError(
                f"convert: cannot clone layer {path!r} ({type(layer).__name__}) from its config: "
                f"{err}. Custom layers need a working `get_config()`."
            ) from err
        self.pairs.append((layer, clone))
        return clone

    def convert_layer(self, layer, ancestors):
        """Returns `(replacement layers, layers to append after it)` for one leaf layer."""
        path = "/".join([a.name for a in ancestors] + [layer.name])
        kind, activation = _layer_activation(layer)
        if kind is None:
            return [self.clone_plain(layer, path)], []
        if kind == "inside":
            self.skipped.append(
                (path, f"activation {activation!r} is applied inside {type(layer).__name__} "
                       "(e.g. a recurrent cell) and cannot be factored out")
            )
            return [self.clone_plain(layer, path)], []
        if activation not in SUPPORTED_ACTIVATIONS:
            self.skipped.append((path, f"activation {activation!r} is not one of {SUPPORTED_ACTIVATIONS}"))
            return [self.clone_plain(layer, path)], []
        if activation not in self.activations:
            self.skipped.append((path, f"activation {activation!r} not in `activations`"))
            return [self.clone_plain(layer, path)], []
        if not self.selected(layer, ancestors):
            self.skipped.append((path, "not selected by `where`"))
            return [self.clone_plain(layer, path)], []
        rank = _output_rank(layer)
        if kind == "layer":
            new = self.make_activation(
                activation, layer.name, rank, None if rank is None or rank <= 2 else
                keras.config.image_data_format(), layer.dtype_policy, path,
            )
            self.new_activation_layers[-1]["source"] = "layer"
            return new, []
        config = layer.get_config()
        config["activation"] = "linear"
        clone = layer.__class__.from_config(config)
        self.pairs.append((layer, clone))
        new = self.make_activation(
            activation, layer.name, rank, getattr(layer, "data_format", None), layer.dtype_policy, path
        )
        self.new_activation_layers[-1]["source"] = "argument"
        return [clone], new

    # -- models -------------------------------------------------------------------------------
    def convert_model(self, model, ancestors=()):
        path = "/".join([a.name for a in ancestors] + [model.name])
        if _is_sequential(model):
            return self.convert_sequential(model, ancestors)
        if _is_functional(model):
            return self.convert_functional(model, ancestors)
        raise _unsupported(model, path)

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
            lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype, name=_input_name(x)), model.input
        )
        new = keras.models.clone_model(
            model, input_tensors=inputs, clone_function=clone_function, call_function=call_function
        )
        new.trainable = model.trainable
        return new


def _input_name(tensor):
    history = getattr(tensor, "_keras_history", None)
    return history[0].name if history else None


def _output_rank(layer):
    """Rank of the layer's (first) output in the original graph, or None if unknown."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if nodes and nodes[0].output_tensors:
        return len(nodes[0].output_tensors[0].shape)
    return None


def _deviation(record, probe):
    """Max |new - old| of one new activation on the probe, at the layer's initial parameter values.

    Evaluated in float64 with the reference formulas (the layer ops are tested against the
    same formulas), once per distinct parameter value.
    """
    layer, activation = record["layer"], record["activation"]
    if isinstance(layer, GammaActivation):
        n = _flat(layer.n)
        s = _flat(np.broadcast_to(_flat(layer.s), n.shape))
        pairs = np.unique(np.stack([n, s], axis=1), axis=0)
        y = _np_gamma(probe[:, None], pairs[None, :, 0], pairs[None, :, 1])
        params = {"n": _summary(n), "s": _summary(s)}
    else:
        r = np.unique(_flat(layer.r))
        fn = _np_eru if layer.form == "eru" else _np_oru
        y = fn(probe[:, None], r[None, :])
        params = {"r": _summary(r)}
    if record["affine"] is not None:
        scale, offset = record["affine"]
        y = y * scale + offset
    target = _reference(activation)(probe)[:, None]
    return float(np.abs(y - target).max()), params


def _flat(x):
    if not isinstance(x, np.ndarray):
        x = ops.convert_to_numpy(x)
    return np.asarray(x, dtype="float64").reshape(-1)


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _summary(values):
    low, high = float(values.min()), float(values.max())
    return low if low == high else f"{low:.4g}..{high:.4g}"


def convert(
    model,
    family="gamma",
    init="match",
    where=None,
    activations=SUPPORTED_ACTIVATIONS,
    sharing=None,
    trainable=True,
    relu_gain=20.0,
    affine=True,
    form=None,
    probe_range=(-5.0, 5.0),
    probe_data=None,
    warn_deviation=0.1,
    return_report=False,
):
    """Return a copy of `model` with its activations replaced by learnable keras-bioact ones.

    Example:
    ```python
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    new_model, report = keras_bioact.convert(model, family="gamma", return_report=True)
    print(report)          # what was replaced, and the max deviation of each replacement
    new_model.compile(...); new_model.fit(...)
    ```

    The original model is left untouched. Layers are cloned from their configs and their
    weights copied; a `Dense`/`Conv` layer with a converted `activation=` gets
    `activation="linear"` and is followed by a new layer named `<layer>_<family>`; an
    activation layer is replaced by a new layer named `<layer>_<family>`. If the model was
    compiled, the copy is compiled from the same compile config (a fresh optimizer).

    Args:
        model: a built `keras.Sequential` or functional `keras.Model` (nested Sequential and
            functional models inside it are converted too). Subclassed models raise `TypeError`.
        family: `"gamma"` (`GammaActivation`, learnable gain `n` and saturation `s`) or `"bru"`
            (`BRU`, learnable radix `r`).
        init: `"match"` (start each new activation as close as possible to the one it replaces,
            see the module docstring) or `"default"` (the layer's own default initialisation).
        where: which activations to convert: `None` (all supported ones), a callable
            `where(layer) -> bool` on the layer that carries the activation, a layer class or
            tuple of classes, or a list of layer names (a nested model's name selects
            everything inside it).
        activations: the activation names to convert, a subset of `SUPPORTED_ACTIVATIONS`.
        sharing: parameter sharing of the new layers: `"channel"` (one parameter set per
            channel/unit, shared over spatial or time axes), `"all"` (one per layer) or
            `"element"` (one per output element). Default: `"channel"` for gamma, `"all"` for BRU
            (the BRU paper's choice).
        trainable: make the new activation parameters trainable (default True).
        relu_gain: gain `n` of a gamma replacing a ReLU (deviation `ln 2 / relu_gain` at 0).
        affine: for the gamma family, allow a fixed `keras.layers.Rescaling(scale=2, offset=-1)`
            after the gamma where the original activation has negative values: tanh becomes
            `2 * gamma(x; 2, 1) - 1` (exact) and ELU `2 * gamma(x; n, s) - 1` with fitted `n, s`
            (deviation 0.038 on [-5, 5]). With `affine=False` the closest plain gamma is used (deviation
            about 1 for both, since a gamma with s in [0, 1] is >= 0).
        form: BRU form, `"eru"`, `"oru"`, or `None` to pick the closer one per activation.
        probe_range: `(low, high)` interval on which deviations are measured (and fits made).
        probe_data: optional model input; if given, the report's `output_deviation` is
            `max |converted(probe_data) - model(probe_data)|`.
        warn_deviation: emit a `UserWarning` listing replacements whose deviation exceeds it
            (`None` to disable).
        return_report: return `(new_model, report)` instead of `new_model`.

    Returns:
        The converted model (built, weights copied), or `(model, ConversionReport)`. The report
        is also available as `new_model.bioact_conversion_report`.
    """
    if family not in FAMILIES:
        raise ValueError(f"convert: `family` must be one of {FAMILIES}, got {family!r}.")
    if init not in _INITS:
        raise ValueError(f"convert: `init` must be one of {_INITS}, got {init!r}.")
    if sharing is None:
        sharing = "channel" if family == "gamma" else "all"
    if sharing not in _SHARING:
        raise ValueError(f"convert: `sharing` must be one of {_SHARING} or None, got {sharing!r}.")
    if isinstance(activations, str):
        activations = (activations,)
    bad = [a for a in activations if a not in SUPPORTED_ACTIVATIONS]
    if bad:
        raise ValueError(f"convert: `activations` must be a subset of {SUPPORTED_ACTIVATIONS}, got {bad}.")
    if form not in (None, "eru", "oru"):
        raise ValueError(f"convert: `form` must be None, 'eru' or 'oru', got {form!r}.")
    if not (isinstance(relu_gain, (int, float)) and relu_gain > 0):
        raise ValueError(f"convert: `relu_gain` must be a number > 0, got {relu_gain!r}.")
    low, high = (float(v) for v in probe_range)
    if not low < high:
        raise ValueError(f"convert: `probe_range` must be (low, high) with low < high, got {probe_range!r}.")
    if where is not None and not callable(where) and not isinstance(where, tuple):
        if isinstance(where, str):
            where = [where]
        where = list(where)
        if not all(isinstance(w, str) for w in where):
            raise ValueError(
                "convert: `where` must be None, a callable, a layer class (or tuple of classes), "
                f"or a list of layer names; got {where!r}."
            )
    if not isinstance(model, keras.Model):
        raise TypeError(f"convert: `model` must be a keras.Model, got {type(model).__name__}.")
    if not (_is_sequential(model) or _is_functional(model)):
        raise _unsupported(model, model.name)
    if not model.built:
        raise ValueError(
            f"convert: model {model.name!r} is not built; give it an input shape (keras.Input) or call "
            "`model.build(input_shape)` first."
        )

    converter = _Converter(
        family, init, where, tuple(activations), sharing, bool(trainable), float(relu_gain), bool(affine),
        form, (low, high),
    )
    converter.collect_names(model)
    if isinstance(where, list):
        unknown = [w for w in where if w not in converter.names]
        if unknown:
            raise ValueError(f"convert: `where` names {unknown} match no layer or model in {model.name!r}.")
    new_model = converter.convert_model(model)

    for original, clone in converter.pairs:
        clone.set_weights(original.get_weights())
    if model.compiled:
        if not new_model.compiled:
            new_model.compile_from_config(model.get_compile_config())

    probe = np.linspace(low, high, 2001)
    converted = []
    for record in converter.new_activation_layers:
        dev, params = _deviation(record, probe)
        layer = record["layer"]
        converted.append(
            ConvertedActivation(
                path=record["path"],
                activation=record["activation"],
                source=record["source"],
                new_layer=layer.name,
                family=family,
                form=record["form"],
                parameters=params,
                affine=record["affine"],
                max_deviation=dev,
            )
        )
    report = ConversionReport(converted=converted, skipped=converter.skipped, probe_range=(low, high))
    if probe_data is not None:
        before = model(probe_data, training=False)
        after = new_model(probe_data, training=False)
        diffs = [
            float(np.max(np.abs(_numpy(a) - _numpy(b))))
            for a, b in zip(keras.tree.flatten(after), keras.tree.flatten(before), strict=True)
        ]
        report.output_deviation = max(diffs)
    if warn_deviation is not None:
        far = [c for c in converted if c.max_deviation > warn_deviation]
        if far:
            warnings.warn(
                "convert: these replacements start far from the original activation (max |new - old| on "
                f"[{low:g}, {high:g}]): "
                + ", ".join(f"{c.path} {c.activation}->{c.family}: {c.max_deviation:.3g}" for c in far),
                UserWarning,
                stacklevel=2,
            )
    object.__setattr__(new_model, "bioact_conversion_report", report)
    return (new_model, report) if return_report else new_model
