"""Trials trained as a population (`[optuna] batch`): Optuna's ask/tell in batches.

A worker asks the study for `batch` trials at once (`study.ask()`), samples each one's
activation and learning rate as the objective does, builds each member's model from its own seed
(each trial's `repeats` seeds, `Budget.seed_of`), and groups the members by architecture
(`architecture_key`: one family whose configurations differ only in values, such as gamma's
`n, s`, BRU's radii or the learning rate). Each group trains in one vectorised call per epoch
(`keras_bioact.search.population.PopulationFit`, JAX and PyTorch), which reproduces every
member's own `model.fit` (its weights, data order and Adam state): the trials' values and
histories equal those of the one-by-one objective to float rounding.

After every epoch each trial is reported (its metric; with `repeats > 1`, each repeat's final
value is a step instead, as the one-by-one objective reports them) and asked whether to prune: a
pruned trial is told PRUNED at once, and its lanes keep computing with the group until the group
ends (their results are discarded; a group stops when all its trials are told). A member whose
loss or metric becomes NaN/Inf fails its trial alone (FAIL, `failure_reason = "diverged: ..."`).
Trials that cannot be vectorised (TensorFlow, a model that draws random numbers such as
Dropout, a model `build_model` returns compiled) or that would train slower vectorised
(convolutions on JAX's CPU) train one by one through the objective.

User attributes are the objective's (`worker`, `activation`, `params`, `history`,
`epochs_run`, `compile_seconds`, `fit_seconds`, `epoch_seconds`, `reused_compiled`,
`failure_reason`), plus `scores` (the final metric of each repeat; the value is their mean) and
`batch` (`trials`, `members`, `seconds`: the group's size and wall time). A group's trials share
its wall time: `epoch_seconds` and `compile_seconds` are the group's, `fit_seconds` its share
(group time less compilation, divided by its trials).
"""

from __future__ import annotations

import collections
import math
import time
import warnings

from keras_bioact.search import space as space_lib
from keras_bioact.search.activation import Activation
from keras_bioact.search.optuna import objective as objective_lib
from keras_bioact.search.optuna import workers
from keras_bioact.search.optuna._compiled import architecture_key
from keras_bioact.search.optuna.objective import compile_time, make_objective, worker_identity
from keras_bioact.search.spec.model import Budget, SpecError

__all__ = ["DEFAULT_BATCH", "BatchObjective", "batch_of", "run_batches", "run_trials", "vectorizes"]

DEFAULT_BATCH = 8
TIMED = ("fit_time", "step_time")  # objectives of a trial's own time: never batched


def vectorizes(backend=None):
    """Whether the Keras backend trains populations vectorised (JAX, PyTorch)."""
    from keras_bioact.search.population import FIT_BACKENDS

    if backend is None:
        import keras

        backend = keras.backend.backend()
    return backend in FIT_BACKENDS


def batch_of(spec, backend=None):
    """The trials a worker of `spec` asks and trains at once: `optuna.batch`, or by default
    `DEFAULT_BATCH` (at most `n_trials`) where the backend vectorises; 1 on TensorFlow and with
    a timing objective (`fit_time`, `step_time`). `SpecError` naming `optuna.batch` if it
    exceeds `n_trials` (which a run may override)."""
    if spec.batch is not None and spec.n_trials is not None and spec.batch > spec.n_trials:
        raise SpecError(
            spec.source,
            "optuna.batch",
            f"must be at most the trial budget optuna.n_trials = {spec.n_trials}, got {spec.batch}",
        )
    if not vectorizes(backend) or any(e in TIMED for e in spec.extra):
        return 1
    if spec.batch is not None:
        return spec.batch
    return max(1, min(DEFAULT_BATCH, spec.n_trials or DEFAULT_BATCH))


class BatchObjective:
    """Trains asked trials in vectorised groups and tells them (see the module).

    Args:
        build_model, data, space, budget, metric, objectives, prune: as `make_objective`.
        batch: trials asked at once (the compiled population is `batch * repeats` members).
        repeats: seeds per trial (`budget.repeats` where the budget has it); the value is
            the mean of their final metric.
        objective: the one-by-one objective for trials that cannot be vectorised (default:
            `make_objective` of the same arguments).
    """

    def __init__(
        self,
        build_model,
        data,
        space=None,
        budget=None,
        metric="val_accuracy",
        objectives=(),
        prune=True,
        batch=DEFAULT_BATCH,
        repeats=None,
        objective=None,
        baselines=(),
    ):
        import numpy as np

        self.build_model = build_model
        self.space = space_lib.SearchSpace() if space is None else space
        if isinstance(self.space, dict):
            self.space = space_lib.SearchSpace.from_dict(self.space)
        self.budget = (budget or Budget()).validate()
        self.metric, self.objectives, self.prune = metric, tuple(objectives), prune
        timed = [o for o in self.objectives if o in TIMED]
        if timed:
            raise ValueError(f"BatchObjective: the timing objective {timed[0]!r} cannot be batched.")
        self.batch = int(batch)
        self.repeats = int(repeats if repeats is not None else getattr(self.budget, "repeats", 1))
        self.baselines = frozenset(baselines)
        (x_train, y_train), (x_val, y_val) = data
        if self.budget.max_train is not None:
            x_train, y_train = x_train[: self.budget.max_train], y_train[: self.budget.max_train]
        self.x, self.y = np.asarray(x_train), np.asarray(y_train)
        self.x_val, self.y_val = np.asarray(x_val), np.asarray(y_val)
        self.objective = objective or make_objective(
            build_model, data, self.space, self.budget, metric, self.objectives, prune, baselines=baselines
        )
        self._fitters = collections.OrderedDict()  # architecture -> PopulationFit (LRU)

    @property
    def size(self):
        """Members trained at once: `batch * repeats`."""
        return self.batch * self.repeats

    # -- one trial's members ------------------------------------------------------------------

    def _members(self, trial):
        """`(architecture, [(seed, learning rate, (trainable, non-trainable) values)], model)`
        of `trial`'s repeats, or None when its model cannot be vectorised."""
        from keras import ops

        from keras_bioact.search.population import unvectorizable, vectorising_is_slower
        from keras_bioact.seeding import set_random_seed

        members, model = [], None
        for repeat in range(self.repeats):
            seed = self.budget.seed_of(trial.number, repeat)
            set_random_seed(seed)  # as the objective: seed, suggest, sample, build
            learning_rate = space_lib.suggest_learning_rate(self.space, trial, self.budget.learning_rate)
            activation = Activation(space_lib.sample(self.space, trial), trial=trial, space=self.space)
            if activation.declaration.fingerprint is not None:
                return None  # a family whose equal functions train once: the objective checks
            model = self.build_model(activation)
            if repeat == 0:
                trial.set_user_attr("activation", activation.to_config())
                if activation.family in self.baselines:
                    trial.set_user_attr("baseline", True)
            if getattr(model, "compiled", False) or not model.built:
                return None
            if unvectorizable(model) or vectorising_is_slower(model):
                return None
            values = tuple(
                [ops.convert_to_numpy(v.value) for v in group]
                for group in (model.trainable_variables, model.non_trainable_variables)
            )
            members.append((seed, learning_rate, values))
        trial.set_user_attr("params", int(model.count_params()))
        return architecture_key(model), members, model

    def _fitter(self, key, model):
        from keras_bioact.search.population import PopulationFit

        fitter = self._fitters.get(key)
        if fitter is not None:
            self._fitters.move_to_end(key)
            return fitter, True
        fitter = PopulationFit(
            model,
            self.x,
            self.y,
            self.x_val,
            self.y_val,
            epochs=self.budget.epochs,
            batch_size=self.budget.batch_size,
            size=self.size,
        )
        self._fitters[key] = fitter
        if len(self._fitters) > 8:
            self._fitters.popitem(last=False)
        return fitter, False

    # -- a batch ------------------------------------------------------------------------------

    def __call__(self, study, count, on_trial=None, log=None, room=None):
        """Ask `study` for `count` trials, one after the other (each is sampled and built before
        the next is asked, so that an interrupted batch holds no trial without parameters),
        train them and tell them (all of them, also on an error: the untold ones fail, and the
        error goes on). `room()`, asked before each trial after the first, stops the asking early
        when it says no more trials are wanted (other workers took them). Returns the told trials
        (`FrozenTrial`s)."""
        import optuna

        told, pending, trials = [], [], []

        def tell(trial, **kwargs):
            pending.remove(trial)
            frozen = _tell(study, trial, log, **kwargs)
            if frozen is not None:
                told.append(frozen)
                if on_trial is not None:
                    on_trial(study, frozen)

        try:
            groups, plain = collections.OrderedDict(), []
            for i in range(count):
                if i and room is not None and room() <= 0:  # other workers took the rest meanwhile
                    break
                trial = study.ask()
                trials.append(trial)
                pending.append(trial)
                trial.set_user_attr("worker", worker_identity())
                prepared = self._members(trial)
                if prepared is None:
                    plain.append(trial)
                    continue
                key, members, model = prepared
                groups.setdefault(key, ([], model))[0].append((trial, members))
            for key, (entries, model) in groups.items():
                fitter, cached = self._fitter(key, model)
                self._train_group(fitter, cached, entries, tell)
            for trial in plain:  # one by one, through the objective
                try:
                    value = self.objective(trial)
                except optuna.TrialPruned:
                    tell(trial, state=optuna.trial.TrialState.PRUNED)
                    continue
                if "failure_reason" in trial.user_attrs:
                    tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    tell(trial, values=value)
        except BaseException as error:
            interrupted = isinstance(error, KeyboardInterrupt)
            reason = workers.INTERRUPTED if interrupted else f"{type(error).__name__}: {error}"
            for trial in list(pending):
                try:
                    trial.set_user_attr("failure_reason", reason)
                    if interrupted:
                        trial.set_user_attr("stale", True)
                    tell(trial, state=optuna.trial.TrialState.FAIL)
                except Exception:  # noqa: S110 - the original error matters more
                    pass
            if interrupted:
                stored = [study._storage.get_trial(t._trial_id) for t in trials]
                workers._requeue(study, [t for t in stored if t.user_attrs.get("stale")])
            raise
        return told

    def _train_group(self, fitter, cached, entries, tell):
        import numpy as np
        import optuna

        from keras_bioact.search.population import fit_orders

        k, metric = self.repeats, self.metric
        members = [m for _, ms in entries for m in ms]
        orders = np.stack([fit_orders(seed, len(self.x), self.budget.epochs) for seed, _, _ in members])
        histories = [collections.defaultdict(list) for _ in members]
        live = {i: trial for i, (trial, _) in enumerate(entries)}
        epoch_seconds, failures = [], {}
        last = time.perf_counter()

        def timing(trial):
            compile_seconds = compile_time(epoch_seconds)
            total = sum(epoch_seconds)
            trial.set_user_attr("compile_seconds", compile_seconds)
            trial.set_user_attr("fit_seconds", (total - (compile_seconds or 0.0)) / len(entries))
            trial.set_user_attr("epoch_seconds", [round(t, 4) for t in epoch_seconds])
            trial.set_user_attr("reused_compiled", cached)
            trial.set_user_attr("batch", {"trials": len(entries), "members": len(members), "seconds": total})

        logs_iter = fitter.fit([m[2] for m in members], [m[1] for m in members], orders)
        for epoch, logs in logs_iter:
            now = time.perf_counter()
            epoch_seconds.append(now - last)
            last = now
            for i, trial in list(live.items()):
                for j in range(i * k, (i + 1) * k):
                    for key in fitter.KEYS:
                        histories[j][key].append(float(logs[key][j]))
                    for key in dict.fromkeys(("loss", "val_loss", metric)):
                        value = float(logs[key][j]) if key in logs else None
                        if value is not None and not math.isfinite(value) and i not in failures:
                            failures[i] = f"diverged: {key}={value} at epoch {epoch}"
                if i in failures:
                    timing(trial)
                    trial.set_user_attr("failure_reason", failures[i])
                    tell(trial, state=optuna.trial.TrialState.FAIL)
                    del live[i]
                elif self.prune and not self.objectives and k == 1:
                    trial.report(float(logs[metric][i]), epoch)
                    if trial.should_prune():
                        timing(trial)
                        tell(trial, state=optuna.trial.TrialState.PRUNED)
                        del live[i]
            if not live:
                logs_iter.close()
                break
        for i, trial in live.items():
            timing(trial)
            scores = [histories[j][metric][-1] for j in range(i * k, (i + 1) * k)]
            value = float(np.mean(scores))
            trial.set_user_attr("epochs_run", len(histories[i * k][metric]))
            trial.set_user_attr("history", dict(histories[i * k]))
            trial.set_user_attr("scores", scores)
            if self.prune and not self.objectives and k > 1:
                pruned = False
                for r, score in enumerate(scores):
                    trial.report(score, r)
                    if trial.should_prune():
                        pruned = True
                        break
                if pruned:
                    tell(trial, state=optuna.trial.TrialState.PRUNED)
                    continue
            values = [value] + [float(trial.user_attrs["params"]) for _ in self.objectives]
            tell(trial, values=values if self.objectives else value)


def _tell(study, trial, log, **kwargs):
    """`study.tell(trial, ...)`; a trial that another process finished meanwhile (its recovery
    took this worker for dead) is skipped with one line to `log`."""
    import sys

    import optuna

    try:
        return study.tell(trial, **kwargs)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, AssertionError) as e:
        stored = study._storage.get_trial(trial._trial_id)
        if not stored.state.is_finished():
            raise
        message = (
            f"trial {trial.number} was finished by another process meanwhile "
            f"({type(e).__name__}: {e}); skipped it, going on"
        )
        (log or (lambda m: print(m, file=sys.stderr)))(message)
        return None


def run_batches(study, objective, n_trials=None, timeout=None, on_trial=None, log=None, before_ask=None):
    """Run this process as one worker that asks `objective.batch` trials at a time (a
    `BatchObjective`) until the study has `n_trials` finished trials (over all workers; trials
    other workers are running count as on their way) or `timeout` seconds pass. Interrupted,
    the batch's untold trials fail and are re-queued at once (as `workers.run`).
    `before_ask(study, want, remaining)` is called before each batch is asked (the pre-screen's
    refill; `remaining`: trials still wanted, None without `n_trials`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workers.recover_dead_trials(study)
    deadline = None if timeout is None else time.monotonic() + timeout

    def room():  # trials still wanted: other workers' running ones count as on their way
        if n_trials is None:
            return objective.batch
        running = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))
        return _remaining(n_trials, study) - running

    while True:
        left = None if deadline is None else deadline - time.monotonic()
        want = min(objective.batch, room())
        if want <= 0 or (left is not None and left <= 0):
            return study
        if before_ask is not None:
            before_ask(study, want, None if n_trials is None else room())
        with warnings.catch_warnings():
            # ask/tell has no heartbeat thread; liveness is the workers' own (recover_dead_trials)
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            objective(study, want, on_trial=on_trial, log=log, room=None if n_trials is None else room)


def run_trials(spec, study, on_trial=None, log=None, data=None):
    """Run this process's trials of `spec` (one worker): in batches (`batch_of`; also a batch of
    one trial whose repeats train together) where the backend vectorises, else one by one
    through the objective (`workers.run`)."""
    batch = batch_of(spec)
    repeats = int(getattr(spec.budget, "repeats", 1))
    if (spec.batch or 1) > 1 and batch == 1 and log is not None:
        log(f"optuna.batch = {spec.batch}: this backend does not vectorise trials; they train one by one")
    one_by_one = repeats == 1 or not vectorizes() or any(e in TIMED for e in spec.extra)
    screen = None
    if spec.prescreen is not None:  # rounds of pre-screened trials, enqueued before they are asked
        from keras_bioact.search.optuna.prescreen import Prescreen

        batch = min(batch, spec.prescreen["train"])  # a batch never spans more than one round
        screen = Prescreen.from_spec(spec, data)
        screen.refill(study, batch, _remaining(spec.n_trials, study))
    if spec.data.get("folds") or (batch == 1 and one_by_one):  # folds: the objective's own loop
        objective = objective_lib.objective_from_spec(spec, data)
        after = on_trial
        if screen is not None:  # after each trial, i.e. before the next one is asked

            def after(st, trial):
                remaining = _remaining(spec.n_trials, st)
                if remaining is None or remaining > 0:
                    screen.refill(st, 1, remaining)
                if on_trial is not None:
                    on_trial(st, trial)

        return workers.run(study, objective, n_trials=spec.n_trials, timeout=spec.timeout, on_trial=after)
    objective = batch_objective_from_spec(spec, batch, data)
    return run_batches(
        study,
        objective,
        n_trials=spec.n_trials,
        timeout=spec.timeout,
        on_trial=on_trial,
        log=log,
        before_ask=None if screen is None else screen.refill,
    )


def _remaining(n_trials, study):
    """Trials still wanted of `study` to reach `n_trials` finished ones (None without `n_trials`)."""
    return None if n_trials is None else n_trials - workers.count_finished(study)


def batch_objective_from_spec(spec, batch=None, data=None):
    """The `BatchObjective` of a `SearchSpec` (batch: `batch_of(spec)` unless given), with the
    spec's one-by-one objective (`objective_from_spec`) for trials that cannot be vectorised."""
    data, build_model = objective_lib.data_and_builder(spec, data)
    return BatchObjective(
        build_model,
        data,
        space=spec.space,
        budget=spec.budget,
        metric=spec.metric,
        objectives=spec.extra,
        prune=spec.pruner.get("name", "none") != "none",
        batch=batch_of(spec) if batch is None else batch,
        objective=objective_lib.objective_from_spec(spec, data),
        baselines=spec.baselines,
    )
