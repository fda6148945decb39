"""What `evolve` attaches to an EvoTorch searcher's hooks.

EvoTorch runs `searcher.before_step_hook()` before a generation, merges the dictionaries
returned by `searcher.after_step_hook` into the searcher's status after it, and then calls
every `searcher.log_hook` entry with that status (an `evotorch.logging.Logger` appends itself
to `log_hook` when it is created). `evolve` uses exactly these hooks:

* `GenerationTracker` (before/after step): times the generation, computes its history row
  (`generation`, `best`, `mean`, `spread`, `best_so_far`, `evaluations`, `seconds`), keeps the
  best genome so far and the population's fitness (`evals`), and adds the row to the status as
  `status["history_row"]`;
* loggers, in this order: `CheckpointLogger` (`checkpoint.npz`), `CSVLogger`
  (`history.csv`), `TensorBoardLogger` (the tags of `keras_bioact.callbacks.
  EvolutionTensorBoardLogger`, which writes them, plus `fitness/best_so_far`; no TensorFlow),
  `ProgressLogger` (tqdm) and `CallbackLogger` (the `callbacks=` functions).

Any `evotorch.logging.Logger` subclass given in `evolve(..., callbacks=[...])` is created as
`cls(searcher)` after these, so it receives the status of every generation, with the row under
`"history_row"`.

This module imports EvoTorch; `keras_bioact.search.evolution.evolve` imports it when a search
starts.
"""

import math
import os
import sys
import time

import numpy as np
from evotorch.logging import Logger

from keras_bioact.search.evolution import _resume
from keras_bioact.search.evolution.problem import population_stats
from keras_bioact.search.evolution.result import _write_csv

__all__ = [
    "CSVLogger",
    "CallbackLogger",
    "CheckpointLogger",
    "GenerationTracker",
    "ProgressLogger",
    "TensorBoardLogger",
    "attach_loggers",
]


class GenerationTracker:
    """The history and the best genome of a search, kept up to date through the searcher's
    `before_step_hook` and `after_step_hook`.

    Args:
        searcher: the EvoTorch searcher.
        sense: `"min"` or `"max"`.
        generation, history, best_fitness, best_genes: the state to continue from (resume).
    """

    def __init__(self, searcher, sense, *, generation=0, history=(), best_fitness=None, best_genes=None):
        self.searcher = searcher
        self.sense = sense
        self.generation = int(generation)
        self.history = [dict(row) for row in history]
        self.best_fitness = best_fitness
        self.best_genes = best_genes
        self.evals = None  # the fitness of the last generation's population
        self.stop = False  # set by a callback asking to stop after this generation
        self._t0 = None
        searcher.before_step_hook.append(self.before_step)
        searcher.after_step_hook.append(self.after_step)

    def _better(self, a, b):
        return a > b if self.sense == "max" else a < b

    def before_step(self):
        self._t0 = time.perf_counter()

    def after_step(self):
        seconds = time.perf_counter() - self._t0
        values, evals = population_stats(self.searcher)
        self.evals = evals
        finite = np.isfinite(evals)
        worst = -np.inf if self.sense == "max" else np.inf
        i = (np.argmax if self.sense == "max" else np.argmin)(np.where(finite, evals, worst))
        if self.best_fitness is None or self._better(evals[i], self.best_fitness):
            self.best_fitness, self.best_genes = float(evals[i]), values[i].copy()
        self.generation += 1
        row = {
            "generation": self.generation,
            "best": float(evals[i]),
            "mean": float(np.mean(evals[finite])) if finite.any() else float("nan"),
            "spread": float(np.std(evals[finite])) if finite.any() else float("nan"),
            "best_so_far": self.best_fitness,
            "evaluations": self.generation * len(evals),
            "seconds": round(seconds, 4),
        }
        self.history.append(row)
        return {"history_row": dict(row)}


class CheckpointLogger(Logger):
    """Writes `path` (`checkpoint.npz`, atomically) after every generation."""

    def __init__(self, searcher, path, *, problem, tracker, config, fingerprint):
        super().__init__(searcher)
        self.searcher, self.path, self.problem, self.tracker = searcher, path, problem, tracker
        self.config, self.fingerprint = config, fingerprint

    def _log(self, status):
        _resume.save(self.path, self.searcher, self.problem, self.tracker, self.config, self.fingerprint)


class CSVLogger(Logger):
    """Rewrites `path` (`history.csv`, atomically) with the whole history after every generation."""

    def __init__(self, searcher, path, tracker):
        super().__init__(searcher)
        self.path, self.tracker = path, tracker

    def _log(self, status):
        _write_csv(self.path, self.tracker.history)


class TensorBoardLogger(Logger):
    """TensorBoard logs of every generation (step = generation) under `log_dir`, written by
    `keras_bioact.callbacks.EvolutionTensorBoardLogger` from the population's fitness (run
    `evolution`: scalars `fitness/best|mean|median|worst|std|failed`, histogram `fitness`),
    plus the scalar `fitness/best_so_far`. A resumed run adds a new event file to the run."""

    def __init__(self, searcher, log_dir, tracker):
        from keras_bioact.callbacks.evolution_logger import EvolutionTensorBoardLogger

        super().__init__(searcher)
        self.tracker = tracker
        self.writer = EvolutionTensorBoardLogger(log_dir, maximize=tracker.sense == "max")

    def _log(self, status):
        best_so_far = status["history_row"]["best_so_far"]
        scalars = {"fitness/best_so_far": best_so_far} if math.isfinite(best_so_far) else {}
        self.writer.log_generation(self.tracker.generation, self.tracker.evals, scalars=scalars)

    def close(self):
        self.writer.close()


class ProgressLogger(Logger):
    """A tqdm progress bar over the generations, with the best and mean fitness."""

    def __init__(self, searcher, total, initial, desc):
        from tqdm.auto import tqdm

        super().__init__(searcher)
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="gen", file=sys.stderr)

    def _log(self, status):
        row = status["history_row"]
        self.bar.update(1)
        self.bar.set_postfix(best=f"{row['best_so_far']:.4g}", mean=f"{row['mean']:.4g}")

    def close(self):
        self.bar.close()


class CallbackLogger(Logger):
    """Calls every `fn(row)` with a copy of the history row; one returning `True` sets
    `tracker.stop`, so the search stops after this generation (resumable)."""

    def __init__(self, searcher, callbacks, tracker):
        super().__init__(searcher)
        self.callbacks, self.tracker = list(callbacks), tracker

    def _log(self, status):
        row = status["history_row"]
        if any([bool(fn(dict(row))) for fn in self.callbacks]):
            self.tracker.stop = True


def attach_loggers(
    searcher,
    tracker,
    *,
    problem,
    config,
    fingerprint,
    out_dir,
    checkpoint_path,
    tensorboard,
    progress,
    total,
    callbacks,
):
    """Attach `evolve`'s loggers (see the module docstring); returns them in order."""
    loggers = []
    if out_dir is not None:
        loggers.append(
            CheckpointLogger(
                searcher,
                checkpoint_path,
                problem=problem,
                tracker=tracker,
                config=config,
                fingerprint=fingerprint,
            )
        )
        loggers.append(CSVLogger(searcher, os.path.join(out_dir, "history.csv"), tracker))
        if tensorboard and _has_tensorboard():
            loggers.append(TensorBoardLogger(searcher, os.path.join(out_dir, "tensorboard"), tracker))
    if progress:
        loggers.append(ProgressLogger(searcher, total, tracker.generation, f"evolve ({config['algorithm']})"))
    functions = [cb for cb in callbacks or () if not _is_logger_class(cb)]
    if functions:
        loggers.append(CallbackLogger(searcher, functions, tracker))
    loggers += [cb(searcher) for cb in callbacks or () if _is_logger_class(cb)]
    return loggers


def close_loggers(loggers):
    for logger in loggers:
        close = getattr(logger, "close", None)
        if callable(close):
            close()


def _is_logger_class(obj):
    return isinstance(obj, type) and issubclass(obj, Logger)


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401  (an optional extra)
    except ImportError:
        return False
    return True
