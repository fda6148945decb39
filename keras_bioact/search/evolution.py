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

import json
import os
import random
import sys
import time

import keras
import numpy as np

from keras_bioact.params import ParameterView
from keras_bioact.search import checkpoint as _ckpt
from keras_bioact.search._evotorch import (  # noqa: F401  (_Runtime, _make_searcher: used by tests and specs)
    _ensure_ray,
    _make_searcher,
    _population_stats,
    _problem_class,
    _quiet_evotorch,
    _Runtime,
    _weights_fingerprint,
)
from keras_bioact.search.checkpoint import CHECKPOINT_NAME, CheckpointError
from keras_bioact.search.evaluator import (  # noqa: F401
    GRANULARITIES,
    METRICS,
    TARGETS,
    Genome,
    PopulationEvaluator,
    _resolve_metric,
    select_parameters,
)
from keras_bioact.search.evolution_result import EvolutionResult, _ScalarWriter, _write_csv, load_best
from keras_bioact.search.schema import ALGORITHMS

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

MODES = ("frozen", "baldwinian", "lamarckian")


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


def __getattr__(name):
    if name == "ActivationProblem":
        return _problem_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
