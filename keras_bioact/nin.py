"""Network-in-network helpers for two-argument units (Yoon et al. 2021, arXiv:2110.06871).

* Parameter counting and matching: `inner_param_count`, `two_arg_mlp_param_count`,
  `relu_mlp_param_count`, `param_matched_relu_widths` (the ReLU baseline whose parameter count
  matches a two-argument MLP within a tolerance, 1 % by default).
* Model builders: `two_arg_mlp`, `relu_mlp` (the paper's outer MLPs, functional models).
* Training protocol (Yoon et al. 2021): `random_smooth_surface` + `pretrain_inner` (session I, g
  pre-trained to a random smooth function), `freeze_inner` and `reinitialize_outer`
  (session III), `inner_nets` (the distinct inner nets of any model).

Widths are given as *pre-activation* widths, as in the authors' configs: `[120, 120, 120]`
with arity 2 means three layers of 60 two-argument units each. The paper's MNIST pair:

>>> two_arg_mlp_param_count(784, [120, 120, 120], 10)
113867
>>> param_matched_relu_widths(784, [120, 120, 120], 10)
[112, 112, 112]
>>> relu_mlp_param_count(784, [112, 112, 112], 10)
114362
"""

import keras
import numpy as np

from keras_bioact.layers.inner_nonlinearity import InnerNonlinearity
from keras_bioact.layers.two_arg_dense import TwoArgDense
from keras_bioact.seeding import set_random_seed

__all__ = [
    "freeze_inner",
    "inner_nets",
    "inner_param_count",
    "param_matched_relu_widths",
    "pretrain_inner",
    "random_smooth_surface",
    "reinitialize_outer",
    "relu_mlp",
    "relu_mlp_param_count",
    "two_arg_mlp",
    "two_arg_mlp_param_count",
    "units_of",
]


def _check_widths(widths, arity, fn):
    try:
        widths = [int(w) for w in widths]
    except TypeError:
        raise ValueError(f"{fn}: `widths` must be a sequence of positive ints, got {widths!r}.") from None
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"{fn}: `widths` must be a non-empty sequence of positive ints, got {widths!r}.")
    if arity not in (1, 2):
        raise ValueError(f"{fn}: `arity` must be 1 or 2, got {arity!r}.")
    odd = [w for w in widths if w % arity]
    if odd:
        raise ValueError(
            f"{fn}: pre-activation `widths` {widths} cannot be grouped into units of `arity`={arity}: "
            f"{odd} not divisible by {arity}."
        )
    return widths


def units_of(widths, arity=2):
    """Two-argument units per layer for pre-activation `widths` (`w // arity`, checked)."""
    return [w // arity for w in _check_widths(widths, arity, "units_of")]


def inner_param_count(arity=2, hidden_units=(64, 64)):
    """Weights of one inner net g: `sum(n_in * n_out + n_out)` over `(arity, *hidden, 1)`."""
    sizes = (arity, *hidden_units, 1)
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def two_arg_mlp_param_count(input_dim, widths, output_dim, arity=2, inner_hidden=(64, 64), use_bias=True):
    """Parameters of a two-argument MLP with ONE shared inner net.

    Layer i maps `n_in` features to `widths[i]` pre-activations (`n_in * w + w` weights) and
    outputs `widths[i] // arity` units; a final Dense maps to `output_dim`; g is counted once.
    """
    widths = _check_widths(widths, arity, "two_arg_mlp_param_count")
    total, n_in = 0, int(input_dim)
    for w in widths:
        total += n_in * w + (w if use_bias else 0)
        n_in = w // arity
    total += n_in * output_dim + output_dim
    return total + inner_param_count(arity, inner_hidden)


def relu_mlp_param_count(input_dim, widths, output_dim):
    """Parameters of a plain MLP `input_dim -> widths... -> output_dim` (with biases)."""
    sizes = [int(input_dim), *[int(w) for w in widths], int(output_dim)]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def param_matched_relu_widths(
    input_dim, widths, output_dim, arity=2, inner_hidden=(64, 64), tolerance=0.01, target=None
):
    """ReLU hidden widths whose parameter count matches a two-argument MLP.

    The ReLU widths are the two-argument pre-activation `widths` scaled by one common factor
    (so equal widths stay equal) and rounded; the scale whose count is closest to the
    two-argument count is returned. Only if that misses `tolerance` (small nets), the last
    hidden width is then adjusted on its own to get closer. For the paper's MNIST MLP
    (`784, [120]*3, 10`) this gives
    `[112, 112, 112]` (114,362 vs 113,867 parameters, +0.43 %).

    Args:
        input_dim, widths, output_dim, arity, inner_hidden: the two-argument architecture
            (pre-activation widths, see `two_arg_mlp_param_count`).
        tolerance: largest accepted relative mismatch. Default 0.01 (1 %).
        target: match this parameter count instead of the computed one.

    Returns:
        A list of ints, one width per hidden layer.

    Raises:
        ValueError: for unpairable widths, or when no scale matches within `tolerance`.
    """
    widths = _check_widths(widths, arity, "param_matched_relu_widths")
    if target is None:
        target = two_arg_mlp_param_count(input_dim, widths, output_dim, arity, inner_hidden)
    largest = max(widths)
    best = None
    k = 1
    while True:
        candidate = [max(1, round(k * w / largest)) for w in widths]
        count = relu_mlp_param_count(input_dim, candidate, output_dim)
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (candidate, count)
        if count > target:
            break
        k += 1
    candidate, count = best
    if abs(count - target) / target > tolerance and len(candidate) > 1:
        # Small nets: the common scale is too coarse; fine-tune the last hidden width.
        for last in range(1, 4 * max(candidate) + 2):
            trial = [*candidate[:-1], last]
            trial_count = relu_mlp_param_count(input_dim, trial, output_dim)
            if abs(trial_count - target) < abs(count - target):
                candidate, count = trial, trial_count
    mismatch = abs(count - target) / target
    if mismatch > tolerance:
        raise ValueError(
            f"param_matched_relu_widths: the closest ReLU widths {candidate} have {count} parameters, "
            f"{mismatch:.2%} away from {target}; raise `tolerance` (now {tolerance}) or change `widths`."
        )
    return candidate


def two_arg_mlp(
    input_shape,
    widths,
    num_classes,
    arity=2,
    inner=None,
    inner_hidden=(64, 64),
    dropout=0.5,
    normalize=True,
    pairing="adjacent",
    name=None,
):
    """The paper's two-argument MLP: Flatten, `TwoArgDense` per width, Dense(num_classes) logits.

    Every `TwoArgDense` shares ONE inner net (`inner`, or a new
    `InnerNonlinearity(arity, inner_hidden)`). Returns a functional model with logits output.
    """
    widths = _check_widths(widths, arity, "two_arg_mlp")
    if inner is None:
        inner = InnerNonlinearity(arity=arity, hidden_units=inner_hidden, name="inner")
    inputs = keras.Input(tuple(input_shape))
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for i, w in enumerate(widths):
        x = TwoArgDense(
            w // arity,
            inner=inner,
            arity=arity,
            dropout=dropout,
            normalize=normalize,
            pairing=pairing,
            name=f"two_arg_dense_{i}",
        )(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or f"two_arg_mlp_arity{arity}")


def relu_mlp(input_shape, widths, num_classes, dropout=0.5, name=None):
    """A ReLU MLP baseline: Flatten, Dense+ReLU (+Dropout) per width, Dense(num_classes) logits."""
    inputs = keras.Input(tuple(input_shape))
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for i, w in enumerate(widths):
        x = keras.layers.Dense(int(w), activation="relu", name=f"dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or "relu_mlp")


# --------------------------------------------------------------------------------------------
# Training protocol (Yoon et al. 2021)


def inner_nets(model):
    """The distinct `InnerNonlinearity` layers used anywhere in `model` (each once)."""
    found, seen = [], set()
    layers = model._flatten_layers(include_self=True, recursive=True)
    for layer in layers:
        candidates = [layer] if isinstance(layer, InnerNonlinearity) else []
        inner = getattr(layer, "inner", None)
        if isinstance(inner, InnerNonlinearity):
            candidates.append(inner)
        for c in candidates:
            if id(c) not in seen:
                seen.add(id(c))
                found.append(c)
    return found


def _gaussian_kernel_1d(coords, sigma):
    k = np.exp(-0.5 * (coords / sigma) ** 2)
    return k / k.sum()


def random_smooth_surface(arity=2, grid_size=101, extent=5.0, sigma=1.0 / 3.0, seed=None):
    """A random smooth function on a grid: Yoon et al. 2021's session I targets.

    Uniform noise U(-1, 1) on a `grid_size`-point grid over `[-extent, extent]^arity`,
    convolved ("same" size, zero padding) with a normalised Gaussian of standard deviation
    `sigma` in input units (covariance `sigma**2 * I`; the reference uses 1/9 * I). For
    arity 2 the Gaussian is separable, so this equals the reference's 2-D convolution.

    Returns:
        `(points, targets)`: float32 arrays of shapes `(grid_size**arity, arity)` and
        `(grid_size**arity, 1)`; points in the reference's order (first coordinate fastest).
    """
    if arity not in (1, 2):
        raise ValueError(f"random_smooth_surface: `arity` must be 1 or 2, got {arity!r}.")
    if grid_size < 2 or extent <= 0 or sigma <= 0:
        raise ValueError(
            "random_smooth_surface: need `grid_size` >= 2, `extent` > 0 and `sigma` > 0, got "
            f"{grid_size}, {extent}, {sigma}."
        )
    rng = np.random.default_rng(seed)
    axis = np.linspace(-extent, extent, grid_size)
    kernel = _gaussian_kernel_1d(axis, sigma)
    if arity == 1:
        noise = rng.uniform(-1.0, 1.0, size=grid_size)
        targets = np.convolve(noise, kernel, mode="same")
        points = axis[:, None]
    else:
        noise = rng.uniform(-1.0, 1.0, size=(grid_size, grid_size))
        rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, noise)
        targets = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, rows)
        xv, yv = np.meshgrid(axis, axis)
        points = np.stack([xv.reshape(-1), yv.reshape(-1)], axis=-1)
    return points.astype("float32"), targets.reshape(-1, 1).astype("float32")


def pretrain_inner(
    inner,
    epochs=20,
    batch_size=100,
    learning_rate=1e-3,
    seed=None,
    surface=None,
    verbose=0,
    **surface_kwargs,
):
    """Session I: fit the inner net g to a random smooth function (MSE, Adam).

    Args:
        inner: an `InnerNonlinearity`, or a model: then each of its distinct inner nets is
            pre-trained (each on its own random surface).
        epochs: passes over the grid (the reference allows up to 500). Default 20.
        batch_size: default 100 (the reference's).
        learning_rate: Adam learning rate. Default 1e-3.
        seed: seed of the surface (and shuffling); each inner net gets `seed + i`.
        surface: optional `(points, targets)` to fit instead of a random surface.
        verbose: Keras `fit` verbosity.
        **surface_kwargs: passed to `random_smooth_surface` (grid_size, extent, sigma).

    Returns:
        The final training MSE (a list of them when `inner` is a model).
    """
    if not isinstance(inner, InnerNonlinearity):
        nets = inner_nets(inner)
        if not nets:
            raise ValueError("pretrain_inner: `inner` contains no InnerNonlinearity layer.")
        return [
            pretrain_inner(
                g,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                seed=None if seed is None else seed + i,
                surface=surface,
                verbose=verbose,
                **surface_kwargs,
            )
            for i, g in enumerate(nets)
        ]
    if surface is None:
        surface = random_smooth_surface(arity=inner.arity, seed=seed, **surface_kwargs)
    points, targets = surface
    wrapper = keras.Sequential([keras.Input((inner.arity,)), inner], name="pretrain_inner")
    wrapper.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    if seed is not None:
        set_random_seed(seed)
    history = wrapper.fit(
        points, targets, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose
    )
    return float(history.history["loss"][-1])


def freeze_inner(model, frozen=True):
    """Session III: freeze (or with `frozen=False` unfreeze) every inner net of `model`.

    Recompile the model afterwards (Keras reads `trainable` when compiling). Returns the nets.
    """
    nets = inner_nets(model)
    if not nets:
        raise ValueError("freeze_inner: the model contains no InnerNonlinearity layer.")
    for g in nets:
        g.trainable = not frozen
    return nets


def tabulate_inner(model, grid=1025, bound=5.0):
    """A copy of `model` whose frozen inner nets are `TabulatedInner`s (the fast path of a fixed g).

    Each distinct inner net, which must be frozen (`freeze_inner`), is tabulated once and shared
    again by the two-argument layers that shared it; every other weight is copied. Works on
    Sequential and functional models whose two-argument layers sit at the top level. Compile
    the returned model before training it. Returns `(new_model, {inner net name: TabulatedInner})`;
    each table has its measured `max_error`.
    """
    import keras

    from keras_bioact.layers.tabulated_inner import TabulatedInner

    nets = inner_nets(model)
    if not nets:
        raise ValueError("tabulate_inner: the model contains no InnerNonlinearity layer.")
    trainable = [g.name for g in nets if g.trainable]
    if trainable:
        raise ValueError(
            f"tabulate_inner: inner nets {trainable} are trainable; call freeze_inner(model) first."
        )
    fast = {id(g): TabulatedInner.from_inner(g, grid=grid, bound=bound, name=f"{g.name}_table") for g in nets}

    def clone(layer):
        config = layer.get_config()
        if id(getattr(layer, "inner", None)) in fast:
            config["inner"] = fast[id(layer.inner)]
        return type(layer).from_config(config)

    new = keras.models.clone_model(model, clone_function=clone)
    skip = {id(v) for g in nets for v in g.weights} | {id(v) for t in fast.values() for v in t.weights}
    for old_layer, new_layer in zip(model.layers, new.layers, strict=True):
        old_w = [v for v in old_layer.weights if id(v) not in skip]
        new_w = [v for v in new_layer.weights if id(v) not in skip]
        for a, b in zip(old_w, new_w, strict=True):
            b.assign(a)
    return new, {g.name: fast[id(g)] for g in nets}


def reinitialize_outer(model, seed=None):
    """Session III: re-draw every weight of `model` except those of its inner nets.

    Each layer's own variable `v` is re-initialised with the layer's `<v>_initializer`
    attribute (the Keras convention: `kernel_initializer`, `bias_initializer`,
    `gamma_initializer`, ...). Inner nets (`InnerNonlinearity`) keep their weights.
    Recompile afterwards to reset the optimizer state.

    Raises:
        ValueError: if a variable has no initializer attribute to re-draw it with (named).
    """
    rng = np.random.default_rng(seed)  # per-variable seeds when `seed` is given
    protected = {id(v) for g in inner_nets(model) for v in g.weights}
    done = set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, InnerNonlinearity):
            continue
        sub_ids = {
            id(v) for sub in layer._flatten_layers(include_self=False, recursive=True) for v in sub.weights
        }
        for variable in layer.weights:
            if id(variable) in sub_ids or id(variable) in protected or id(variable) in done:
                continue
            done.add(id(variable))
            short = variable.name.split("/")[-1]
            init = getattr(layer, f"{short}_initializer", None)
            if init is None:
                raise ValueError(
                    f"reinitialize_outer: layer {layer.name!r} has no `{short}_initializer` attribute to "
                    f"re-initialise variable {variable.path!r} with."
                )
            init = keras.initializers.get(init)
            if seed is not None and hasattr(init, "seed"):
                config = init.get_config()
                config["seed"] = int(rng.integers(2**31 - 1))
                init = type(init).from_config(config)
            value = init(tuple(variable.shape), dtype=variable.dtype)
            variable.assign(value)
    return model
