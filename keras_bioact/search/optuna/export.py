"""Results of an Optuna study: its best trial and activation, its trials as rows (`trials.csv`,
`trials.json`), plots, TensorBoard HParams logs (`export`, one folder with all of them), and the
summary table that `bioact search` and `bioact show` print (`summary`)."""

from __future__ import annotations

import io
import json
import math
import pathlib

from keras_bioact._io import atomic_write
from keras_bioact.search.activation import Activation

__all__ = [
    "best_activation",
    "best_activation_config",
    "best_trial",
    "best_trials",
    "export_results",
    "MIN_IMPORTANCE_TRIALS",
    "export_trials",
    "format_table",
    "objective_names",
    "plot_groups",
    "pruning_line",
    "save_plots",
    "summary",
    "trial_rows",
]


def best_trial(study):
    """The best trial (the first Pareto-optimal one of a multi-objective study); `ValueError` if
    there is no complete trial yet."""
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
    trial = trial or best_trial(study)
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


def objective_names(study):
    """The names of the study's objectives, as the spec gives them (`val_accuracy`, ...): the
    study's `objective_names` user attribute, else `study.metric_names`, else `value`
    (`value_0`, `value_1`, ... for several objectives)."""
    n = len(study.directions)
    for names in (study.user_attrs.get("objective_names"), study.metric_names):
        if names and len(names) == n:
            return list(names)
    return ["value"] if n == 1 else [f"value_{i}" for i in range(n)]


_value_columns = objective_names


def test_columns(study):
    """`{trial number: {test metric name: value}}` of the trials scored on the test split (the
    verdict's arms: the mean over its seeds)."""
    from keras_bioact.search.optuna.holdout import test_scores

    return {n: {r["metric"]: r["value"]} for n, r in test_scores(study).items()}


def trial_rows(study):
    """One flat dict per trial (number, state, values named as the spec's objectives, the test
    score where scored (`test_accuracy`: the mean over the verdict's seeds, empty elsewhere),
    with a verdict: `verdict_arm` (`best`, `baseline`, empty) and `verdict_test_scores` (each
    seed's test score, JSON), family, params, `scores` (the value of each seed or fold: a list,
    written as JSON text in the CSV), `baseline` (whether the family is one of the study's
    baselines), compile and fit seconds, ...)."""
    from keras_bioact.search.optuna.holdout import test_scores

    rows = []
    columns = _value_columns(study)
    tests = test_columns(study)
    arms = test_scores(study)
    test_names = sorted({k for scores in tests.values() for k in scores})
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name}
        values = t.values or [None] * len(columns)
        for c, v in zip(columns, values, strict=False):
            row[c] = None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
        for name in test_names:
            row[name] = tests.get(t.number, {}).get(name)
        if arms:
            arm = arms.get(t.number, {})
            row["verdict_arm"] = arm.get("arm")
            row["verdict_test_scores"] = json.dumps(arm["scores"]) if arm else None
        row["family"] = (t.user_attrs.get("activation") or {}).get("family", t.params.get("family"))
        for k, v in sorted(t.params.items()):
            if k != "family":
                row[f"param_{k}"] = v
        row["scores"] = t.user_attrs.get("scores")
        row["baseline"] = bool(t.user_attrs.get("baseline", False))
        row["params"] = t.user_attrs.get("params")
        row["compile_seconds"] = t.user_attrs.get("compile_seconds")
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
        verdict = study.user_attrs.get("verdict")
        payload["verdict"] = verdict if isinstance(verdict, dict) else None
        atomic_write(path, json.dumps(payload, indent=2, default=str))
    elif path.suffix == ".csv":
        fields = []
        for r in rows:
            fields += [k for k in r if k not in fields]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(path, text.getvalue())
    else:
        raise ValueError(f"export_trials: use a .csv or .json path, got {path}")
    return path


MIN_IMPORTANCE_TRIALS = 10
"""Parameter importances are plotted from at least this many complete trials (and two
parameters); with fewer, fANOVA's ranking is noise and the plot is skipped with a note."""


def _family(trial):
    return trial.params.get("family", (trial.user_attrs.get("activation") or {}).get("family"))


def plot_groups(study):
    """`[(suffix, trials, params)]`: the groups of complete trials plotted together, each with
    the parameters that all its trials have (no conditional parameter shows up as "None"):
    all trials (suffix ""), and, when the study has several families, each family's trials
    with that family's parameters (suffix `_<family>`)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    complete = [t for t in complete if t.values and all(math.isfinite(v) for v in t.values)]

    def shared(trials, drop=()):
        if not trials:
            return []
        names = set.intersection(*(set(t.params) for t in trials)) - set(drop)
        return sorted(names, key=lambda k: (k != "family", k))

    groups = [("", complete, shared(complete))]
    families = sorted({_family(t) for t in complete} - {None})
    if len(families) > 1:
        for f in families:
            trials = [t for t in complete if _family(t) == f]
            params = shared(trials, drop=("family",))
            if params:
                groups.append((f"_{f}", trials, params))
    return groups


def _sub_study(study, trials):
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory"
    try:
        sub = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    sub.add_trials(trials)
    return sub


def save_plots(study, directory, png=True, log=print):
    """Save optimisation history, parameter importances and parallel coordinates as HTML
    (plotly; `plotly.min.js` is written into `directory`, so the pages work offline) and, with
    `png`, as PNG (matplotlib backend of `optuna.visualization`; plotly's static export needs a
    browser). The objective axis is named as in the spec (`val_accuracy`).

    The conditional parameters of a family (BRU's `form`, ...) are plotted among that family's
    trials only (`importance_<family>`, `parallel_coordinates_<family>`, see `plot_groups`);
    `importance` and `parallel_coordinates` show the parameters every trial has (`family`,
    `learning_rate`). An importance plot needs `MIN_IMPORTANCE_TRIALS` complete trials of its
    group and two parameters; otherwise it is skipped and the reason logged and written to
    `importance.txt`. Returns the written paths."""
    import warnings

    import optuna

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    name0 = _value_columns(study)[0]
    plots = [("history", "plot_optimization_history", study, None)]
    notes = []
    for suffix, trials, params in plot_groups(study):
        group = f"the {suffix[1:]} trials" if suffix else "all trials"
        sub = _sub_study(study, trials)
        if len(trials) < MIN_IMPORTANCE_TRIALS or len(params) < 2:
            notes.append(
                f"importance{suffix}: not plotted: {len(trials)} complete trials and {len(params)} "
                f"parameter(s) among {group}; importances need >= {MIN_IMPORTANCE_TRIALS} complete "
                "trials and >= 2 parameters"
            )
        else:
            plots.append((f"importance{suffix}", "plot_param_importances", sub, params))
        if params:
            plots.append((f"parallel_coordinates{suffix}", "plot_parallel_coordinate", sub, params))
    if multi:
        plots.append(("pareto_front", "plot_pareto_front", study, None))
    for note in notes:
        log(note)
    if notes:
        atomic_write(directory / "importance.txt", "\n".join(notes) + "\n")
        written.append(directory / "importance.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stem, fn_name, source, params in plots:
            kw = {} if params is None else {"params": params}
            if stem != "pareto_front":
                kw.update(target=target, target_name=name0)
            else:
                kw.update(target_names=_value_columns(study))
            try:
                fig = getattr(optuna.visualization, fn_name)(source, **kw)
                out = directory / f"{stem}.html"
                # plotly.min.js is written once next to the plots: they work offline
                atomic_write(out, fig.to_html(include_plotlyjs="directory"))
                if not (directory / "plotly.min.js").exists():
                    from plotly.offline import get_plotlyjs

                    atomic_write(directory / "plotly.min.js", get_plotlyjs())
                written.append(out)
            except (ValueError, RuntimeError, ZeroDivisionError) as e:
                log(f"skipped {stem}.html: {e}")
                continue
            if png:
                out = directory / f"{stem}.png"
                written += [out] if _save_png(fn_name, source, kw, out, log) else []
    return written


def _colorbar_clear_of_labels(fig, n_axes):
    """Widen a parallel-coordinates figure to its number of axes and move its colorbar right of
    the last axis' tick labels (Optuna puts it 0.1 axes widths away, over long category names)."""
    fig.set_size_inches(max(6.4, 1.3 * n_axes + 2.5), 4.8)
    main = fig.axes[0]
    bars = [a for a in fig.axes if a.get_position().bounds != main.get_position().bounds]
    if not bars:
        return
    renderer = fig.canvas.get_renderer()
    labels_end = max(a.get_tightbbox(renderer).x1 for a in fig.axes if a not in bars)
    x0 = fig.transFigure.inverted().transform((labels_end, 0))[0] + 0.02
    for bar in bars:
        _, y0, width, height = bar.get_position().bounds
        bar.set_position([x0, y0, width, height])


def _save_png(fn_name, study, kw, out, log):
    import matplotlib
    import optuna

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        ax = getattr(optuna.visualization.matplotlib, fn_name)(study, **kw)
    except (ValueError, RuntimeError, ZeroDivisionError) as e:
        log(f"skipped {out.name}: {e}")
        return None
    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    if fn_name == "plot_parallel_coordinate":
        _colorbar_clear_of_labels(fig, len(kw.get("params", ())) + 1)
    png_bytes = io.BytesIO()
    fig.savefig(png_bytes, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write(out, png_bytes.getvalue())
    return True


def format_table(rows, columns):
    """`rows` (dicts) as a text table of `columns` (floats to 4 digits, None as `-`)."""

    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def pruning_line(study):
    """What pruning saved, from the trials' epoch times; None without pruned trials.

    A pruned trial ran k of the E epochs of a complete trial; the epochs it did not run are
    priced at the study's mean epoch time (training plus validation)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    timed = [t for t in trials if t.user_attrs.get("epoch_seconds")]
    complete = [t for t in timed if t.state == TrialState.COMPLETE]
    pruned = [t for t in timed if t.state == TrialState.PRUNED]
    if not pruned or not complete:
        return None
    full = max(len(t.user_attrs["epoch_seconds"]) for t in complete)
    seconds = [x for t in timed for x in t.user_attrs["epoch_seconds"]]
    per_epoch = sum(seconds) / len(seconds)
    ran = [len(t.user_attrs["epoch_seconds"]) for t in pruned]
    saved = sum(full - k for k in ran) * per_epoch
    spent = sum(float(t.user_attrs.get("fit_seconds", 0.0)) for t in timed)
    cost = (sum(t.user_attrs.get("fit_seconds", 0.0) for t in pruned) / len(pruned)) / (
        sum(t.user_attrs.get("fit_seconds", 0.0) for t in complete) / len(complete)
    )
    return (
        f"pruning: {len(pruned)} of {len(timed)} trials stopped after {sum(ran) / len(ran):.1f} of {full} "
        f"epochs on average; a pruned trial cost {cost:.2f} of a complete one in fit time, saving about "
        f"{saved:.0f} s ({saved / (spent + saved):.0%} of the training time without pruning)"
    )


def summary(study, top=5, spec=None, log=print):
    """Print (with `log`) the study's trial counts and its `top` best trials as a table, with
    their test scores where scored, the protocol of `spec`, the verdict (stored in the study),
    what pruning saved and the best activation."""
    from collections import Counter

    from keras_bioact.search.optuna.holdout import protocol_line, stored_verdict, test_scores

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    log(
        f"\nstudy {study.study_name!r}: {len(trials)} trials ("
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + ")"
    )
    rows = best_trials(study, top)
    if not rows:
        log("no complete trial yet")
        return
    for r in rows:
        params = {k[len("param_") :]: v for k, v in r.items() if k.startswith("param_")}
        r["parameters"] = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
        )
    values = _value_columns(study)
    scores = test_scores(study)
    if scores:
        name = next(iter(scores.values()))["metric"]
        for r in rows:
            if r["number"] in scores:
                r[name] = scores[r["number"]]["value"]
        values = values[:1] + [name] + values[1:]
    columns = ["number"] + values + ["family", "params", "fit_seconds", "parameters"]
    log(format_table(rows, columns))
    if spec is not None:
        log(protocol_line(spec))
    verdict = stored_verdict(study)
    if verdict is not None:
        for line in verdict.lines():
            log(line)
    line = pruning_line(study)
    if line:
        log(line)
    try:
        log(f"best activation: {best_activation_config(study)}")
    except ValueError:
        pass


def export_results(study, directory, log=print):
    """Write `trials.csv`, `trials.json`, the plots and TensorBoard HParams logs (one session per
    trial with its training curves and, where scored, its test score: `tensorboard --logdir
    DIR/tensorboard`) to `directory`, and where the study has a verdict, `verdict.json` and its
    TensorBoard logs (`DIR/tensorboard/verdict`); returns the written paths."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = [export_trials(study, d / "trials.csv"), export_trials(study, d / "trials.json")]
    written += save_plots(study, d, log=log)
    from keras_bioact.callbacks import OptunaTensorBoardCallback

    OptunaTensorBoardCallback(d / "tensorboard", metric_name=_value_columns(study)).log_study(
        study, extra=test_columns(study)
    )
    written.append(d / "tensorboard")
    from keras_bioact.search import verdict as verdict_lib
    from keras_bioact.search.optuna.holdout import stored_verdict

    verdict = stored_verdict(study)
    if verdict is not None:
        written.append(verdict_lib.write_json(verdict, d))
        verdict_lib.write_tensorboard(verdict, d / "tensorboard")
    log("wrote " + ", ".join(str(p) for p in written))
    return written
