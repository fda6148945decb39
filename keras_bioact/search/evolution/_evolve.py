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

`evolve` is split the way EvoTorch splits a search: the problem (`problem.ActivationProblem`,
what is evaluated, with the model side in `runtime`), the algorithm (`problem.make_searcher`),
what is attached to the searcher's hooks (`loggers`: the history tracker, the checkpoint,
history.csv, TensorBoard, progress and callback loggers; the checkpoint format is `_resume` /
`checkpoint`), and the result (`result`); the modules of `keras_bioact.search.evolution`. All randomness
comes from the problem's own generator (`Problem(..., seed=seed)`); no global generator is
seeded, read for sampling or restored.

Modes: `"frozen"` (outer weights fixed; the population is evaluated vectorised),
`"baldwinian"` (each candidate is trained briefly with SGD from the same start, weights and
activation parameters together, before scoring; everything learned is discarded) and
`"lamarckian"` (as Baldwinian, but the learned activation parameters are written back into
the candidate's genome).

EvoTorch, PyTorch and Ray are imported lazily, so `import keras_bioact` stays light.
"""

import numbers
import os

import numpy as np

from keras_bioact.search.evolution import _resume
from keras_bioact.search.evolution.checkpoint import CHECKPOINT_NAME
from keras_bioact.search.evolution.fitness import GRANULARITIES, TARGETS, _resolve_metric
from keras_bioact.search.evolution.result import result_from
from keras_bioact.search.evolution.runtime import _ensure_ray, _weights_fingerprint
from keras_bioact.search.spec.schema import ALGORITHMS, SEED_MAX, bad_value

__all__ = ["MODES", "evolve"]

MODES = ("frozen", "baldwinian", "lamarckian")


# --------------------------------------------------------------------------------------------
# evolve


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
            see `keras_bioact.search.evolution.checkpoint`), `history.csv`, TensorBoard logs
            (`tensorboard/evolution`), `best_parameters.npz` and `best.json`. `None` writes nothing
            (and cannot resume).
        resume: continue from `out_dir/checkpoint.npz`; an error if there is none.
        overwrite: start over even though `out_dir` holds a checkpoint (without `resume` or
            `overwrite`, an existing checkpoint is an error, never silently replaced).
        progress: show a tqdm progress bar.
        apply_best: write the best parameters into `model` at the end.
        tensorboard: write TensorBoard logs under `out_dir/tensorboard/evolution` (the tags of
            `keras_bioact.callbacks.EvolutionTensorBoardLogger`, plus `fitness/best_so_far`).
        stop_after: stop (without finishing) after this many generations of this call; for
            tests and time-sliced runs. The checkpoint allows continuing with `resume=True`.
        callbacks: functions called as `fn(row)` after each generation (and its checkpoint),
            with the history row (a dict); a callback returning `True` stops the search early
            (resumable like `stop_after`). An `evotorch.logging.Logger` subclass in the list is
            created as `cls(searcher)` and so receives the searcher's status after every
            generation (the history row is `status["history_row"]`).

    Returns:
        An `EvolutionResult`.
    """
    config = _settings(dict(locals()))  # the arguments as given: no other local exists yet
    from keras_bioact.search.evolution import loggers as loggers_lib  # EvoTorch, PyTorch: now
    from keras_bioact.search.evolution import problem as problem_lib

    data = {"val": tuple(np.asarray(a) for a in val_data)}
    if train_data is not None:
        data["train"] = tuple(np.asarray(a) for a in train_data)
    if num_actors:
        _ensure_ray(num_actors)
    checkpoint_path = None if out_dir is None else os.path.join(out_dir, CHECKPOINT_NAME)
    state = _resume.open_checkpoint(out_dir, checkpoint_path, resume, overwrite)
    if state is not None:
        _resume.check_resume(state[0], config, model, checkpoint_path)
    # on resume the start model is the stored one (checked above), not the current weights
    fingerprint = state[0]["fingerprint"] if state else _weights_fingerprint(model)

    problem = problem_lib.make_problem(model, data, config)
    searcher = problem_lib.make_searcher(
        algorithm, problem, config["popsize"], config["stdev_init"], problem.center, algorithm_options
    )
    restored = (
        {} if state is None else _resume.restore(state, searcher, problem, checkpoint_path, generations)
    )
    tracker = loggers_lib.GenerationTracker(searcher, problem.runtime().evaluator.sense, **restored)
    if num_actors:
        problem_lib.start_actors(problem)
    loggers = loggers_lib.attach_loggers(
        searcher,
        tracker,
        problem=problem,
        config=config,
        fingerprint=fingerprint,
        out_dir=out_dir,
        checkpoint_path=checkpoint_path,
        tensorboard=tensorboard,
        progress=progress,
        total=generations,
        callbacks=callbacks,
    )
    try:
        _run(searcher, tracker, generations, stop_after)
    finally:
        loggers_lib.close_loggers(loggers)
        if problem.actors:
            problem.kill_actors()
    result = result_from(problem.runtime().genome, tracker, config, out_dir)
    if tracker.generation >= generations:
        if out_dir is not None:
            result.save(out_dir)
        if apply_best:
            result.apply(model)
    return result


def _run(searcher, tracker, generations, stop_after):
    """Step the searcher until `generations` are done, `stop_after` steps were taken in this
    call, or a callback asked to stop."""
    steps = 0
    while tracker.generation < generations and not tracker.stop:
        if stop_after is not None and steps >= stop_after:
            break
        searcher.step()
        steps += 1


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"evolve: `{name}` must be one of {choices}, got {value!r}.")


_CONFIG_KEYS = (
    "target",
    "layers",
    "granularity",
    "algorithm",
    "popsize",
    "metric",
    "from_logits",
    "mode",
    "train_epochs",
    "train_batch_size",
    "learning_rate",
    "stdev_init",
    "algorithm_options",
    "seed",
    "num_actors",
    "vectorized",
    "eval_batch_size",
    "population_chunk",
    "memory_budget",
)


def _settings(args):
    """Check `evolve`'s arguments (`{name: value}`); returns the search settings (`config`)."""
    algorithm, mode, target, granularity = (
        args["algorithm"],
        args["mode"],
        args["target"],
        args["granularity"],
    )
    popsize, generations, num_actors = args["popsize"], args["generations"], args["num_actors"]
    stdev_init, train_data, metric, sense = (
        args["stdev_init"],
        args["train_data"],
        args["metric"],
        args["sense"],
    )
    resume, overwrite, out_dir = args["resume"], args["overwrite"], args["out_dir"]
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
    for name in ("stdev_init", "learning_rate"):
        value = args[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < np.inf:
            raise ValueError(f"evolve: `{name}` must be a finite number > 0, got {value!r}.")
    seed = args["seed"]
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX
    ):
        raise ValueError(f"evolve: `seed` must be None or an integer in [0, 2**32 - 1], got {seed!r}.")
    bad = bad_value(args["algorithm_options"] or {}, "algorithm_options")
    if bad:
        raise ValueError(f"evolve: `{bad[0]}` {bad[1]}.")
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
    config = {key: args[key] for key in _CONFIG_KEYS}
    layers = args["layers"]
    config.update(
        layers=None if layers is None else [layers] if isinstance(layers, str) else list(layers),
        popsize=int(popsize),
        metric=metric,
        train_epochs=int(args["train_epochs"]),
        train_batch_size=int(args["train_batch_size"]),
        learning_rate=float(args["learning_rate"]),
        stdev_init=float(stdev_init),
        algorithm_options=dict(args["algorithm_options"] or {}),
        num_actors=int(num_actors),
    )
    return config


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
