"""Neuroevolution of activation parameters with EvoTorch.

Gradient-free search over a model's keras-bioact activation parameters: every neuron's gamma
`(n_i, s_i)`, BRU radices `r` (per layer or per neuron) and the weights of the shared inner
MLP `g` of two-argument units, with the fitness measured by the Keras model on held-out data.
Parameters are read and written only through `keras_bioact.params.ParameterView`; the search
runs in its `"unconstrained"` space, so bounded parameters (`n >= 0.01`, `r >= 1`, ...) map to
the real line and every EvoTorch algorithm (CMA-ES included, which refuses bounded problems)
can be used.

Main entry points:

* `evolve(model, val_data, ...)`: run a search, return an `EvolutionResult`.
* `PopulationEvaluator`: fitness of a whole population in one compiled call (`jax.vmap`
  over `model.stateless_call` under JAX, `torch.func.vmap` under PyTorch,
  `tf.vectorized_map` under TensorFlow), or a plain loop.
* `ActivationProblem`: the `evotorch.Problem` behind `evolve` (picklable, Ray-ready).
* `load_best(model, path)`: write an exported best solution into a model.

Modes: `"frozen"` (outer weights fixed; the population is evaluated vectorised),
`"baldwinian"` (each candidate is trained briefly with SGD from the same start, weights and
activation parameters together, before scoring; everything learned is discarded) and
`"lamarckian"` (as Baldwinian, but the learned activation parameters are written back into
the candidate's genome).

EvoTorch, PyTorch and Ray are imported lazily, so `import keras_bioact` stays light.
"""

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import random
import sys
import tempfile
import time

import keras
import numpy as np
from keras import ops

from keras_bioact.params import ParameterView, activation_parameters
from keras_bioact.search import checkpoint as _ckpt
from keras_bioact.search.checkpoint import CHECKPOINT_NAME, CheckpointError
from keras_bioact.search.checkpoint import atomic_write as _atomic_write

__all__ = [
    "ALGORITHMS",
    "METRICS",
    "MODES",
    "TARGETS",
    "ActivationProblem",  # noqa: F822 (defined lazily by __getattr__)
    "EvolutionResult",
    "Genome",
    "PopulationEvaluator",
    "evolve",
    "load_best",
    "select_parameters",
]

ALGORITHMS = ("snes", "xnes", "cmaes", "pgpe", "ga", "cosyne")
MODES = ("frozen", "baldwinian", "lamarckian")
TARGETS = ("all", "gamma", "bru", "inner")
GRANULARITIES = ("element", "parameter")


# --------------------------------------------------------------------------------------------
# What to evolve


def _kind(param):
    if param.name in ("n", "s"):
        return "gamma"
    if param.name == "r":
        return "bru"
    return "inner"


def select_parameters(model, target="all", layers=None):
    """Pick the activation parameters to evolve.

    Args:
        model: a built model.
        target: `"gamma"` (the `n`, `s` of gamma activations), `"bru"` (BRU radices `r`),
            `"inner"` (every other declared activation parameter: the weights of a shared inner
            MLP `g`, or of any layer whose `bioact_parameters` are weights) or `"all"`.
        layers: optional list of layer names; only parameters of these layers are kept.

    Returns:
        A non-empty list of `keras_bioact.params.ActivationParameter`.
    """
    if target not in TARGETS:
        raise ValueError(f"select_parameters: `target` must be one of {TARGETS}, got {target!r}.")
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


def _accuracy(y, out, from_logits):
    # Correct iff the true class scores strictly above every other class (ties count as wrong,
    # so a constant output never scores). Written without argmax, which TensorFlow's
    # vectorized_map cannot batch.
    del from_logits
    out = ops.cast(out, "float32")
    y = ops.cast(ops.reshape(y, ops.shape(out)[:-1]), "int32")
    onehot = ops.one_hot(y, ops.shape(out)[-1], dtype="float32")
    true_score = ops.sum(out * onehot, axis=-1)
    others = ops.max(ops.where(onehot > 0, ops.full_like(out, -np.inf), out), axis=-1)
    return ops.cast(true_score > others, "float32")


def _crossentropy(y, out, from_logits):
    y = ops.cast(ops.reshape(y, ops.shape(out)[:-1]), "int32")
    return keras.losses.sparse_categorical_crossentropy(y, ops.cast(out, "float32"), from_logits=from_logits)


def _mse(y, out, from_logits):
    del from_logits
    diff = ops.cast(out, "float32") - ops.cast(ops.reshape(y, ops.shape(out)), "float32")
    return ops.mean(ops.reshape(diff * diff, (ops.shape(diff)[0], -1)), axis=-1)


# name -> (per-sample function, objective sense)
METRICS = {
    "accuracy": (_accuracy, "max"),
    "crossentropy": (_crossentropy, "min"),
    "mse": (_mse, "min"),
}


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


def _ends_with_softmax(model):
    layers = getattr(model, "layers", [])
    if not layers:
        return False
    last = layers[-1]
    act = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(act, "__name__", "") == "softmax"


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
        self.from_logits = (not _ends_with_softmax(model)) if from_logits is None else bool(from_logits)
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


# --------------------------------------------------------------------------------------------
# Model (de)serialisation helpers


def _model_to_bytes(model):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def _model_from_bytes(blob):
    import keras_bioact  # noqa: F401  (registers the custom layers)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(blob)
        return keras.saving.load_model(path, compile=False, safe_mode=True)


def _weights_fingerprint(model):
    """Hash of the model's weights other than its activation parameters (the fixed start)."""
    skip = {id(p.variable) for p in activation_parameters(model)}
    h = hashlib.sha256()
    for v in model.weights:
        if id(v) not in skip:
            h.update(np.ascontiguousarray(ops.convert_to_numpy(v.value)).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# The EvoTorch problem


def _problem_class():
    """Define `ActivationProblem` on first use (EvoTorch/torch/ray are imported lazily)."""
    global _ActivationProblem
    if _ActivationProblem is not None:
        return _ActivationProblem
    import torch
    from evotorch import Problem

    class ActivationProblem(Problem):
        """EvoTorch problem: genes -> activation parameters -> fitness of the Keras model.

        Picklable: EvoTorch's Ray actors receive a copy with the model as `.keras` bytes and
        rebuild it on first use. Checkpoints leave the model and the data out (they are
        re-attached on resume with `attach`).

        EvoTorch 0.6.1's actors call `problem.seed(...)` when a problem has its own generator
        (i.e. when `seed=` was given), but `Problem` only defines `manual_seed`: `seed` below
        closes that gap, so a seeded search can use `num_actors`.
        """

        def __init__(self, *, config, genome_size, center, stdev_init, sense, seed, num_actors):
            self._config = dict(config)
            self._center = np.asarray(center, dtype="float64")
            self._stdev_init = float(stdev_init)
            self._light_pickle = False
            self._runtime = None
            self._model_blob = None
            self._data = None
            super().__init__(
                sense,
                solution_length=int(genome_size),
                initial_bounds=(-1.0, 1.0),
                dtype=torch.float32,
                seed=seed,
                num_actors=num_actors if num_actors else None,
                store_solution_stats=True,
            )

        # EvoTorch 0.6.1 fix: actors call `seed`, the Problem method is `manual_seed`.
        def seed(self, seed=None):
            self.manual_seed(seed)

        @property
        def _nonserialized_attribs(self):
            heavy = ["_runtime"]
            if self._light_pickle:
                heavy += ["_model_blob", "_data"]
            return heavy

        def attach(self, model, data, model_blob=None):
            """Give the problem its model and data (`{"val": (x, y), "train": (x, y) | None}`)."""
            self._runtime = _Runtime(model, data, self._config)
            self._data = data
            if self._num_actors not in (None, 0) and model_blob is None:
                model_blob = _model_to_bytes(model)
            self._model_blob = model_blob
            self._light_pickle = False

        def runtime(self):
            if self._runtime is None:
                if self._model_blob is None or self._data is None:
                    raise RuntimeError("ActivationProblem: no model attached (call `attach`).")
                self._runtime = _Runtime(_model_from_bytes(self._model_blob), self._data, self._config)
            return self._runtime

        def _fill(self, values):
            # Initial population of population-based algorithms (GA, Cosyne): around the
            # model's current parameters, spread `stdev_init`.
            center = torch.as_tensor(self._center, dtype=values.dtype, device=values.device)
            noise = torch.randn(
                values.shape, generator=self.generator, dtype=values.dtype, device=values.device
            )
            values[:] = center + self._stdev_init * noise

        def _evaluate_batch(self, batch):
            genes = batch.values.detach().cpu().numpy().astype("float64")
            fitness, new_genes = self.runtime().evaluate(genes)
            if new_genes is not None:
                batch.access_values(keep_evals=True)[:] = torch.as_tensor(new_genes, dtype=batch.values.dtype)
            batch.set_evals(torch.as_tensor(fitness, dtype=torch.float32))

    ActivationProblem.__module__ = __name__
    ActivationProblem.__qualname__ = "ActivationProblem"
    _ActivationProblem = ActivationProblem
    globals()["ActivationProblem"] = ActivationProblem
    return ActivationProblem


_ActivationProblem = None


def __getattr__(name):
    if name == "ActivationProblem":
        return _problem_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Runtime:
    """Model, data, evaluator and (for the learning modes) a trainable private copy."""

    def __init__(self, model, data, config):
        self.config = config
        self.mode = config["mode"]
        if self.mode != "frozen":
            # The learning modes train a private copy; the caller's model is never touched.
            model = _model_from_bytes(_model_to_bytes(model))
        params = select_parameters(model, config["target"], config.get("layers"))
        self.genome = Genome(ParameterView(model, parameters=params), config["granularity"])
        x_val, y_val = data["val"]
        self.evaluator = PopulationEvaluator(
            model,
            x_val,
            y_val,
            parameters=params,
            metric=config["metric"],
            from_logits=config.get("from_logits"),
            vectorized=config.get("vectorized", "auto") if self.mode == "frozen" else False,
            batch_size=config.get("eval_batch_size"),
        )
        self.model = model
        if self.mode != "frozen":
            self.train = data.get("train")
            if self.train is None:
                raise ValueError(f"evolve: mode {self.mode!r} needs `train_data`.")
            # Every selected activation parameter learns together with the weights.
            for p in params:
                p.variable.trainable = True
            from keras_bioact.search.population import PopulationTrainer

            self.trainer = PopulationTrainer(
                model,
                params,
                *self.train,
                loss="mse" if config["metric"] == "mse" else "crossentropy",
                from_logits=self.evaluator.from_logits,
                learning_rate=config.get("learning_rate", 0.05),
                epochs=int(config.get("train_epochs", 1)),
                batch_size=int(config.get("train_batch_size", 32)),
                val_data=data["val"],
                metric=self.evaluator.metric_fn,
                eval_batch_size=config.get("eval_batch_size"),
                vectorized=config.get("vectorized", "auto"),
                population_chunk=config.get("population_chunk"),
                memory_budget=config.get("memory_budget"),
                jit_compile=config.get("jit_compile", "auto"),
            )
            self.evaluator.vectorized = False

    def _learn_and_score(self, natural):
        result = self.trainer.train(np.asarray(natural)[None])
        return result.scores[0], result.learned[0]

    def evaluate(self, genes):
        natural = self.genome.natural(genes)
        if self.mode == "frozen":
            return self.evaluator.evaluate(natural), None
        result = self.trainer.train(natural)
        scores, learned = result.scores, result.learned
        scores = np.where(np.isfinite(scores), scores, -np.inf if self.evaluator.sense == "max" else np.inf)
        if self.mode == "lamarckian":
            return scores, self.genome.genes_from_natural(learned)
        return scores, None


# --------------------------------------------------------------------------------------------
# Searchers


_DEFAULT_OPTIONS = {
    "snes": {},
    "xnes": {},
    "cmaes": {},
    "pgpe": {"center_learning_rate": 0.3, "stdev_learning_rate": 0.1},
    "ga": {"tournament_size": 4, "mutation_stdev": None, "eta": 8.0},
    "cosyne": {"tournament_size": 4, "mutation_stdev": None},
}


def _make_searcher(name, problem, popsize, stdev_init, center, options):
    import torch
    from evotorch import algorithms
    from evotorch.operators import GaussianMutation, SimulatedBinaryCrossOver

    options = {**_DEFAULT_OPTIONS[name], **(options or {})}
    center = torch.as_tensor(center, dtype=torch.float32)
    if name in ("snes", "xnes", "cmaes"):
        cls = {"snes": algorithms.SNES, "xnes": algorithms.XNES, "cmaes": algorithms.CMAES}[name]
        return cls(problem, popsize=popsize, stdev_init=stdev_init, center_init=center, **options)
    if name == "pgpe":
        return algorithms.PGPE(problem, popsize=popsize, stdev_init=stdev_init, center_init=center, **options)
    mutation = options.pop("mutation_stdev") or stdev_init / 5.0
    if name == "ga":
        eta = options.pop("eta")
        tournament = options.pop("tournament_size")
        operators = [
            SimulatedBinaryCrossOver(problem, tournament_size=tournament, eta=eta),
            GaussianMutation(problem, stdev=mutation),
        ]
        return algorithms.GeneticAlgorithm(problem, popsize=popsize, operators=operators, **options)
    return algorithms.Cosyne(problem, popsize=popsize, mutation_stdev=mutation, **options)


def _population_stats(searcher):
    pop = searcher.population
    evals = pop.evals[:, 0].detach().cpu().numpy().astype("float64")
    values = pop.values.detach().cpu().numpy().astype("float64")
    return values, evals


# --------------------------------------------------------------------------------------------
# Result


@dataclasses.dataclass
class EvolutionResult:
    """Outcome of `evolve`.

    Attributes:
        best_fitness: best metric value seen (in the metric's own units).
        best_genes: the best genome (unconstrained space).
        best_parameters: `{path: array}` of natural activation-parameter values, e.g.
            `{"gamma_1/n": array([...]), ...}`; `apply(model)` writes them in.
        history: one dict per generation (`generation`, `best`, `mean`, `spread`,
            `best_so_far`, `evaluations`, `seconds`).
        config: the search settings.
        out_dir: where files were written (or `None`).
    """

    best_fitness: float
    best_genes: np.ndarray
    best_parameters: dict
    history: list
    config: dict
    out_dir: str | None = None

    def apply(self, model):
        """Write the best parameters into `model` (a model with the same layer names)."""
        _apply_parameters(model, self.best_parameters)

    def save(self, directory):
        """Write `best_parameters.npz` (arrays by `layer/param` path) and `best.json`."""
        os.makedirs(directory, exist_ok=True)
        npz = os.path.join(directory, "best_parameters.npz")
        _atomic_write(npz, _npz_bytes(self.best_parameters))
        meta = {
            "best_fitness": self.best_fitness,
            "generations": len(self.history),
            "parameters": {k: list(np.shape(v)) for k, v in self.best_parameters.items()},
            "config": self.config,
        }
        _atomic_write(os.path.join(directory, "best.json"), json.dumps(meta, indent=2, default=str).encode())
        return npz


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _apply_parameters(model, arrays):
    by_path = {p.path: p for p in activation_parameters(model)}
    missing = [k for k in arrays if k not in by_path]
    if missing:
        raise ValueError(
            f"load_best: the model has no activation parameters {missing}; it has {sorted(by_path)}."
        )
    for path, value in arrays.items():
        p = by_path[path]
        value = np.asarray(value)
        if tuple(value.shape) != p.shape:
            raise ValueError(
                f"load_best: {path} has shape {p.shape} in the model, {value.shape} in the file."
            )
        p.variable.assign(p.clip(value).astype(p.variable.dtype))


def load_best(model, path):
    """Write the parameters saved by `EvolutionResult.save` (`best_parameters.npz`) into `model`."""
    if os.path.isdir(path):
        path = os.path.join(path, "best_parameters.npz")
    with np.load(path, allow_pickle=False) as data:
        _apply_parameters(model, {k: data[k] for k in data.files})
    return model


# --------------------------------------------------------------------------------------------
# Logging and checkpoints


_CSV_FIELDS = ("generation", "best", "mean", "spread", "best_so_far", "evaluations", "seconds")


def _write_csv(path, history):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow(row)
    _atomic_write(path, buf.getvalue().encode())


class _ScalarWriter:
    """Per-generation TensorBoard scalars with tensorboard's own (TensorFlow-free) writer."""

    def __init__(self, logdir):
        self._writer = None
        try:
            from tensorboard.summary._writer import Writer
        except ImportError:  # tensorboard is an optional extra
            return
        os.makedirs(logdir, exist_ok=True)
        self._writer = Writer(logdir)

    def write(self, row):
        if self._writer is None:
            return
        for key in ("best", "mean", "spread", "best_so_far"):
            value = row[key]
            if math.isfinite(value):
                self._writer.add_scalar(f"evolution/{key}", value, step=row["generation"])
        self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()


def _quiet_evotorch():
    """EvoTorch logs every problem's dtype and device at INFO on import; keep warnings only."""
    import logging

    import evotorch  # noqa: F401  (configures its logger on import; lower the level after)

    logging.getLogger("evotorch").setLevel(logging.WARNING)


def _ensure_ray(num_actors):
    """Start a local Ray with this interpreter's environment (backend, import path)."""
    import ray

    if ray.is_initialized():
        return
    import keras_bioact

    root = os.path.dirname(os.path.dirname(os.path.abspath(keras_bioact.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=max(int(num_actors), 1),
        include_dashboard=False,
        log_to_driver=False,
        logging_level="error",
        runtime_env={"env_vars": {"KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": path}},
    )


# --------------------------------------------------------------------------------------------
# evolve


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"evolve: `{name}` must be one of {choices}, got {value!r}.")


def evolve(
    model,
    val_data,
    *,
    target="all",
    layers=None,
    granularity="element",
    algorithm="snes",
    popsize=32,
    generations=50,
    metric="accuracy",
    sense=None,
    from_logits=None,
    mode="frozen",
    train_data=None,
    train_epochs=1,
    train_batch_size=32,
    learning_rate=0.05,
    stdev_init=0.5,
    algorithm_options=None,
    seed=0,
    num_actors=0,
    vectorized="auto",
    eval_batch_size=None,
    population_chunk=None,
    memory_budget=None,
    out_dir=None,
    resume=False,
    overwrite=False,
    progress=True,
    apply_best=True,
    tensorboard=True,
    stop_after=None,
    callbacks=None,
):
    """Evolve a model's activation parameters with an EvoTorch algorithm.

    Args:
        model: a built Keras model with keras-bioact activation parameters. Its outer weights
            are the fixed start (frozen mode) or the starting point of every candidate's
            training (learning modes).
        val_data: `(x, y)` on which the fitness is measured.
        target: `"gamma"`, `"bru"`, `"inner"` or `"all"` (see `select_parameters`).
        layers: optional layer names to restrict the target to.
        granularity: `"element"` (one gene per neuron / weight) or `"parameter"` (one gene per
            variable, e.g. one `r` per BRU layer).
        algorithm: `"snes"` (default), `"xnes"`, `"cmaes"`, `"pgpe"`, `"ga"` (genetic algorithm
            with simulated-binary crossover and Gaussian mutation) or `"cosyne"`.
        popsize: population size.
        generations: number of generations.
        metric: `"accuracy"` (maximised), `"crossentropy"` or `"mse"` (minimised), or a callable
            `(y_true, y_pred) -> per-sample values` (keras.ops) with `sense`.
        sense: `"min"`/`"max"` for a callable metric.
        from_logits: for `"crossentropy"`; default: True unless the model ends with a softmax.
        mode: `"frozen"`, `"baldwinian"` or `"lamarckian"`.
        train_data: `(x, y)` for the learning modes.
        train_epochs, train_batch_size, learning_rate: the brief SGD of the learning modes.
        stdev_init: initial search spread in the unconstrained space (also the GA's initial
            population spread around the model's current parameters).
        algorithm_options: extra keyword arguments for the EvoTorch algorithm.
        seed: seed of the search (sampling, initial population, actors).
        num_actors: EvoTorch Ray actors evaluating the population in parallel (0: in process).
            Not available in `"lamarckian"` mode (actors cannot return modified genomes).
        vectorized: `"auto"`, `True` or `False`: score (frozen mode, `PopulationEvaluator`) or
            train (learning modes, `keras_bioact.search.population.PopulationTrainer`) the whole
            population in one compiled call; `"auto"` falls back to a per-candidate loop where
            that is impossible (e.g. Dropout in the learning modes).
        eval_batch_size: evaluate the validation data in batches of this size.
        population_chunk, memory_budget: learning modes: train at most this many candidates at
            once, or as many as fit in `memory_budget` bytes (estimated); default all at once.
        out_dir: where to write `checkpoint.npz` (every generation, atomically; data only,
            see `keras_bioact.search.checkpoint`), `history.csv`, TensorBoard scalars
            (`tensorboard/`), `best_parameters.npz` and `best.json`. `None` writes nothing
            (and cannot resume).
        resume: continue from `out_dir/checkpoint.npz`; an error if there is none.
        overwrite: start over even though `out_dir` holds a checkpoint (without `resume` or
            `overwrite`, an existing checkpoint is an error, never silently replaced).
        progress: show a tqdm progress bar.
        apply_best: write the best parameters into `model` at the end.
        tensorboard: write TensorBoard scalars under `out_dir/tensorboard`.
        stop_after: stop (without finishing) after this many generations of this call; for
            tests and time-sliced runs. The checkpoint allows continuing with `resume=True`.
        callbacks: functions called as `fn(row)` after each generation (and its checkpoint),
            with the history row (a dict); a callback returning `True` stops the search early
            (resumable like `stop_after`).

    Returns:
        An `EvolutionResult`.
    """
    _check_choice("algorithm", algorithm, ALGORITHMS)
    _check_choice("mode", mode, MODES)
    _check_choice("target", target, TARGETS)
    _check_choice("granularity", granularity, GRANULARITIES)
    for name, value, low in (
        ("popsize", popsize, 2),
        ("generations", generations, 1),
        ("num_actors", num_actors, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"evolve: `{name}` must be an integer >= {low}, got {value!r}.")
    if not (isinstance(stdev_init, (int, float)) and stdev_init > 0):
        raise ValueError(f"evolve: `stdev_init` must be a number > 0, got {stdev_init!r}.")
    if mode == "lamarckian" and num_actors:
        raise ValueError(
            "evolve: mode 'lamarckian' cannot use `num_actors` (actors cannot return modified genomes)."
        )
    if mode != "frozen" and train_data is None:
        raise ValueError(f"evolve: mode {mode!r} needs `train_data=(x, y)`.")
    if resume and out_dir is None:
        raise ValueError("evolve: `resume=True` needs `out_dir` (where the checkpoint is).")
    if resume and overwrite:
        raise ValueError("evolve: `resume=True` and `overwrite=True` exclude each other.")
    if callable(metric):
        metric = _with_sense(metric, sense)
    else:
        _resolve_metric(metric, sense)

    import torch

    _quiet_evotorch()
    config = {
        "target": target,
        "layers": None if layers is None else list(layers) if not isinstance(layers, str) else [layers],
        "granularity": granularity,
        "algorithm": algorithm,
        "popsize": int(popsize),
        "metric": metric,
        "from_logits": from_logits,
        "mode": mode,
        "train_epochs": int(train_epochs),
        "train_batch_size": int(train_batch_size),
        "learning_rate": float(learning_rate),
        "stdev_init": float(stdev_init),
        "algorithm_options": dict(algorithm_options or {}),
        "seed": seed,
        "num_actors": int(num_actors),
        "vectorized": vectorized,
        "eval_batch_size": eval_batch_size,
        "population_chunk": population_chunk,
        "memory_budget": memory_budget,
    }
    data = {"val": tuple(np.asarray(a) for a in val_data)}
    if train_data is not None:
        data["train"] = tuple(np.asarray(a) for a in train_data)
    if num_actors:
        _ensure_ray(num_actors)

    checkpoint_path = None if out_dir is None else os.path.join(out_dir, CHECKPOINT_NAME)
    state = _open_checkpoint(out_dir, checkpoint_path, resume, overwrite)
    if state is not None:
        _check_resume(state[0], config, model, checkpoint_path)
        # on resume the comparison is against the stored fingerprint, not the current weights
    fingerprint = state[0]["fingerprint"] if state else _weights_fingerprint(model)

    if state is None and seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        torch.manual_seed(seed)
    params = select_parameters(model, target, config["layers"])
    genome = Genome(ParameterView(model, parameters=params), granularity)
    center = genome.current()
    Problem = _problem_class()
    problem = Problem(
        config=config,
        genome_size=genome.size,
        center=center,
        stdev_init=stdev_init,
        sense=_sense_of(metric),
        seed=seed,
        num_actors=num_actors,
    )
    problem.attach(model, data)
    searcher = _make_searcher(algorithm, problem, int(popsize), float(stdev_init), center, algorithm_options)
    history, best_fitness, best_genes, generation = [], None, None, 0
    if state is not None:
        meta, groups = state
        _ckpt.restore_state(searcher, groups["searcher"], checkpoint_path)
        if problem.generator is not None and groups.get("problem_generator"):
            problem.generator.set_state(
                torch.as_tensor(np.asarray(groups["problem_generator"][0][2], dtype=np.uint8))
            )
        history = [dict(row) for row in meta["history"]]
        best_fitness = meta["best_fitness"]
        best_genes = None if not groups.get("best_genes") else np.asarray(groups["best_genes"][0][2])
        generation = int(meta["generation"])
        _ckpt.set_rng(groups["rng"])

    if num_actors:
        # EvoTorch draws the actors' seeds from the problem's generator when it creates them;
        # keep the search's sample stream independent of that, so that a resumed run (which
        # creates fresh actors) samples exactly what an uninterrupted one would.
        generator = problem.generator
        saved = None if generator is None else generator.get_state()
        problem._parallelize()
        if saved is not None:
            generator.set_state(saved)
    runtime = problem.runtime()
    sense_ = runtime.evaluator.sense
    better = (lambda a, b: a > b) if sense_ == "max" else (lambda a, b: a < b)
    tb = _ScalarWriter(os.path.join(out_dir, "tensorboard")) if (out_dir and tensorboard) else None
    bar = _progress(progress, generations, generation, algorithm)
    done_this_call = 0
    try:
        while generation < generations:
            if stop_after is not None and done_this_call >= stop_after:
                break
            t0 = time.perf_counter()
            searcher.step()
            values, evals = _population_stats(searcher)
            finite = np.isfinite(evals)
            gen_best_i = (np.argmax if sense_ == "max" else np.argmin)(
                np.where(finite, evals, -np.inf if sense_ == "max" else np.inf)
            )
            if best_fitness is None or better(evals[gen_best_i], best_fitness):
                best_fitness, best_genes = float(evals[gen_best_i]), values[gen_best_i].copy()
            generation += 1
            done_this_call += 1
            row = {
                "generation": generation,
                "best": float(evals[gen_best_i]),
                "mean": float(np.mean(evals[finite])) if finite.any() else float("nan"),
                "spread": float(np.std(evals[finite])) if finite.any() else float("nan"),
                "best_so_far": best_fitness,
                "evaluations": generation * len(evals),
                "seconds": round(time.perf_counter() - t0, 4),
            }
            history.append(row)
            if out_dir is not None:
                _save_checkpoint(
                    checkpoint_path,
                    searcher,
                    problem,
                    generation,
                    history,
                    best_fitness,
                    best_genes,
                    config,
                    fingerprint,
                )
                _write_csv(os.path.join(out_dir, "history.csv"), history)
                if tb is not None:
                    tb.write(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(best=f"{best_fitness:.4g}", mean=f"{row['mean']:.4g}")
            if any([bool(fn(dict(row))) for fn in callbacks or ()]):
                break
    finally:
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
        if num_actors and getattr(problem, "_actors", None):
            problem.kill_actors()

    natural = runtime.genome.natural(best_genes)
    arrays = {
        p.path: np.asarray(chunk, dtype="float32")
        for p, chunk in zip(runtime.genome.view.parameters, runtime.genome.view.split(natural), strict=True)
    }
    result = EvolutionResult(
        best_fitness=float(best_fitness),
        best_genes=np.asarray(best_genes),
        best_parameters=arrays,
        history=list(history),
        config={k: (v if not callable(v) else getattr(v, "__name__", repr(v))) for k, v in config.items()},
        out_dir=out_dir,
    )
    if generation >= generations:
        if out_dir is not None:
            result.save(out_dir)
        if apply_best:
            result.apply(model)
    return result


class _CallableMetric:
    """A user metric with its objective sense (picklable when the function is)."""

    def __init__(self, fn, sense):
        self.fn = fn
        self.sense = sense
        self.__name__ = getattr(fn, "__name__", "metric")

    def __call__(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def _with_sense(metric, sense):
    if isinstance(metric, _CallableMetric):
        return metric
    if sense not in ("min", "max"):
        raise ValueError("evolve: a callable `metric` needs `sense='min'` or `sense='max'`.")
    return _CallableMetric(metric, sense)


def _sense_of(metric):
    if callable(metric):
        return metric.sense
    return METRICS[metric][1]


def _progress(enabled, total, initial, algorithm):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"evolve ({algorithm})", unit="gen", file=sys.stderr)


def _fingerprint_config(config):
    """The settings as plain JSON data (callables by name), as stored in a checkpoint."""
    plain = {k: (getattr(v, "__name__", repr(v)) if callable(v) else v) for k, v in config.items()}
    return json.loads(json.dumps(plain, default=repr))


def _save_checkpoint(
    path, searcher, problem, generation, history, best_fitness, best_genes, config, fingerprint
):
    groups = {
        "searcher": _ckpt.state_leaves(searcher),
        "rng": _ckpt.rng_leaves(),
        "best_genes": [] if best_genes is None else [(["best_genes"], "ndarray", np.asarray(best_genes))],
        "problem_generator": []
        if problem.generator is None
        else [(["generator"], "ndarray", problem.generator.get_state().numpy())],
    }
    meta = {
        "generation": int(generation),
        "history": history,
        "best_fitness": None if best_fitness is None else float(best_fitness),
        "config": _fingerprint_config(config),
        "fingerprint": fingerprint,
        "keras_backend": keras.backend.backend(),
    }
    _ckpt.write(path, meta, groups)


def _open_checkpoint(out_dir, path, resume, overwrite):
    """The checkpoint to resume from (`(meta, groups)`), or None to start; refuses to guess."""
    if out_dir is None:
        return None
    legacy = os.path.join(out_dir, _ckpt.LEGACY_NAME)
    exists = os.path.exists(path)
    if resume:
        if not exists:
            extra = (
                f" ({legacy} is a keras-bioact 0.1 pickle checkpoint, which is never loaded because "
                "unpickling can run code: start a new output directory)"
                if os.path.exists(legacy)
                else ""
            )
            raise CheckpointError(f"evolve: resume=True, but there is no checkpoint {path}{extra}.")
        return _ckpt.read(path)
    if exists and not overwrite:
        raise CheckpointError(
            f"evolve: {path} exists (an earlier run); pass resume=True (--resume) to continue it or "
            "overwrite=True (--overwrite) to start over."
        )
    return None


_RESUME_KEYS = (
    "target",
    "layers",
    "granularity",
    "algorithm",
    "popsize",
    "metric",
    "mode",
    "seed",
    "stdev_init",
)


def _check_resume(state, config, model, path):
    saved = state["config"]
    now = _fingerprint_config(config)
    changed = [k for k in _RESUME_KEYS if saved.get(k) != now.get(k)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ValueError(f"evolve: cannot resume {path}: the settings changed ({detail}).")
    if state["generation"] < 1:
        return
    if _weights_fingerprint(model) != state["fingerprint"]:
        raise ValueError(
            f"evolve: cannot resume {path}: the model's weights differ from those of the interrupted run "
            "(rebuild or reload the same starting model)."
        )
