"""Find the keras-bioact layers of a model and turn each into numbers and figures.

Shared by `ActivationInspector` (TensorBoard) and `bioact inspect` (PNG files). The dispatch is
by attributes, not by class, so any layer or RNN cell that declares `bioact_parameters` is
covered:

each family of the registry (`keras_bioact.families`) recognises its layers through its
`inspect` hook, and draws them with its NumPy reference:

* parameters named `n` and `s` (GammaActivation, gamma RNN cells): gamma curves;
* a parameter `r` and a `form` of "eru"/"oru" (BRU): root-unit curves;
* an `arity` attribute of 2 (the shared inner net g of two-argument layers): the surface g(a, b)
  and its XOR score; arity 1: the curve g(x);
* the layers of any other registered family with an `inspect` hook: curves of its reference;
* an RNN cell with a trajectory option (the adaptive ANRU cell): n_t, s_t over a probe batch.

Every layer also gets histograms and mean/std/min/max of each of its parameters.
"""

import warnings

import numpy as np
from keras import ops

from keras_bioact import families as registry
from keras_bioact.params import activation_parameters

MAX_SAMPLED_NEURONS = 4096


class InspectedLayer:
    """One keras-bioact layer (or cell) of a model and what can be drawn of it."""

    def __init__(self, layer, parameters, tag, owner=None):
        self.layer = layer
        self.parameters = parameters  # list of ActivationParameter
        self.tag = tag
        self.owner = owner  # the keras.layers.RNN wrapping a cell, if any
        self.kind, self.family = _kind_of(layer, [p.name for p in parameters])
        self.has_trajectories = _trajectory_support(layer) is not None
        self._sample = None
        self._clone = None

    def __repr__(self):
        return f"InspectedLayer({self.tag!r}, kind={self.kind!r})"

    # -- numbers -----------------------------------------------------------------------------
    def parameter_values(self):
        """`{name: np.ndarray}` of the layer's activation parameters (float64)."""
        return {
            p.name: np.asarray(ops.convert_to_numpy(p.variable.value), dtype="float64")
            for p in self.parameters
        }

    def parameter_stats(self, values=None):
        """`{"n/mean": ..., "n/std": ..., "n/min": ..., "n/max": ...}` over each parameter."""
        values = self.parameter_values() if values is None else values
        stats = {}
        for name, v in values.items():
            v = v.reshape(-1)
            if v.size == 0:
                continue
            stats[f"{name}/mean"] = float(np.mean(v))
            stats[f"{name}/std"] = float(np.std(v))
            stats[f"{name}/min"] = float(np.min(v))
            stats[f"{name}/max"] = float(np.max(v))
        return stats

    # -- curves ------------------------------------------------------------------------------
    def has_curves(self):
        return self._draws_reference() or self.kind == "inner_curve"

    def _draws_reference(self):
        return self.family is not None and self.kind == self.family.name

    def curves(self, x, values=None):
        """(P, G) curves of the layer's P neurons over the grid `x` (G,), or None.

        Per-neuron curves come from the family's NumPy reference. Wide layers are subsampled
        to `MAX_SAMPLED_NEURONS` neurons (a fixed random subset).
        """
        x = np.asarray(x, dtype="float64")
        if self.kind == "inner_curve":
            y = ops.convert_to_numpy(self.layer(ops.convert_to_tensor(x.reshape(-1, 1).astype("float32"))))
            return np.asarray(y, dtype="float64").reshape(1, -1)
        if not self._draws_reference():
            return None
        values = self.parameter_values() if values is None else values
        names = [name for name in self.family.parameter_names if name in values]
        params = [p.reshape(-1) for p in np.broadcast_arrays(*(values[name] for name in names))]
        static = {
            k: v
            for k, v in self.family.reference_params(self.layer).items()
            if k not in names and not isinstance(v, np.ndarray)
        }
        size = params[0].size
        if size > MAX_SAMPLED_NEURONS:
            if self._sample is None or self._sample[0] != size:
                rng = np.random.default_rng(0)
                self._sample = (size, np.sort(rng.choice(size, MAX_SAMPLED_NEURONS, replace=False)))
            params = [p[self._sample[1]] for p in params]
        columns = {name: p[:, None] for name, p in zip(names, params, strict=True)}
        return self.family.reference(x[None, :], **columns, **static)

    def curve_title(self, count=None):
        family = self.family
        label = family.curve_label(self.layer) if family is not None and family.curve_label else ""
        return f"{self.tag}: {label}"

    # -- two-argument surfaces ---------------------------------------------------------------
    def surface(self, lim=3.0, num=41):
        """(a, b, g) with g of shape (num, num) evaluated on a square grid, or None."""
        if self.kind != "surface":
            return None
        grid = np.linspace(-lim, lim, num)
        a, b = np.meshgrid(grid, grid, indexing="xy")
        z = np.stack([a.reshape(-1), b.reshape(-1)], axis=-1).astype("float32")
        g = ops.convert_to_numpy(self.layer(ops.convert_to_tensor(z)))
        return grid, grid, np.asarray(g, dtype="float64").reshape(num, num)

    # -- ANRU trajectories -------------------------------------------------------------------
    def trajectories(self, probe):
        """(n_t, s_t), each (batch, T, N), on the probe batch `probe` (input of the RNN), or None.

        Cells that offer `return_trajectories` (a config option making the cell output
        `concat([h_t, n_t, s_t])`) and `split_trajectories(outputs) -> (h, n, s)` (the ANRU
        cell) are run as a copy with the option on, inside `keras.layers.RNN(...,
        return_sequences=True)`, with the cell's current weights; the model is not touched.
        A cell may instead define `trajectories(inputs) -> (n_t, s_t)` itself.
        """
        support = _trajectory_support(self.layer)
        if support is None or probe is None:
            return None
        if support == "method":
            n_t, s_t = self.layer.trajectories(probe)
        else:
            import keras

            cell = self.layer
            probe = ops.convert_to_tensor(np.asarray(probe, dtype="float32"))
            if self._clone is None:
                config = cell.get_config()
                config["return_trajectories"] = True
                clone = type(cell).from_config(config)
                rnn = keras.layers.RNN(
                    clone, return_sequences=True, go_backwards=getattr(self.owner, "go_backwards", False)
                )
                rnn.build(tuple(probe.shape))
                self._clone = rnn
            rnn = self._clone
            rnn.cell.set_weights(cell.get_weights())
            outputs = rnn(probe)
            _, n_t, s_t = type(cell).split_trajectories(outputs)
        return (
            np.asarray(ops.convert_to_numpy(n_t), dtype="float64"),
            np.asarray(ops.convert_to_numpy(s_t), dtype="float64"),
        )


def _kind_of(layer, names):
    """`(kind, family or None)` of a layer, from the `inspect` hooks of the family registry.

    A kind equal to the family's name means per-neuron curves of the family's NumPy reference;
    a family may name another kind ("surface", "inner_curve"); "parameters" when no family
    claims the layer (histograms and statistics only)."""
    for family in registry.families_with("inspect"):
        kind = family.inspect(layer, names)
        if kind is not None:
            return kind, family
    return "parameters", None


def _trajectory_support(cell):
    """How (n_t, s_t) of `cell` can be computed: "method", "clone" or None."""
    if callable(getattr(cell, "trajectories", None)):
        return "method"
    if hasattr(cell, "return_trajectories") and callable(getattr(cell, "split_trajectories", None)):
        return "clone"
    return None


def find_layers(model):
    """The `InspectedLayer`s of `model`, in depth-first order, each layer once.

    Raises `ValueError` if a keras-bioact layer is not built yet.
    """
    grouped = {}
    for p in activation_parameters(model):
        grouped.setdefault(id(p.layer), (p.layer, []))[1].append(p)
    owners = _rnn_owners(model)
    found, used = [], {}
    for layer, params in grouped.values():
        owner = owners.get(id(layer))
        base = layer.name if owner is None else f"{owner.name}/{layer.name}"
        count = used.get(base, 0)
        used[base] = count + 1
        tag = base if count == 0 else f"{base}_{count}"
        found.append(InspectedLayer(layer, params, tag, owner))
    # Cells whose trajectories can be probed but that hold no activation variable themselves.
    for owner in owners.values():
        cell = owner.cell
        if id(cell) not in grouped and _trajectory_support(cell) is not None:
            found.append(InspectedLayer(cell, [], f"{owner.name}/{cell.name}", owner))
    return found


def _rnn_owners(model):
    owners = {}
    stack, seen = [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        cell = getattr(layer, "cell", None)
        if cell is not None:
            owners[id(cell)] = layer
        stack.extend(layer._flatten_layers(include_self=False, recursive=False))
    return owners


def probe_for(model, inspected, probe_data, probe_size=8, seed=0):
    """The input of `inspected.owner` (the RNN layer) for the first `probe_size` probe samples.

    `probe_data` is model input; for a functional/Sequential model the RNN's input is computed
    by a sub-model. Without `probe_data`, a standard-normal probe of the RNN's input shape is used.
    """
    owner = inspected.owner
    if owner is None:
        return None
    if probe_data is None:
        shape = _input_shape(owner)
        if shape is None or any(d is None for d in shape[1:]):
            return None
        rng = np.random.default_rng(seed)
        return rng.standard_normal((probe_size, *shape[1:])).astype("float32")
    if isinstance(probe_data, (list, tuple)):
        probe = [np.asarray(p)[:probe_size] for p in probe_data]
    elif isinstance(probe_data, dict):
        probe = {k: np.asarray(v)[:probe_size] for k, v in probe_data.items()}
    else:
        probe = np.asarray(probe_data)[:probe_size]
    if owner is model:
        return probe
    try:
        import keras

        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        sub = keras.Model(inputs, owner.input)
        return np.asarray(ops.convert_to_numpy(sub(probe, training=False)))
    except Exception:  # subclassed model or a layer used twice: feed the probe as it is
        warnings.warn(
            f"ActivationInspector: could not compute the input of {owner.name!r} from the model's "
            "inputs; feeding `probe_data` to it directly.",
            stacklevel=3,
        )
        return probe


def _input_shape(layer):
    try:
        return tuple(layer.input.shape)
    except Exception:
        return getattr(layer, "_build_shapes_dict", {}).get("sequences_shape")
