"""Held-out scores: the best trial(s) of a search, retrained once and scored on the test split.

Trials are selected on the validation split (carved out of the training split); the test
split is never seen by the search. `score_on_test` retrains each selected trial with its own
parameters and seed (`budget.seed + trial.number`, as in the trial's first repeat; once, also
where trials were repeated or cross-validated) on the whole training
split, scores it on the test split, and stores the result in the study's user attribute
`test_scores` (`{trial number: {"metric", "value", ...}}`), so each trial is scored once, by
whichever of `bioact search` or `bioact show` gets there first.
"""

from __future__ import annotations

__all__ = ["protocol_line", "score_best", "score_on_test", "test_metric", "test_scores"]

ATTR = "test_scores"


def test_metric(metric):
    """The name under which `metric`'s test value is reported (`val_accuracy` -> `test_accuracy`)."""
    return "test_" + (metric[len("val_") :] if metric.startswith("val_") else metric)


def test_scores(study):
    """`{trial number: record}` of the trials scored on the test split so far."""
    return {int(k): v for k, v in dict(study.user_attrs.get(ATTR, {})).items()}


def _top(study, k):
    import math

    from optuna.trial import TrialState

    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and all(math.isfinite(v) for v in t.values)
    ]
    sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))[:k]


def score_on_test(spec, study, k=1, log=None):
    """Retrain the `k` best complete trials (by their first objective) once and score them on
    the test split; returns `test_scores(study)`. Trials already scored are not retrained."""
    import dataclasses

    import optuna

    from keras_bioact.search.data import load_splits, shape_and_classes
    from keras_bioact.search.models import model_builder
    from keras_bioact.search.optuna import objective as objective_lib

    scores = test_scores(study)
    todo = [t for t in _top(study, k) if t.number not in scores]
    if not todo:
        return scores
    splits = load_splits(spec)
    build = model_builder(spec, *shape_and_classes(splits))
    metric = spec.metric if spec.metric.startswith("val_") else "val_" + spec.metric
    objective = objective_lib.make_objective(
        build,
        (splits["train"], splits["test"]),
        space=spec.space,
        budget=dataclasses.replace(spec.budget, repeats=1),  # the trial's first seed, once
        metric=metric,
        prune=False,
    )
    for t in todo:
        if log:
            log(f"scoring trial {t.number} on the test split ({len(splits['test'][1])} samples) ...")
        fixed = optuna.trial.FixedTrial(dict(t.params), number=t.number)
        value = objective(fixed)
        scores[t.number] = {
            "metric": test_metric(spec.metric),
            "value": float(value),
            "validation": float(t.values[0]),
            "n_test": int(len(splits["test"][1])),
        }
        # re-read before writing: another process may have scored other trials meanwhile
        merged = {**{str(n): r for n, r in test_scores(study).items()}, str(t.number): scores[t.number]}
        study.set_user_attr(ATTR, merged)
    return test_scores(study)


def score_best(spec, study, log=print):
    """`score_on_test(spec, study, k=1)` where it applies (a single-objective study with a
    complete trial), as `bioact search` and `bioact show` do; returns None, or the message of
    the error that kept the best trial from being scored (its search results stay as they are)."""
    from optuna.trial import TrialState

    if len(study.directions) > 1 or not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    try:
        score_on_test(spec, study, k=1, log=log)
    except Exception as e:  # never lose the summary and the export over the held-out score
        return f"could not score the best trial on the test split: {type(e).__name__}: {e}"
    return None


def protocol_line(spec):
    """One line saying what was optimised and what the test scores are."""
    data = spec.data
    fraction = data.get("validation_fraction", 0.2)
    return (
        f"optimised: {spec.metric} on the validation split ({fraction:.0%} of {data['name']}'s "
        f"training split, seed {data.get('seed', 0)}); {test_metric(spec.metric)}: the held-out "
        "test split, scored once for the best trial (retrained with its own seed)"
    )
