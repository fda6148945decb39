import os

from keras_bioact.callbacks.hparams_logger import HParamsLogger

__all__ = ["OptunaTensorBoardCallback"]


class OptunaTensorBoardCallback:
    """An Optuna study callback writing every finished trial to TensorBoard's HParams dashboard.

    ```python
    cb = OptunaTensorBoardCallback("logs/search", metric_name="val_accuracy")
    study.optimize(objective, n_trials=50, callbacks=[cb])
    ```
    Each finished trial becomes the run `log_dir/trial_<number>` with its parameters
    (`trial.params`) as hyper-parameters and its objective value(s) as metrics; its intermediate
    values (`trial.report`) are written as the scalar `intermediate_value` over steps; numeric
    `trial.user_attrs` are written as metrics too (e.g. parameter counts, fit seconds). A
    per-epoch Keras history in the user attribute `history` (`{"loss": [...], "val_loss": [...],
    ...}`, as `keras_bioact.search.make_objective` stores it) becomes the scalars
    `epoch/<key>` at steps 0, 1, ... (the trial's training and validation curves).
    Trial state maps to the session status: COMPLETE -> success, FAIL -> failure, PRUNED ->
    unknown (TensorBoard has no "pruned" status; the metric `pruned` = 1 tells pruned trials apart).
    A pruned trial's last intermediate value is written as `<metric>_at_pruning` (with
    `pruned_at_step`), never under the objective's name, so sorting by the objective ranks
    complete trials only.

    Unlike `optuna_integration.TensorBoardCallback` it needs no TensorFlow (it writes through
    `keras_bioact.callbacks.SummaryWriter`). A trial is never written twice, and
    `log_study(study)` writes all finished trials not yet on disk, e.g. after resuming an
    interrupted study from its storage.

    Args:
        log_dir: root directory of the TensorBoard logs of the search.
        metric_name: name of the objective value metric (a string), or a list of names for a
            multi-objective study. Default `"value"` (`"value_0"`, `"value_1"`, ... when
            multi-objective).
        user_attrs: also write numeric user attributes as metrics. Default True.
        run_prefix: prefix of the run directory names. Default `"trial_"`.
    """

    def __init__(self, log_dir, metric_name="value", user_attrs=True, run_prefix="trial_"):
        self.log_dir = os.fspath(log_dir)
        if isinstance(metric_name, str):
            metric_name = [metric_name]
        metric_name = list(metric_name)
        if not metric_name or not all(isinstance(m, str) and m for m in metric_name):
            raise ValueError(
                f"OptunaTensorBoardCallback: `metric_name` must be a non-empty string or list of "
                f"strings, got {metric_name!r}."
            )
        self.metric_names = metric_name
        self.user_attrs = bool(user_attrs)
        self.run_prefix = str(run_prefix)
        self.logger = HParamsLogger(self.log_dir)

    def run_name(self, trial):
        return f"{self.run_prefix}{trial.number:05d}"

    def __call__(self, study, trial):
        self.log_trial(trial)

    def log_study(self, study, extra=None):
        """Write every finished trial of `study` that is not on disk yet, and `extra`
        (`{trial number: {tag: value}}`, e.g. test scores) that is not; returns how many trials
        were written."""
        extra = extra or {}
        return sum(
            self.log_trial(t, extra.get(t.number)) is not None for t in study.get_trials(deepcopy=False)
        )

    def log_trial(self, trial, extra=None):
        """Write one (finished) `optuna.trial.FrozenTrial`; returns its run dir or None if it was
        on disk already. `extra` (`{tag: value}`, e.g. `{"test_accuracy": 0.91}`, known only
        after the trial) is written once into the trial's run as well, in a file of its own
        (suffix `.extra`), also when the session itself is on disk already."""
        state = trial.state.name
        if state not in ("COMPLETE", "PRUNED", "FAIL"):
            return None
        if extra:
            self._log_extra(trial, extra)
        metrics = {}
        # Optuna gives a pruned trial its last intermediate value as value: not a final value
        values = (trial.values or []) if state != "PRUNED" else []
        if len(values) == 1 and len(self.metric_names) == 1:
            metrics[self.metric_names[0]] = values[0]
        else:
            for i, v in enumerate(values):
                name = self.metric_names[i] if i < len(self.metric_names) else f"value_{i}"
                if len(self.metric_names) == 1 and len(values) > 1:
                    name = f"{self.metric_names[0]}_{i}"
                metrics[name] = v
        if state == "PRUNED" and trial.intermediate_values:
            # not under the objective's own name: a value at pruning time would sort in among
            # the complete trials' final values
            last = max(trial.intermediate_values)
            metrics[f"{self.metric_names[0]}_at_pruning"] = trial.intermediate_values[last]
            metrics["pruned_at_step"] = float(last)
        metrics["pruned"] = 1.0 if state == "PRUNED" else 0.0
        if self.user_attrs:
            for key, v in trial.user_attrs.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    metrics.setdefault(f"user_attrs/{key}", v)
        series = {step: {"intermediate_value": v} for step, v in trial.intermediate_values.items()}
        history = trial.user_attrs.get("history")
        for key, values in history.items() if isinstance(history, dict) else ():
            for epoch, v in enumerate(values if isinstance(values, list) else ()):
                series.setdefault(epoch, {})[f"epoch/{key}"] = v
        status = {"COMPLETE": "success", "FAIL": "failure", "PRUNED": "unknown"}[state]
        start = trial.datetime_start.timestamp() if trial.datetime_start else None
        end = trial.datetime_complete.timestamp() if trial.datetime_complete else None
        step = max(trial.intermediate_values) if trial.intermediate_values else 0
        return self.logger.log_session(
            self.run_name(trial),
            dict(trial.params),
            metrics,
            status=status,
            step=step,
            series=series,
            start_time_secs=start,
            end_time_secs=end,
        )

    def _log_extra(self, trial, extra):
        from keras_bioact.callbacks.summary_writer import SummaryWriter

        path = self.logger.run_dir(self.run_name(trial))
        if os.path.isdir(path) and any(f.endswith(".extra") for f in os.listdir(path)):
            return
        step = max(trial.intermediate_values) if trial.intermediate_values else 0
        with SummaryWriter(path, filename_suffix=".extra") as writer:
            writer.write(int(step), scalars={str(k): float(v) for k, v in extra.items()})
