"""EvoTorch side of `keras_bioact.search.evolution` (private): the `ActivationProblem`, the
runtime that scores (and, in the learning modes, trains) candidates, and the searchers.

EvoTorch, PyTorch and Ray are imported lazily, on first use.
"""

import hashlib
import os
import tempfile

import keras
import numpy as np
from keras import ops

from keras_bioact.params import ParameterView, activation_parameters
from keras_bioact.search.evaluator import Genome, PopulationEvaluator, select_parameters

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
