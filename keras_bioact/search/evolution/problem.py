"""EvoTorch side of `keras_bioact.search.evolution` (private): the `ActivationProblem` (what is
evaluated) and the searcher factory (how the algorithm is built).

This module imports PyTorch and EvoTorch at the top, so `keras_bioact.search.evolution` imports
it only when a search starts.
"""

from types import MappingProxyType

import numpy as np
import torch
from evotorch import Problem, algorithms
from evotorch.operators import GaussianMutation, SimulatedBinaryCrossOver

from keras_bioact.params import ParameterView
from keras_bioact.search.evolution.fitness import METRICS, Genome, select_parameters
from keras_bioact.search.evolution.runtime import _model_from_bytes, _model_to_bytes, _Runtime

__all__ = ["ActivationProblem", "make_problem", "make_searcher", "population_stats", "start_actors"]

# --------------------------------------------------------------------------------------------
# The problem


class ActivationProblem(Problem):
    """EvoTorch problem: genes -> activation parameters -> fitness of the Keras model.

    Picklable: EvoTorch's Ray actors receive a copy with the model as `.keras` bytes and
    rebuild it on first use. Checkpoints leave the model and the data out (they are
    re-attached on resume with `attach`).

    All randomness of a search (the searcher's sampling, the GA's operators, the initial
    population of GA/Cosyne, the actors' seeds) comes from the problem's own generator,
    `Problem(..., seed=seed)`; `seed=None` draws a fresh seed from the operating system, so an
    unseeded search is still resumable exactly and never reads or seeds a global generator.

    EvoTorch 0.6.1's actors call `problem.seed(...)` when a problem has its own generator, but
    `Problem` only defines `manual_seed`: `seed` below closes that gap, so a seeded search can
    use `num_actors`.
    """

    def __init__(self, *, config, genome_size, center, stdev_init, sense, seed, num_actors):
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._config = dict(config)
        self.center = np.asarray(center, dtype="float64")
        self._stdev_init = float(stdev_init)
        self._runtime = None
        self._model_blob = None
        self._data = None
        super().__init__(
            sense,
            solution_length=int(genome_size),
            initial_bounds=(-1.0, 1.0),
            dtype=torch.float32,
            seed=int(seed),
            num_actors=num_actors if num_actors else None,
            store_solution_stats=True,
        )

    # EvoTorch 0.6.1 fix: actors call `seed`, the Problem method is `manual_seed`.
    def seed(self, seed=None):
        self.manual_seed(seed)

    @property
    def _nonserialized_attribs(self):
        # EvoTorch's hook for attributes left out when the problem is sent to an actor.
        return ["_runtime"]

    def attach(self, model, data, model_blob=None):
        """Give the problem its model and data (`{"val": (x, y), "train": (x, y) | None}`)."""
        self._runtime = _Runtime(model, data, self._config)
        self._data = data
        if self.num_actors and model_blob is None:
            model_blob = _model_to_bytes(model)
        self._model_blob = model_blob

    def runtime(self):
        if self._runtime is None:
            if self._model_blob is None or self._data is None:
                raise RuntimeError("ActivationProblem: no model attached (call `attach`).")
            self._runtime = _Runtime(_model_from_bytes(self._model_blob), self._data, self._config)
        return self._runtime

    def _fill(self, values):
        # Initial population of population-based algorithms (GA, Cosyne): around the
        # model's current parameters, spread `stdev_init`.
        center = torch.as_tensor(self.center, dtype=values.dtype, device=values.device)
        noise = torch.randn(values.shape, generator=self.generator, dtype=values.dtype, device=values.device)
        values[:] = center + self._stdev_init * noise

    def _evaluate_batch(self, batch):
        genes = batch.values.detach().cpu().numpy().astype("float64")
        fitness, new_genes = self.runtime().evaluate(genes)
        if new_genes is not None:
            batch.access_values(keep_evals=True)[:] = torch.as_tensor(new_genes, dtype=batch.values.dtype)
        batch.set_evals(torch.as_tensor(fitness, dtype=torch.float32))


def make_problem(model, data, config):
    """The `ActivationProblem` of `evolve`'s settings `config`, attached to `model` and `data`;
    its `center` is the model's current parameters (the search's start)."""
    params = select_parameters(model, config["target"], config["layers"])
    genome = Genome(ParameterView(model, parameters=params), config["granularity"])
    metric = config["metric"]
    problem = ActivationProblem(
        config=config,
        genome_size=genome.size,
        center=genome.current(),
        stdev_init=config["stdev_init"],
        sense=metric.sense if callable(metric) else METRICS[metric][1],
        seed=config["seed"],
        num_actors=config["num_actors"],
    )
    problem.attach(model, data)
    return problem


def start_actors(problem):
    """Create the problem's Ray actors now, leaving its generator's stream as it was.

    EvoTorch draws the actors' seeds from the problem's generator when it creates them; keeping
    the search's sample stream independent of that means that a resumed run (which creates
    fresh actors) samples exactly what an uninterrupted one would.
    """
    saved = problem.generator.get_state()
    problem.all_remote_problems()  # EvoTorch creates the actors on first use of this accessor
    problem.generator.set_state(saved)


# --------------------------------------------------------------------------------------------
# Searchers


# read-only (no mutable module state): `make_searcher` copies an entry before using it
_DEFAULT_OPTIONS = MappingProxyType(
    {
        "snes": MappingProxyType({}),
        "xnes": MappingProxyType({}),
        "cmaes": MappingProxyType({}),
        "pgpe": MappingProxyType({"center_learning_rate": 0.3, "stdev_learning_rate": 0.1}),
        "ga": MappingProxyType({"tournament_size": 4, "mutation_stdev": None, "eta": 8.0}),
        "cosyne": MappingProxyType({"tournament_size": 4, "mutation_stdev": None}),
    }
)


def make_searcher(name, problem, popsize, stdev_init, center, options):
    """The EvoTorch search algorithm `name` (one of `ALGORITHMS`) on `problem`, started at
    `center` with spread `stdev_init`; `options` are extra keyword arguments of the algorithm."""
    if name not in _DEFAULT_OPTIONS:
        raise ValueError(f"evolve: `algorithm` must be one of {tuple(_DEFAULT_OPTIONS)}, got {name!r}.")
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


def population_stats(searcher):
    """`(values, evals)` of the searcher's current population as float64 NumPy arrays."""
    pop = searcher.population
    evals = pop.evals[:, 0].detach().cpu().numpy().astype("float64")
    values = pop.values.detach().cpu().numpy().astype("float64")
    return values, evals
