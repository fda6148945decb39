"""The verdict of an Optuna study: its best trial and its best baseline, each retrained with the
same fresh seeds and scored once on the test split (`keras_bioact.search.verdict`).

Trials are selected on the validation split (carved out of the training split); the test split
is never seen by the search. `study_verdict` retrains the arms with their own parameters (and
learning rate), with seeds `budget.seed + 1_000_000 + i` for `i < budget.verdict_seeds`, on the
same training split as the trials, scores each run once on the test split (the model is
evaluated on it after the last epoch only), and stores the `Verdict`'s data in the study's user
attribute `verdict`: `bioact show` prints it without retraining, and retrains only when it is
missing or stale (the best trial, the best baseline or the seeds changed, e.g. after more
trials). `test_scores(study)` gives the scored trials' test scores from it.
"""

from __future__ import annotations

import dataclasses
import math

from keras_bioact.search import verdict as verdict_lib

__all__ = [
    "ATTR",
    "best_baseline_trial",
    "best_trial",
    "protocol_line",
    "retrain_on_test",
    "score_best",
    "stored_verdict",
    "study_verdict",
    "test_metric",
    "test_scores",
]

ATTR = "verdict"


def test_metric(metric):
    """The name under which `metric`'s test value is reported (`val_accuracy` -> `test_accuracy`)."""
    return "test_" + (metric[len("val_") :] if metric.startswith("val_") else metric)


def stored_verdict(study):
    """The `Verdict` stored in the study, or None."""
    data = study.user_attrs.get(ATTR)
    return verdict_lib.Verdict.from_dict(data) if isinstance(data, dict) else None


def test_scores(study):
    """`{trial number: {"metric", "value" (mean), "scores", "seeds", "validation", "n_test",
    "arm"}}` of the trials the stored verdict scored on the test split."""
    v = stored_verdict(study)
    if v is None:
        return {}
    out = {}
    for arm, number, scores, mean, validation in (
        ("baseline", v.baseline_trial, v.baseline_scores, v.baseline_mean, v.baseline_validation),
        ("best", v.best_trial, v.best_scores, v.best_mean, v.best_validation),
    ):
        if number is not None and scores:
            out[int(number)] = {
                "metric": v.metric, "value": mean, "scores": list(scores), "seeds": list(v.seeds),
                "validation": validation, "n_test": v.n_test, "arm": arm,
            }  # fmt: skip
    return out


def _family(trial):
    return (trial.user_attrs.get("activation") or {}).get("family", trial.params.get("family"))


def _ranked(study, keep):
    from optuna.trial import TrialState

    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and all(math.isfinite(v) for v in t.values) and keep(t)
    ]
    sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


def best_trial(study, exclude=()):
    """The best complete trial by the study's (first) metric on validation whose family is not
    in `exclude`; ties go to the earlier trial; None if there is none."""
    ranked = _ranked(study, lambda t: _family(t) not in exclude)
    return ranked[0] if ranked else None


def best_baseline_trial(study, spec=None):
    """The best complete trial (validation) whose family is a baseline: one of `spec.baselines`,
    or, without a spec, a trial marked `baseline` by the objective; ties go to the earlier trial;
    None if there is none."""
    if spec is not None:
        names = tuple(spec.baselines)
        ranked = _ranked(study, lambda t: _family(t) in names)
    else:
        ranked = _ranked(study, lambda t: bool(t.user_attrs.get("baseline")))
    return ranked[0] if ranked else None


def retrain_on_test(spec, params, seeds, splits=None, log=None, name="trial"):
    """Test scores of the trial parameters `params` retrained once per seed in `seeds` on the
    training split (as the trial trained: same model, activation, learning rate, budget) and
    scored once, after the last epoch, on the test split; None for a diverged run."""
    import optuna

    from keras_bioact.search.data import load_splits, shape_and_classes
    from keras_bioact.search.models import model_builder
    from keras_bioact.search.optuna import objective as objective_lib

    splits = splits or load_splits(spec)
    budget = spec.budget
    if hasattr(budget, "repeats"):  # one run per verdict seed, whatever the trials' repeats
        budget = dataclasses.replace(budget, repeats=1)
    metric = spec.metric if spec.metric.startswith("val_") else "val_" + spec.metric
    objective = objective_lib.make_objective(
        model_builder(spec, *shape_and_classes(splits)),
        (splits["train"], splits["test"]),
        space=spec.space,
        budget=budget,
        metric=metric,
        prune=False,
        validation_freq=budget.epochs,  # the test split is evaluated once, after the last epoch
    )
    scores = []
    for i, seed in enumerate(seeds):
        if log:
            log(f"verdict: {name}, seed {i + 1}/{len(seeds)} ({seed}) ...")
        # the objective trains with seed `budget.seed + trial.number`
        number = (int(seed) - int(budget.seed)) % 2**32
        value = objective(optuna.trial.FixedTrial(dict(params), number=number))
        scores.append(float(value) if math.isfinite(value) else None)
    return scores


def study_verdict(spec, study, log=None, recompute=False):
    """The `Verdict` of a finished single-objective study (see the module docstring): the
    stored one when it is for the same arms and seeds (unless `recompute`), else retrained and
    stored. None when there is nothing to judge (no complete trial, a multi-objective study, or
    `budget.verdict_seeds = 0`)."""
    if len(study.directions) > 1:
        return None
    seeds = verdict_lib.verdict_seeds(spec.budget)
    if not seeds:
        return None
    baselines = tuple(spec.baselines)
    top = best_trial(study)
    if top is None:
        return None
    best_is_baseline = _family(top) in baselines
    best = best_trial(study, exclude=baselines) if best_is_baseline else top
    base = best_baseline_trial(study, spec)
    if best is None:  # only baselines completed: the best is one, nothing else to compare
        best, base = top, None
    arms = (getattr(best, "number", None), getattr(base, "number", None))
    stored = stored_verdict(study)
    if (
        not recompute
        and stored is not None
        and (stored.best_trial, stored.baseline_trial) == arms
        and list(stored.seeds) == seeds
    ):
        return stored
    from keras_bioact.search.data import load_splits

    splits = load_splits(spec)
    n_test = int(len(splits["test"][1]))
    if log:
        log(
            f"verdict: retraining the best trial and the best baseline with {len(seeds)} fresh seeds "
            f"each, scored once on the test split ({n_test} samples) ..."
        )

    def name_of(trial):
        return verdict_lib.label(trial.user_attrs.get("activation") or _family(trial))

    def run(trial):
        if trial is None:
            return None
        return retrain_on_test(
            spec, trial.params, seeds, splits, log, f"trial {trial.number} ({name_of(trial)})"
        )

    v = verdict_lib.compare(
        name_of(best),
        run(best),
        None if base is None else name_of(base),
        run(base),
        metric=test_metric(spec.metric),
        direction=study.directions[0].name.lower(),
        seeds=seeds,
        best_is_baseline=best_is_baseline,
        best_trial=best.number,
        baseline_trial=None if base is None else base.number,
        best_validation=float(best.values[0]),
        baseline_validation=None if base is None else float(base.values[0]),
        n_test=n_test,
        protocol=protocol_line(spec),
    )
    study.set_user_attr(ATTR, v.to_dict())
    return v


def score_best(spec, study, log=print, recompute=False):
    """`(verdict, error)`: `study_verdict(spec, study)`, or None and the message of the error
    that kept it from being computed (the search results stay as they are)."""
    try:
        return study_verdict(spec, study, log=log, recompute=recompute), None
    except Exception as e:  # never lose the summary and the export over the verdict
        return None, f"could not compute the verdict on the test split: {type(e).__name__}: {e}"


def protocol_line(spec):
    """One line saying what was optimised and what the test scores are."""
    data = spec.data
    fraction = data.get("validation_fraction", 0.2)
    m = getattr(spec.budget, "verdict_seeds", 5)
    scored = (
        f"the held-out test split, scored once per run of the verdict (the best trial and the best "
        f"baseline, each retrained with {m} fresh seeds)"
        if m
        else "not scored (budget.verdict_seeds = 0)"
    )
    return (
        f"optimised: {spec.metric} on the validation split ({fraction:.0%} of {data['name']}'s "
        f"training split, seed {data.get('seed', 0)}); {test_metric(spec.metric)}: {scored}"
    )
