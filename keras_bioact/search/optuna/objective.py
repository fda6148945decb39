"""The Optuna objective: sample an activation, build and train a Keras model, score it."""

from __future__ import annotations

import math
import os
import socket
import time

from keras_bioact.search import space as space_lib
from keras_bioact.search.activation import Activation
from keras_bioact.search.metrics import OBJECTIVES, direction_of
from keras_bioact.search.optuna._compiled import CompiledModels
from keras_bioact.search.spec.model import Budget
from keras_bioact.seeding import set_random_seed

__all__ = [
    "Diverged",
    "compile_time",
    "data_and_builder",
    "make_objective",
    "objective_from_spec",
    "worker_identity",
]


class Diverged(RuntimeError):
    """Training produced a non-finite loss or metric."""


def _monitor_callback(metric, epoch_seconds):
    """Raises `Diverged` on a non-finite loss or metric; appends each epoch's wall time
    (training and validation) to `epoch_seconds`."""
    import keras

    class _Monitor(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self._start)
            logs = logs or {}
            for key in ("loss", "val_loss", metric):
                value = logs.get(key)
                if value is not None and not math.isfinite(float(value)):
                    raise Diverged(f"{key}={float(value)} at epoch {epoch}")

    return _Monitor()


def compile_time(epoch_seconds):
    """Seconds of the first epoch spent compiling (tracing, XLA): the first epoch's time minus
    the median of the later epochs' times (at least 0); None with fewer than two epochs. The
    loss, metrics and evaluation step are compiled before `fit` (see `compile_model`), so the
    first epoch's extra time is the compilation of the training step."""
    import statistics

    if len(epoch_seconds) < 2:
        return None
    return max(0.0, epoch_seconds[0] - statistics.median(epoch_seconds[1:]))


def _proc_start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def worker_identity():
    """`{"host", "pid", "start"}` of this process (start: kernel start time, Linux only)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _proc_start_time(pid)}


def make_objective(
    build_model,
    data,
    space=None,
    budget=None,
    metric="val_accuracy",
    objectives=(),
    prune=True,
    compile_kwargs=None,
    reuse_compiled=True,
    validation_freq=1,
    folds=None,
    baselines=(),
):
    """Build an Optuna objective that trains `build_model(activation)` on `data`.

    Args:
        build_model: function `Activation -> keras.Model` (compiled or not; an uncompiled model
            is compiled with Adam(`budget.learning_rate`), sparse categorical cross-entropy
            and accuracy).
        data: `((x_train, y_train), (x_val, y_val))`; the validation split gives the score.
        space: `SearchSpace` (or its dict) to sample activations from. Default: all families.
        budget: `Budget` (epochs, batch size, repeats, ...). With `budget.repeats = k` > 1 each
            trial trains k times, repeat `j` from the seed `budget.seed_of(trial.number, j)`
            (repeat 0: `seed + trial.number`, as a trial with one repeat), on the same training
            and validation splits; its value is the mean of the k values.
        metric: Keras log key to optimise, e.g. `"val_accuracy"` (maximised) or `"val_loss"`
            (minimised); its value after the last epoch is the trial's (first) value.
        objectives: extra objectives for multi-objective studies: `"params"` (parameter
            count), `"fit_time"` (seconds in `model.fit`, compilation excluded), `"step_time"`
            (those seconds per step).
        prune: report `metric` every epoch through optuna-integration's
            `KerasPruningCallback` (single-objective studies only).
        compile_kwargs: extra arguments of `model.compile`.
        reuse_compiled: compile once per architecture: a trial whose model has the same
            architecture as an earlier trial's (same layers, shapes, trainability; only values
            such as initial activation parameters differ) trains the earlier compiled model
            with its own freshly initialised weights and a reset optimizer, so it skips XLA
            compilation and trains exactly what a new model would (tested). Models that
            `build_model` returns compiled are always used as they are.
        validation_freq: evaluate the second split every this many epochs (`model.fit`'s
            `validation_freq`); the verdict sets it to `budget.epochs` so that its test split is
            scored once, after the last epoch (pruning needs 1).
        folds: k (>= 2): score each trial by k-fold cross-validation on the training split
            instead (fold `j`, a contiguous part of the already shuffled training split, scores a
            model trained on the others, from the seed `budget.seed_of(trial.number, j)`); the
            validation split is not used. Not together with `budget.repeats` > 1.
        baselines: names of baseline families: their trials get the user attribute
            `baseline = True`.

    With several repeats or folds, pruning sees one step per seed or fold (its value after the
    last epoch; `trial.report(value, step=j)`, then `trial.should_prune()`), never epochs: use
    `optuna.pruners.WilcoxonPruner`. With one, `metric` is reported every epoch.

    Each trial records user attributes `activation` (the configuration, see
    `keras_bioact.search.Activation`), `params`, `compile_seconds` (the first epoch's extra
    time over the later epochs' median, see `compile_time`; None with one epoch run),
    `fit_seconds` (seconds in `model.fit` less `compile_seconds`, over all repeats),
    `epoch_seconds` (wall time of each epoch run, validation included, all repeats one after the
    other), `scores` (the value of each repeat or fold), and, of the first repeat,
    `epochs_run` and `history`; `worker`, `baseline` (a baseline family's trial) and
    `reused_compiled` (whether the trial reused an earlier compiled model). A trial
    whose loss or metric becomes NaN/Inf is marked FAIL with `failure_reason` =
    `"diverged: ..."`; the study goes on.

    Functionally equal activations are trained once: for a family with a `fingerprint`
    (`composed`), a trial records it as the user attribute `fingerprint`; if a finished trial
    of the study has the same fingerprint (and the same learning rate), the trial is not
    trained: it records `duplicate_of` (that trial's number) and returns that trial's value(s)
    (so the sampler still learns where the function lies), or is pruned if that trial was.
    """
    import numpy as np

    space = space_lib.SearchSpace() if space is None else space
    if isinstance(space, dict):
        space = space_lib.SearchSpace.from_dict(space)
    budget = (budget or Budget()).validate()
    objectives = tuple(objectives)
    for name in objectives:
        if name not in OBJECTIVES:
            raise ValueError(f"make_objective: unknown objective {name!r}; legal: {', '.join(OBJECTIVES)}")
    (x_train, y_train), (x_val, y_val) = data
    if budget.max_train is not None:
        x_train, y_train = x_train[: budget.max_train], y_train[: budget.max_train]
    if folds is not None and budget.repeats > 1:
        raise ValueError("make_objective: give budget.repeats > 1 or folds, not both")
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    x_val, y_val = np.asarray(x_val), np.asarray(y_val)
    multi = bool(objectives)

    def compile_model(model, learning_rate=budget.learning_rate):
        import keras

        kwargs = dict(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=budget.jit_compile,
        )
        kwargs.update(compile_kwargs or {})
        model.compile(**kwargs)
        # Build the loss and metrics on one validation batch (no randomness drawn): Keras
        # builds them on the first `fit` by drawing a training batch, which would consume one
        # shuffle of the data on a new model only; this keeps every trial's data order the
        # same whether its model is new or a reused compiled one.
        size = min(budget.batch_size, len(x_val))
        model.evaluate(x_val[:size], y_val[:size], batch_size=size, verbose=0)

    if folds is not None:
        if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= len(x_train):
            raise ValueError(
                f"data.folds: must be an integer in [2, {len(x_train)}] (the training samples), got {folds!r}"
            )
        parts = np.array_split(np.arange(len(x_train)), folds)
    n_splits = folds or budget.repeats
    repeated = n_splits > 1
    unit = "folds" if folds else "seeds"
    baselines = frozenset(baselines)

    def split(j):
        """`(train, val)` of repeat or fold `j`: fold `j` of the training split scores a model
        trained on the other folds; repeats all train on the training split, score on validation."""
        if folds is None:
            return (x_train, y_train), (x_val, y_val)
        keep = np.ones(len(x_train), bool)
        keep[parts[j]] = False
        return (x_train[keep], y_train[keep]), (x_train[parts[j]], y_train[parts[j]])

    compiled = CompiledModels(compile_model) if reuse_compiled else None
    own_optimizer = "optimizer" not in (compile_kwargs or {})

    def objective(trial):
        import keras

        trial.set_user_attr("worker", worker_identity())
        if compiled is None:
            keras.backend.clear_session()
        seed = budget.seed_of(trial.number, 0)
        set_random_seed(seed)
        learning_rate = space_lib.suggest_learning_rate(space, trial, budget.learning_rate)
        activation = Activation(space_lib.sample(space, trial), trial=trial, space=space)
        if activation.family in baselines:
            trial.set_user_attr("baseline", True)
        trial.set_user_attr("activation", activation.to_config())
        earlier = _duplicate(trial, activation)
        if earlier is not None:
            import optuna

            trial.set_user_attr("duplicate_of", earlier.number)
            if earlier.state == optuna.trial.TrialState.PRUNED:
                raise optuna.TrialPruned(f"the same function as trial {earlier.number}, which was pruned")
            return tuple(earlier.values) if multi else earlier.value
        scores, all_seconds, fit_seconds = [], [], []
        failure = compile_seconds = None
        for j in range(n_splits):
            if j:  # repeat (or fold) j: its own seed; the same activation and learning rate
                seed = budget.seed_of(trial.number, j)
                set_random_seed(seed)
            model = build_model(activation)
            if not getattr(model, "compiled", False):
                if compiled is None:
                    compile_model(model, learning_rate)
                else:
                    hits = compiled.hits
                    model = compiled.get(model, learning_rate if own_optimizer else None)
                    if j == 0:
                        trial.set_user_attr("reused_compiled", compiled.hits > hits)
            if j == 0:
                n_params = int(model.count_params())
                trial.set_user_attr("params", n_params)
            epoch_seconds = []
            callbacks = [_monitor_callback(metric, epoch_seconds)]
            if prune and not multi and not repeated:
                from optuna_integration import KerasPruningCallback

                callbacks.append(KerasPruningCallback(trial, metric))
            train, val = split(j)
            # Seeded again: compiling a new model draws from the generators (Keras' data loaders
            # do), reusing one does not; the training then starts from the same state either way.
            set_random_seed(seed)
            start = time.perf_counter()
            history = None
            try:
                history = model.fit(
                    *train,
                    validation_data=val,
                    epochs=budget.epochs,
                    batch_size=budget.batch_size,
                    validation_freq=validation_freq,
                    callbacks=callbacks,
                    verbose=0,
                )
            except Diverged as e:
                failure = f"diverged: {e}"
            finally:
                compiling = compile_time(epoch_seconds)
                compile_seconds = compiling if j == 0 else compile_seconds
                fit_seconds.append(time.perf_counter() - start - (compiling or 0.0))
                all_seconds += epoch_seconds
                trial.set_user_attr("compile_seconds", compile_seconds)
                trial.set_user_attr("fit_seconds", sum(fit_seconds))
                trial.set_user_attr("epoch_seconds", [round(t, 4) for t in all_seconds])
            if failure is None:
                logs = history.history
                if metric not in logs:
                    raise KeyError(f"metric {metric!r} is not in the training logs (keys: {sorted(logs)})")
                value = float(logs[metric][-1])
                if j == 0:
                    trial.set_user_attr("epochs_run", len(logs[metric]))
                    trial.set_user_attr("history", {k: [float(v) for v in vals] for k, vals in logs.items()})
                if not math.isfinite(value):
                    failure = f"diverged: {metric}={value} after the last epoch"
            if failure is not None:
                break
            scores.append(value)
            if repeated:
                trial.set_user_attr("scores", list(scores))
                if prune and not multi:
                    import optuna

                    trial.report(value, step=j)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after {j + 1} of {n_splits} {unit}")
        if failure is not None:
            trial.set_user_attr("failure_reason", failure)
            return tuple([float("nan")] * (1 + len(objectives))) if multi else float("nan")
        trial.set_user_attr("scores", list(scores))
        value = sum(scores) / len(scores)  # the mean over seeds (or folds)
        values = [value]
        one_fit = sum(fit_seconds) / len(fit_seconds)  # the seconds of one training
        steps = max(1, budget.epochs * math.ceil(len(split(0)[0][1]) / budget.batch_size))
        for name in objectives:
            values.append(
                {"params": float(n_params), "fit_time": one_fit, "step_time": one_fit / steps}[name]
            )
        return tuple(values) if multi else value

    objective.compiled = compiled
    objective.directions = [direction_of(metric)] + [direction_of(o) for o in objectives]
    return objective


def _duplicate(trial, activation):
    """The earliest finished (complete or pruned) trial of `trial`'s study whose activation has
    the same fingerprint as `activation` and the same `learning_rate` parameter; None if there
    is none or the family has no fingerprint. Records the user attribute `fingerprint`."""
    from optuna.trial import TrialState

    fingerprint = activation.declaration.fingerprint
    if fingerprint is None:
        return None
    mine = fingerprint(activation.config)
    trial.set_user_attr("fingerprint", mine)
    study = getattr(trial, "study", None)
    if study is None:
        return None
    rate = trial.params.get("learning_rate")
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if other.user_attrs.get("fingerprint") == mine and other.params.get("learning_rate") == rate:
            return other
    return None


def data_and_builder(spec, data=None):
    """`(data, build_model)` of a `SearchSpec`: its training and validation splits (`data`, or
    loaded from the spec) and the model builder of its template for their input shape and classes."""
    from keras_bioact.search.data import load_data
    from keras_bioact.search.models import model_builder

    if data is None:
        data, (input_shape, num_classes) = load_data(spec)
    else:
        import numpy as np

        input_shape = tuple(np.asarray(data[0][0]).shape[1:])
        num_classes = int(max(np.max(data[0][1]), np.max(data[1][1]))) + 1
    return data, model_builder(spec, input_shape, num_classes)


def objective_from_spec(spec, data=None):
    """The Optuna objective of a `SearchSpec`: its model, space, budget, metric and extra
    objectives, on its training and validation splits (`data`, or loaded from the spec)."""
    data, build_model = data_and_builder(spec, data)
    return make_objective(
        build_model,
        data,
        space=spec.space,
        budget=spec.budget,
        metric=spec.metric,
        objectives=spec.extra,
        prune=spec.pruner.get("name", "none") != "none",
        folds=spec.data.get("folds"),
        baselines=spec.baselines,
    )
