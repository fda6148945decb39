"""The Optuna objective: sample an activation, build and train a Keras model, score it."""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass

from keras_bioact.search import space as space_lib
from keras_bioact.search._compiled import CompiledModels
from keras_bioact.search.activation import Activation

__all__ = ["Budget", "Diverged", "OBJECTIVES", "direction_of", "make_objective"]

# Extra objectives (multi-objective studies) and their directions.
OBJECTIVES = {"params": "minimize", "fit_time": "minimize", "step_time": "minimize"}


def direction_of(name):
    """Direction of a metric or extra objective: losses/errors/times/params minimise."""
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    low = name.lower()
    return "minimize" if any(k in low for k in ("loss", "error", "mse", "mae")) else "maximize"


# Upper bounds of budgets nobody means (a typo such as 1e12 would train until killed).
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20


@dataclass
class Budget:
    """Training budget of one trial.

    Args:
        epochs: epochs of `model.fit` (also the pruning steps).
        batch_size: batch size.
        learning_rate: Adam learning rate.
        max_train: use at most this many training samples (None: all).
        seed: base seed; trial `k` trains with seed `seed + k`.
        jit_compile: passed to `model.compile`.
    """

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    max_train: int | None = None
    seed: int = 0
    jit_compile: object = "auto"

    def validate(self, key="budget"):
        for name, hi in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise space_lib.SpaceError(f"{key}.{name}", f"must be an integer in [1, {hi:,}], got {v!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 10:
            raise space_lib.SpaceError(f"{key}.learning_rate", f"must be a number in (0, 10], got {lr!r}")
        if self.max_train is not None and (
            isinstance(self.max_train, bool) or not isinstance(self.max_train, int) or self.max_train < 1
        ):
            raise space_lib.SpaceError(f"{key}.max_train", f"must be an integer >= 1, got {self.max_train!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise space_lib.SpaceError(f"{key}.seed", f"must be an integer, got {self.seed!r}")
        if self.jit_compile not in ("auto", True, False):
            raise space_lib.SpaceError(
                f"{key}.jit_compile", f"must be 'auto', true or false, got {self.jit_compile!r}"
            )
        return self


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
):
    """Build an Optuna objective that trains `build_model(activation)` on `data`.

    Args:
        build_model: function `Activation -> keras.Model` (compiled or not; an uncompiled model
            is compiled with Adam(`budget.learning_rate`), sparse categorical cross-entropy
            and accuracy).
        data: `((x_train, y_train), (x_val, y_val))`; the validation split gives the score.
        space: `SearchSpace` (or its dict) to sample activations from. Default: all families.
        budget: `Budget` (epochs, batch size, ...).
        metric: Keras log key to optimise, e.g. `"val_accuracy"` (maximised) or `"val_loss"`
            (minimised); its value after the last epoch is the trial's (first) value.
        objectives: extra objectives for multi-objective studies: `"params"` (parameter
            count), `"fit_time"` (seconds in `model.fit`), `"step_time"` (seconds per step).
        prune: report `metric` every epoch through optuna-integration's
            `KerasPruningCallback` (single-objective studies only).
        compile_kwargs: extra arguments of `model.compile`.
        reuse_compiled: compile once per architecture: a trial whose model has the same
            architecture as an earlier trial's (same layers, shapes, trainability; only values
            such as initial activation parameters differ) trains the earlier compiled model
            with its own freshly initialised weights and a reset optimizer, so it skips XLA
            compilation and trains exactly what a new model would (tested). Models that
            `build_model` returns compiled are always used as they are.

    Each trial records user attributes `activation` (the configuration, see
    `keras_bioact.search.Activation`), `params`, `fit_seconds`, `epoch_seconds` (wall time
    of each epoch run, validation included), `epochs_run`, `history`, `worker` and
    `reused_compiled` (whether the trial reused an earlier compiled model). A trial
    whose loss or metric becomes NaN/Inf is marked FAIL with `failure_reason` =
    `"diverged: ..."`; the study goes on.
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

    compiled = CompiledModels(compile_model) if reuse_compiled else None
    own_optimizer = "optimizer" not in (compile_kwargs or {})

    def objective(trial):
        import keras

        trial.set_user_attr("worker", worker_identity())
        if compiled is None:
            keras.backend.clear_session()
        seed = (int(budget.seed) + int(trial.number)) % 2**32  # NumPy's (Keras') seeds are 32-bit
        keras.utils.set_random_seed(seed)
        learning_rate = space_lib.suggest_learning_rate(space, trial, budget.learning_rate)
        activation = Activation(space_lib.sample(space, trial), trial=trial, space=space)
        model = build_model(activation)
        trial.set_user_attr("activation", activation.to_config())
        if not getattr(model, "compiled", False):
            if compiled is None:
                compile_model(model, learning_rate)
            else:
                hits = compiled.hits
                model = compiled.get(model, learning_rate if own_optimizer else None)
                trial.set_user_attr("reused_compiled", compiled.hits > hits)
        n_params = int(model.count_params())
        trial.set_user_attr("params", n_params)
        epoch_seconds = []
        callbacks = [_monitor_callback(metric, epoch_seconds)]
        if prune and not multi:
            from optuna_integration import KerasPruningCallback

            callbacks.append(KerasPruningCallback(trial, metric))
        # Seeded again: compiling a new model draws from the generators (Keras' data loaders
        # do), reusing one does not; the training then starts from the same state either way.
        keras.utils.set_random_seed(seed)
        start = time.perf_counter()
        failure = None
        history = None
        try:
            history = model.fit(
                x_train,
                y_train,
                validation_data=(x_val, y_val),
                epochs=budget.epochs,
                batch_size=budget.batch_size,
                callbacks=callbacks,
                verbose=0,
            )
        except Diverged as e:
            failure = f"diverged: {e}"
        finally:
            fit_seconds = time.perf_counter() - start
            trial.set_user_attr("fit_seconds", fit_seconds)
            trial.set_user_attr("epoch_seconds", [round(t, 4) for t in epoch_seconds])
        if failure is None:
            logs = history.history
            if metric not in logs:
                raise KeyError(f"metric {metric!r} is not in the training logs (keys: {sorted(logs)})")
            value = float(logs[metric][-1])
            trial.set_user_attr("epochs_run", len(logs[metric]))
            trial.set_user_attr("history", {k: [float(v) for v in vals] for k, vals in logs.items()})
            if not math.isfinite(value):
                failure = f"diverged: {metric}={value} after the last epoch"
        if failure is not None:
            trial.set_user_attr("failure_reason", failure)
            return tuple([float("nan")] * (1 + len(objectives))) if multi else float("nan")
        values = [value]
        steps = max(1, budget.epochs * math.ceil(len(x_train) / budget.batch_size))
        for name in objectives:
            values.append(
                {"params": float(n_params), "fit_time": fit_seconds, "step_time": fit_seconds / steps}[name]
            )
        return tuple(values) if multi else value

    objective.compiled = compiled
    objective.directions = [direction_of(metric)] + [direction_of(o) for o in objectives]
    return objective
