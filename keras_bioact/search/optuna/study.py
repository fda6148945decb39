"""Studies: storage, samplers, pruners, running workers, resuming, and results."""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import socket

from keras_bioact.search.activation import Activation
from keras_bioact.search.schema import PRUNERS, SAMPLERS
from keras_bioact.search.storage import DEFAULT_HEARTBEAT, StorageError, default_storage, open_storage

__all__ = [
    "DEFAULT_HEARTBEAT",
    "SAMPLERS",
    "PRUNERS",
    "StorageError",
    "best_activation",
    "best_activation_config",
    "best_trials",
    "count_finished",
    "create_study",
    "default_storage",
    "export_trials",
    "load_study",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "recover_dead_trials",
    "run",
    "save_plots",
]


def make_sampler(name="tpe", seed=None, **options):
    """`tpe` (default), `cmaes`, `random` or `nsga2` (multi-objective)."""
    import optuna

    name = name.lower()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **options)
    if name == "cmaes":
        options.setdefault("warn_independent_sampling", False)
        return optuna.samplers.CmaEsSampler(seed=seed, **options)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **options)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **options)
    raise ValueError(f"unknown sampler {name!r}; legal: {', '.join(SAMPLERS)}")


def make_pruner(name="median", **options):
    """`median` (default), `hyperband` or `none`."""
    import optuna

    name = (name or "none").lower()
    if name == "median":
        return optuna.pruners.MedianPruner(**options)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**options)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; legal: {', '.join(PRUNERS)}")


def create_study(study_name, storage, directions=("maximize",), sampler=None, pruner=None):
    """Create the study, or load it when it exists with the same directions.

    Call this ONCE before starting workers: concurrent creation of a fresh SQLite study races
    ("table studies already exists"). Workers then call `load_study`.
    """
    import optuna

    storage = open_storage(storage) if isinstance(storage, str) else storage
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        directions=list(directions),
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    have = [d.name.lower() for d in study.directions]
    if have != [d.lower() for d in directions]:
        raise ValueError(
            f"study {study_name!r} exists with directions {have}, but the specification asks for "
            f"{list(directions)}; use another study name"
        )
    return study


def load_study(study_name, storage, sampler=None, pruner=None):
    import optuna

    storage = open_storage(storage) if isinstance(storage, str) else storage
    return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)


def _counted(trial):
    import optuna

    state = trial.state
    if state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
        return True
    return (
        state == optuna.trial.TrialState.FAIL
        and "failure_reason" in trial.user_attrs
        and not trial.user_attrs.get("stale", False)
    )


def count_finished(study):
    """Trials that count towards `n_trials`: complete, pruned, and failed by divergence
    (trials of killed workers do not count: their parameters are re-queued)."""
    return sum(_counted(t) for t in study.get_trials(deepcopy=False))


# A RUNNING trial with no `worker` attribute this many seconds after it started is an orphan.
ORPHAN_GRACE = 60


def _alive(worker):
    if not isinstance(worker, dict) or worker.get("host") != socket.gethostname():
        return None  # unknown: another machine (the RDB heartbeat handles those)
    pid = worker.get("pid")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    from keras_bioact.search.objective import _proc_start_time

    if _zombie(pid):
        return False  # killed and not yet reaped by its parent: dead
    start = worker.get("start")
    return start is None or _proc_start_time(pid) == start


def _zombie(pid):
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError, ValueError):
        return False


def recover_dead_trials(study, requeue=True):
    """Fail RUNNING trials whose worker died, and re-queue their parameters.

    A trial is dead when its worker process (recorded in the `worker` user attribute) ran on
    this host and no longer exists (e.g. killed with SIGKILL), when it has no `worker` attribute
    `ORPHAN_GRACE` (60) seconds after it started (its worker was killed between creating it and
    recording itself), or, on RDB storages, when its heartbeat is stale
    (`optuna.storages.fail_stale_trials`; this covers other machines). Failed trials get
    `failure_reason` and `stale = True`; their parameters are enqueued so the configuration is
    retried. Returns the numbers of the trials failed.
    """
    import optuna
    from optuna.trial import TrialState

    failed = []
    storage = study._storage
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if _alive(worker) is False:
            reason = f"worker {worker.get('host')}:{worker.get('pid')} died mid-trial; failed on resume"
        elif worker is None and t.datetime_start and (now - t.datetime_start).total_seconds() > ORPHAN_GRACE:
            # a worker records its identity first thing in a trial; one that has none after
            # ORPHAN_GRACE seconds was killed in the moment between creating it and recording
            reason = f"no worker recorded itself within {ORPHAN_GRACE} s (killed at the trial's start)"
        else:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "failure_reason", reason)
            storage.set_trial_user_attr(t._trial_id, "stale", True)
            if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                failed.append(t)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number not in before and t.number not in {f.number for f in failed}:
            try:
                storage.set_trial_user_attr(
                    t._trial_id, "failure_reason", "stale heartbeat; failed on resume"
                )
                storage.set_trial_user_attr(t._trial_id, "stale", True)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass
            failed.append(t)
    if requeue and failed:
        retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
        for t in failed:
            # A re-queued trial killed before its objective asked for the parameters has none
            # yet; its enqueued ones (`fixed_params`) keep the retry chain going.
            params = t.params or t.system_attrs.get("fixed_params") or {}
            if params and t.number not in retried:
                study.enqueue_trial(params, user_attrs={"retry_of": t.number})
    return [t.number for t in failed]


class _StopAt:
    def __init__(self, n_trials, on_trial=None):
        self.n_trials = n_trials
        self.on_trial = on_trial

    def __call__(self, study, trial):
        if self.on_trial is not None:
            self.on_trial(study, trial)
        if self.n_trials is not None and count_finished(study) >= self.n_trials:
            study.stop()


def run(study, objective, n_trials=None, timeout=None, on_trial=None):
    """Run this process as one worker until the study has `n_trials` finished trials (counted
    over all workers, see `count_finished`) or `timeout` seconds pass. Re-running continues
    the same study. `on_trial(study, frozen_trial)` is called after each trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    recover_dead_trials(study)
    remaining = None if n_trials is None else n_trials - count_finished(study)
    if remaining is not None and remaining <= 0:
        return study
    study.optimize(
        objective,
        n_trials=remaining,
        timeout=timeout,
        callbacks=[_StopAt(n_trials, on_trial)],
        gc_after_trial=True,
    )
    return study


# ---------------------------------------------------------------------------------- results
def _best(study):
    import optuna

    if len(study.directions) > 1:
        trials = study.best_trials
        if not trials:
            raise ValueError(f"study {study.study_name!r} has no complete trial yet")
        return trials[0]
    try:
        return study.best_trial
    except ValueError as e:
        raise ValueError(f"study {study.study_name!r} has no complete trial yet") from e
    except optuna.exceptions.OptunaError:  # pragma: no cover
        raise


def best_activation_config(study, trial=None):
    """The activation configuration (dict) of the best trial (first Pareto trial for
    multi-objective studies), or of `trial`."""
    trial = trial or _best(study)
    config = trial.user_attrs.get("activation")
    if config is None:
        raise ValueError(
            f"trial {trial.number} has no `activation` user attribute (not a keras-bioact trial)"
        )
    return config


def best_activation(study, index=0, trial=None):
    """The best trial's activation as a ready-to-use Keras layer for activation site `index`
    (the family's unit: a `GammaActivation`, `BRU`, `keras.layers.Activation`, ...; see
    `keras_bioact.families`). For families whose nonlinearity lives inside the Dense layer
    (`two_arg`), this is the configured shared inner network (`InnerNonlinearity`); use
    `Activation(best_activation_config(study)).dense(units)` for whole blocks."""
    return Activation(best_activation_config(study, trial)).unit(index)


def _value_columns(study):
    names = study.user_attrs.get("objective_names")
    if names and len(names) == len(study.directions):
        return list(names)
    return ["value"] if len(study.directions) == 1 else [f"value_{i}" for i in range(len(study.directions))]


def trial_rows(study):
    """One flat dict per trial (number, state, values, family, params, fit seconds, ...)."""
    rows = []
    columns = _value_columns(study)
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name}
        values = t.values or [None] * len(columns)
        for c, v in zip(columns, values, strict=False):
            row[c] = None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
        row["family"] = (t.user_attrs.get("activation") or {}).get("family", t.params.get("family"))
        for k, v in sorted(t.params.items()):
            if k != "family":
                row[f"param_{k}"] = v
        row["params"] = t.user_attrs.get("params")
        row["fit_seconds"] = t.user_attrs.get("fit_seconds")
        row["duration_seconds"] = t.duration.total_seconds() if t.duration is not None else None
        row["failure_reason"] = t.user_attrs.get("failure_reason")
        row["activation"] = json.dumps(t.user_attrs.get("activation"), sort_keys=True)
        rows.append(row)
    return rows


def best_trials(study, k=10):
    """Rows (see `trial_rows`) of the `k` best complete trials, best first (Pareto-optimal
    trials for multi-objective studies)."""
    import optuna

    rows = {r["number"]: r for r in trial_rows(study)}
    if len(study.directions) > 1:
        chosen = [t.number for t in study.best_trials]
    else:
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        complete = [t for t in complete if t.value is not None and math.isfinite(t.value)]
        reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
        chosen = [t.number for t in sorted(complete, key=lambda t: t.value, reverse=reverse)]
    return [rows[n] for n in chosen[:k]]


def export_trials(study, path):
    """Write every trial to `path` as CSV (`.csv`) or JSON (`.json`)."""
    import csv

    path = pathlib.Path(path)
    rows = trial_rows(study)
    if path.suffix == ".json":
        payload = {
            "study": study.study_name,
            "directions": [d.name.lower() for d in study.directions],
            "objectives": _value_columns(study),
            "trials": rows,
        }
        try:
            payload["best_activation"] = best_activation_config(study)
        except ValueError:
            payload["best_activation"] = None
        path.write_text(json.dumps(payload, indent=2, default=str))
    elif path.suffix == ".csv":
        fields = []
        for r in rows:
            fields += [k for k in r if k not in fields]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"export_trials: use a .csv or .json path, got {path}")
    return path


def save_plots(study, directory, png=True):
    """Save optimisation history, parameter importances and parallel coordinates as HTML
    (plotly; `plotly.min.js` is written into `directory`, so the pages work offline) and, with
    `png`, as PNG (matplotlib backend of `optuna.visualization`; plotly's static export needs a
    browser). Returns the written paths. Plots that need more trials than the study has
    (importance needs >= 2 complete trials) are skipped."""
    import warnings

    import optuna

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    name0 = _value_columns(study)[0]
    plots = {
        "history": ("plot_optimization_history", {}),
        "importance": ("plot_param_importances", {}),
        "parallel_coordinates": ("plot_parallel_coordinate", {}),
    }
    if multi:
        plots["pareto_front"] = ("plot_pareto_front", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stem, (fn_name, kwargs) in plots.items():
            kw = dict(kwargs)
            if multi and stem != "pareto_front":
                kw.update(target=target, target_name=name0)
            try:
                fig = getattr(optuna.visualization, fn_name)(study, **kw)
                out = directory / f"{stem}.html"
                # plotly.min.js is written once next to the plots: they work offline
                fig.write_html(str(out), include_plotlyjs="directory")
                written.append(out)
            except (ValueError, RuntimeError, ZeroDivisionError) as e:
                print(f"skipped {stem}.html: {e}")
                continue
            if png:
                import matplotlib

                matplotlib.use("Agg")
                import matplotlib.pyplot as plt

                try:
                    ax = getattr(optuna.visualization.matplotlib, fn_name)(study, **kw)
                    fig_m = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
                    out = directory / f"{stem}.png"
                    fig_m.savefig(out, dpi=100, bbox_inches="tight")
                    plt.close(fig_m)
                    written.append(out)
                except (ValueError, RuntimeError, ZeroDivisionError) as e:
                    print(f"skipped {stem}.png: {e}")
    return written
