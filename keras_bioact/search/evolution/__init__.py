"""The EvoTorch engine of the activation search: neuroevolution of activation parameters.

* `evolve(model, val_data, ...)` (`_evolve`): run a search, return an `EvolutionResult`;
* `load_best(model, path)`, `EvolutionResult` (`result`): the exported best solution;
* `run_evolution(spec)` (`runner`): an `[evolution]` spec end to end (`bioact search`);
* `select_parameters`, `Genome`, `METRICS`, `PopulationEvaluator` (`fitness`): what is evolved
  and how a population is scored; `PopulationTrainer` (the learning modes; it lives in the
  shared `keras_bioact.search.population`, which the Optuna engine uses too);
* `ActivationProblem` (`problem`, imported on first use: EvoTorch, PyTorch), the model side
  `runtime`, the searcher hooks `loggers`, and the checkpoint (`checkpoint`, `_resume`).

This package imports Keras and NumPy, never Optuna; EvoTorch, PyTorch and Ray are imported when
a search starts.
"""

from keras_bioact.search.evolution._evolve import MODES, evolve
from keras_bioact.search.evolution.checkpoint import CHECKPOINT_NAME, CheckpointError
from keras_bioact.search.evolution.fitness import (
    GRANULARITIES,
    METRICS,
    TARGETS,
    Genome,
    PopulationEvaluator,
    select_parameters,
)
from keras_bioact.search.evolution.result import EvolutionResult, load_best
from keras_bioact.search.evolution.runner import run_evolution
from keras_bioact.search.population import PopulationTrainer
from keras_bioact.search.spec.schema import ALGORITHMS

__all__ = [
    "ALGORITHMS",
    "CHECKPOINT_NAME",
    "GRANULARITIES",
    "METRICS",
    "MODES",
    "TARGETS",
    "ActivationProblem",  # noqa: F822 (imported on first use by __getattr__)
    "CheckpointError",
    "EvolutionResult",
    "Genome",
    "PopulationEvaluator",
    "PopulationTrainer",
    "evolve",
    "load_best",
    "run_evolution",
    "select_parameters",
]


def __getattr__(name):
    # EvoTorch and PyTorch are imported on first use of this name.
    if name == "ActivationProblem":
        from keras_bioact.search.evolution.problem import ActivationProblem

        return ActivationProblem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
