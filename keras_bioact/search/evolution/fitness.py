"""Genomes and population fitness for neuroevolution (`keras_bioact.search.evolution`).

* `select_parameters(model, target, layers)`: the activation parameters a search evolves;
* `Genome`: genes (unconstrained space) <-> natural parameter values of a `ParameterView`;
* `METRICS` and `PopulationEvaluator`: the fitness of a whole population in one compiled call
  (`jax.vmap` over `model.stateless_call` under JAX, `torch.func.vmap` under PyTorch,
  `tf.vectorized_map` under TensorFlow), or a plain loop.
"""

import keras
import numpy as np
from keras import ops

from keras_bioact import families as _registry
from keras_bioact.params import ParameterView, activation_parameters
from keras_bioact.search.models import ends_with_softmax
from keras_bioact.search.population import METRICS

__all__ = ["METRICS", "Genome", "PopulationEvaluator", "select_parameters"]

# "all" and one target per family that declares one ("gamma", "bru", "inner", ...), from the
# family registry (a snapshot; `select_parameters` asks the registry itself).
TARGETS = _registry.target_names()
GRANULARITIES = ("element", "parameter")

# --------------------------------------------------------------------------------------------
# What to evolve


def _kind(param):
    """The evolution target of an `ActivationParameter` (by its name, from the registry)."""
    return _registry.target_of(param.name)


def select_parameters(model, target="all", layers=None):
    """Pick the activation parameters to evolve.

    Args:
        model: a built model.
        target: `"all"`, or a family's target from the family registry
            (`keras_bioact.families.target_names()`): `"gamma"` (the `n`, `s` of gamma
            activations), `"bru"` (BRU radices `r`), `"inner"` (every other declared activation
            parameter: the weights of a shared inner MLP `g`, or of any layer whose
            `bioact_parameters` are weights), and those of other registered families.
        layers: optional list of layer names; only parameters of these layers are kept.

    Returns:
        A non-empty list of `keras_bioact.params.ActivationParameter`.
    """
    targets = _registry.target_names()
    if target not in targets:
        raise ValueError(f"select_parameters: `target` must be one of {targets}, got {target!r}.")
    params = activation_parameters(model)
    if target != "all":
        params = [p for p in params if _kind(p) == target]
    if layers is not None:
        layers = [layers] if isinstance(layers, str) else list(layers)
        names = {p.layer.name for p in params}
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ValueError(
                f"select_parameters: `layers` {unknown} have no {target!r} activation parameters; "
                f"layers with some: {sorted(names)}."
            )
        params = [p for p in params if p.layer.name in layers]
    if not params:
        raise ValueError(
            f"select_parameters: the model has no activation parameters for target {target!r} "
            f"(found: {[p.path for p in activation_parameters(model)]})."
        )
    return params


class Genome:
    """Maps a search vector ("genes") to the activation parameters of a model.

    Genes live in `ParameterView`'s `"unconstrained"` space. With `granularity="element"`
    every element of every selected variable is one gene (per-neuron `n_i`, `s_i`, per-neuron
    `r`, every weight of `g`); with `"parameter"` each selected variable is one gene broadcast
    over its elements (one `n`, `s` or `r` per layer).

    Args:
        view: a `ParameterView` over the selected parameters.
        granularity: `"element"` or `"parameter"`.
    """

    def __init__(self, view, granularity="element"):
        if granularity not in GRANULARITIES:
            raise ValueError(f"Genome: `granularity` must be one of {GRANULARITIES}, got {granularity!r}.")
        self.view = view
        self.granularity = granularity
        if granularity == "element":
            self.index = np.arange(view.size)
        else:
            self.index = np.concatenate([np.full(p.size, i) for i, p in enumerate(view.parameters)]).astype(
                "int64"
            )

    @property
    def size(self):
        return self.view.size if self.granularity == "element" else len(self.view.parameters)

    def full_unconstrained(self, genes):
        return np.asarray(genes, dtype="float64")[..., self.index]

    def natural(self, genes):
        """Natural (clipped) flat parameter vector(s) for gene vector(s) (last axis)."""
        return self.view.to_natural(self.full_unconstrained(genes), "unconstrained")

    def genes_from_natural(self, natural):
        """Gene vector for a natural flat parameter vector (per-parameter mean when shared)."""
        u = np.concatenate(
            [
                p.to_unconstrained(chunk)
                for p, chunk in zip(
                    self.view.parameters,
                    np.split(np.asarray(natural, "float64"), self.view.offsets[1:-1], axis=-1),
                    strict=True,
                )
            ],
            axis=-1,
        )
        if self.granularity == "element":
            return u
        return np.stack(
            [
                u[..., a:b].mean(axis=-1)
                for a, b in zip(self.view.offsets[:-1], self.view.offsets[1:], strict=True)
            ],
            axis=-1,
        )

    def current(self):
        """Genes of the model's current parameter values."""
        return self.genes_from_natural(self.view.get_vector("natural"))


# --------------------------------------------------------------------------------------------
# Fitness metrics (per sample, keras.ops, so they run inside every backend's compiled call)


def _resolve_metric(metric, sense=None):
    if callable(metric):
        if sense not in ("min", "max"):
            raise ValueError("evolve: a callable `metric` needs `sense='min'` or `sense='max'`.")
        return (lambda y, out, from_logits: metric(y, out)), sense
    if metric not in METRICS:
        raise ValueError(f"evolve: `metric` must be one of {tuple(METRICS)} or a callable, got {metric!r}.")
    fn, default_sense = METRICS[metric]
    if sense is not None and sense != default_sense:
        raise ValueError(f"evolve: metric {metric!r} is to be {default_sense}imised, got sense={sense!r}.")
    return fn, default_sense


# --------------------------------------------------------------------------------------------
# Population evaluation


class PopulationEvaluator:
    """Fitness of a population of activation-parameter vectors on fixed data.

    The model's weights stay as they are; each candidate's values replace the selected
    activation-parameter variables inside `model.stateless_call` (nothing is assigned).

    Args:
        model: a built Keras model.
        x, y: evaluation data (NumPy).
        parameters: the `ActivationParameter`s the candidates set (default: all).
        metric: `"accuracy"`, `"crossentropy"`, `"mse"` or a callable `(y, y_pred) -> per-sample
            values` written with `keras.ops`.
        from_logits: for `"crossentropy"`; default: True unless the model ends with a softmax.
        vectorized: `True` (one compiled call per data batch for the whole population),
            `False` (loop over candidates: assign, call the model, score), or `"auto"` (vectorised
            where the backend's `vmap` handles the model, else the loop).
        batch_size: split the data into batches of this size (default: all at once).
        population_chunk: split the population into chunks of at most this size in the
            vectorised call (bounds memory; default: whole population).
    """

    def __init__(
        self,
        model,
        x,
        y,
        parameters=None,
        metric="accuracy",
        from_logits=None,
        vectorized="auto",
        batch_size=None,
        population_chunk=None,
    ):
        if vectorized not in (True, False, "auto"):
            raise ValueError(
                f"PopulationEvaluator: `vectorized` must be True, False or 'auto', got {vectorized!r}."
            )
        self.model = model
        self.x = np.asarray(x)
        self.y = np.asarray(y)
        if len(self.x) != len(self.y) or len(self.x) == 0:
            raise ValueError(
                f"PopulationEvaluator: x and y must be non-empty and of equal length, got {len(self.x)} and "
                f"{len(self.y)}."
            )
        self.view = ParameterView(model, parameters=parameters)
        self.metric_fn, self.sense = _resolve_metric(
            metric, getattr(metric, "sense", None) if callable(metric) else None
        )
        self.from_logits = (not ends_with_softmax(model)) if from_logits is None else bool(from_logits)
        self.batch_size = len(self.x) if batch_size is None else int(batch_size)
        self.population_chunk = population_chunk
        self.backend = keras.backend.backend()
        self._slots = self._find_slots()
        self._compiled = None
        self._single = None
        self.vectorized = vectorized
        if vectorized == "auto":
            self.vectorized = self._try_vectorized()

    # -- bookkeeping ---------------------------------------------------------------------

    def _find_slots(self):
        tv = self.model.trainable_variables
        ntv = self.model.non_trainable_variables
        slots = []
        for p in self.view.parameters:
            hit = [i for i, v in enumerate(tv) if v is p.variable]
            if hit:
                slots.append(("t", hit[0]))
                continue
            hit = [i for i, v in enumerate(ntv) if v is p.variable]
            if not hit:
                raise ValueError(f"PopulationEvaluator: variable of {p.path} is not a variable of the model.")
            slots.append(("n", hit[0]))
        return slots

    def _batches(self):
        for start in range(0, len(self.x), self.batch_size):
            yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]

    def _score_sum(self, values, tv, ntv, x, y):
        tv = list(tv)
        ntv = list(ntv)
        for (kind, idx), value in zip(self._slots, values, strict=True):
            (tv if kind == "t" else ntv)[idx] = value
        out, _ = self.model.stateless_call(tv, ntv, x, training=False)
        return ops.sum(self.metric_fn(y, out, self.from_logits))

    def _split(self, natural):
        natural = np.asarray(natural, dtype="float64")
        return [
            np.asarray(chunk, dtype=p.variable.dtype)
            for p, chunk in zip(self.view.parameters, self.view.split(natural), strict=True)
        ]

    # -- compiled, vectorised path ---------------------------------------------------------

    def _current_state(self):
        # Read the variables at every call: the model may have been trained or assigned since
        # (and JAX training donates, i.e. deletes, the old buffers).
        return (
            [v.value for v in self.model.trainable_variables],
            [v.value for v in self.model.non_trainable_variables],
        )

    def _build_vectorized(self):
        if self.backend == "jax":
            import jax

            fn = jax.jit(jax.vmap(self._score_sum, in_axes=(0, None, None, None, None)))
            return lambda values, x, y: fn(values, *self._current_state(), x, y)
        if self.backend == "torch":
            import torch

            fn = torch.func.vmap(self._score_sum, in_dims=(0, None, None, None, None), randomness="same")

            def run(values, x, y):
                tv, ntv = self._current_state()
                with torch.no_grad():
                    values = [torch.as_tensor(v) for v in values]
                    if tv:
                        values = [v.to(tv[0].device) for v in values]
                    return fn(values, tv, ntv, torch.as_tensor(x), torch.as_tensor(y))

            return run
        if self.backend == "tensorflow":
            import tensorflow as tf

            @tf.function(jit_compile=True, reduce_retracing=True)
            def compiled(values, tv, ntv, x, y):
                return tf.vectorized_map(
                    lambda vals: self._score_sum(vals, tv, ntv, x, y), values, fallback_to_while_loop=False
                )

            return lambda values, x, y: compiled(values, *self._current_state(), x, y)
        raise ValueError(f"PopulationEvaluator: no vectorised path for backend {self.backend!r}.")

    def _evaluate_vectorized(self, natural):
        if self._compiled is None:
            self._compiled = self._build_vectorized()
        natural = np.atleast_2d(natural)
        chunk = len(natural) if not self.population_chunk else int(self.population_chunk)
        totals = []
        for start in range(0, len(natural), chunk):
            values = self._split(natural[start : start + chunk])
            total = 0.0
            for xb, yb in self._batches():
                total = total + np.asarray(
                    ops.convert_to_numpy(self._compiled(values, xb, yb)), dtype="float64"
                )
            totals.append(total)
        return np.concatenate(totals) / len(self.x)

    def _try_vectorized(self):
        try:
            probe = np.stack([self.view.get_vector("natural")] * 2)
            self._evaluate_vectorized(probe)
            return True
        except Exception as error:  # the backend's vmap cannot trace this model: use the loop
            self._compiled = None
            self.fallback_reason = f"{type(error).__name__}: {error}"
            return False

    # -- loop path -------------------------------------------------------------------------

    def _evaluate_loop(self, natural):
        natural = np.atleast_2d(np.asarray(natural, dtype="float64"))
        saved = self.view.get_vector("natural")
        scores = np.empty(len(natural))
        try:
            for i, candidate in enumerate(natural):
                self.view.set_vector(candidate, "natural")
                scores[i] = self.score_current()
        finally:
            self.view.set_vector(saved, "natural")
        return scores

    def score_current(self):
        """Metric of the model with its current variable values (one forward pass per batch)."""
        total = 0.0
        for xb, yb in self._batches():
            out = self.model(xb, training=False)
            total += float(
                ops.convert_to_numpy(
                    ops.sum(self.metric_fn(ops.convert_to_tensor(yb), out, self.from_logits))
                )
            )
        return total / len(self.x)

    def evaluate(self, natural):
        """Fitness (the raw metric) of each row of `natural` (`(P, view.size)`, natural space)."""
        natural = np.asarray(natural, dtype="float64")
        if natural.shape[-1] != self.view.size:
            raise ValueError(
                f"PopulationEvaluator: expected vectors of length {self.view.size}, got {natural.shape}."
            )
        if self.vectorized:
            return self._evaluate_vectorized(natural)
        return self._evaluate_loop(natural)
