"""What `bioact search` and `bioact show` print and export about a study."""

from __future__ import annotations

import sys


def format_table(rows, columns):
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


def score_on_test(spec, study):
    from keras_bioact.search import holdout

    if len(study.directions) > 1 or count_complete(study) == 0:
        return
    try:
        holdout.score_on_test(spec, study, k=1, log=print)
    except Exception as e:  # never lose the summary over the held-out score
        print(f"could not score the best trial on the test split: {type(e).__name__}: {e}", file=sys.stderr)


def count_complete(study):
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


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


def summary(study, top, spec=None):
    from collections import Counter

    from keras_bioact.search.holdout import protocol_line, test_scores
    from keras_bioact.search.study import _value_columns, best_activation_config, best_trials

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    print(
        f"\nstudy {study.study_name!r}: {len(trials)} trials ("
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + ")"
    )
    rows = best_trials(study, top)
    if not rows:
        print("no complete trial yet")
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
    print(format_table(rows, columns))
    if spec is not None:
        print(protocol_line(spec))
    line = pruning_line(study)
    if line:
        print(line)
    try:
        print(f"best activation: {best_activation_config(study)}")
    except ValueError:
        pass


def export(study, directory):
    import pathlib

    from keras_bioact.search.study import export_trials, save_plots

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = [export_trials(study, d / "trials.csv"), export_trials(study, d / "trials.json")]
    written += save_plots(study, d)
    from keras_bioact.callbacks import OptunaTensorBoardCallback

    # One HParams session per trial (all workers and resumed runs): tensorboard --logdir DIR/tensorboard
    OptunaTensorBoardCallback(d / "tensorboard").log_study(study)
    written.append(d / "tensorboard")
    print("wrote " + ", ".join(str(p) for p in written))
