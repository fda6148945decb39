"""The verdict of a search, shared by both engines: does the best activation beat the best
baseline on the test split?

Trials (or solutions) are ranked on the validation split, so the winner's validation score is
biased upward (the maximum of many noisy draws). The verdict therefore retrains each arm, the
best activation and the best baseline, with the same `m` fresh seeds (`[budget] verdict_seeds`;
seed `i` is `verdict_seed(budget, i)` = `budget.seed + 1_000_000 + i`) on the training split and
scores each run once on the test split. `compare` turns the two lists of test scores into a
`Verdict`: each arm's mean and 95 % t-interval, the difference best - baseline with its 95 %
Welch interval (Welch-Satterthwaite df), the two-sided Welch p-value and one sentence.

Rule: the best activation *beats* the baseline when the 95 % interval of the difference excludes
0 on the better side (higher for a maximised metric such as accuracy, lower for a loss), which
is the same as a two-sided Welch p < 0.05 with the difference in the better direction; it is
*worse* when the interval excludes 0 on the other side, and *no better* otherwise. Accuracy
differences are given in percentage points (x 100); other metrics in their own units. The JSON
(`Verdict.to_dict`, `verdict.json`) keeps every number in the metric's own units.

Nothing here imports an engine, Keras or Optuna: the engines retrain the arms and call `compare`.
"""

from __future__ import annotations

import dataclasses
import json
import math

from keras_bioact import stats

__all__ = [
    "ALPHA",
    "SEED_OFFSET",
    "VERDICT_FILE",
    "Verdict",
    "compare",
    "label",
    "verdict_seed",
    "verdict_seeds",
    "write_json",
    "write_tensorboard",
]

ALPHA = 0.05
SEED_OFFSET = 1_000_000
"""Verdict seed `i` is `budget.seed + SEED_OFFSET + i` (modulo 2**32): far from the seeds of the
trials (`budget.seed + trial number`), so no verdict run repeats a trial's run."""
VERDICT_FILE = "verdict.json"


def verdict_seeds(budget):
    """The seeds of the verdict's retrainings: `[verdict_seed(budget, i) for i in range(m)]`
    with `m = budget.verdict_seeds` (empty when the verdict is off, `verdict_seeds = 0`)."""
    return [verdict_seed(budget, i) for i in range(int(getattr(budget, "verdict_seeds", 5)))]


def verdict_seed(budget, i):
    return (int(budget.seed) + SEED_OFFSET + int(i)) % 2**32


def label(config):
    """A short name of an activation configuration: the family, with its form or regime where
    it has one (`bru/oru`, `gamma/heterogeneous`, `gelu`)."""
    if isinstance(config, str):
        return config
    config = config or {}
    family = str(config.get("family", "?"))
    for key in ("form", "regime"):
        if config.get(key) is not None:
            return f"{family}/{config[key]}"
    return family


def _scale(metric):
    """(factor, unit) of differences of `metric`: accuracy in percentage points."""
    return (100.0, " points") if "acc" in metric.lower() else (1.0, "")


def _num(x, digits=2):
    return "nan" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _p(p):
    if p is None or not math.isfinite(p):
        return "p = nan"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


@dataclasses.dataclass
class Verdict:
    """The comparison of two arms retrained on the same seeds and scored on the test split.

    Attributes:
        best, baseline: labels of the arms (`"bru/oru"`, `"gelu"`); `baseline` is None when the
            search had no baseline (then only the best arm was retrained).
        metric: the test metric (`test_accuracy`, `test_loss`); direction: `"maximize"` or
            `"minimize"`.
        best_scores, baseline_scores: each seed's test score (None: diverged), in seed order.
        difference: mean(best) - mean(baseline); ci95: its 95 % Welch interval `[lo, hi]`;
            p_value: two-sided Welch p. All in the metric's units, None without a baseline.
        outcome: `"beats"`, `"no_better"`, `"worse"`, `"undecided"` (fewer than 2 finite
            scores in an arm), `"only_baselines"` (the best trial is a baseline and no other
            activation completed) or `"no_baseline"`.
        verdict: the one sentence.
        best_is_baseline: the search's best (by validation) is a baseline; `best` is then the
            best non-baseline activation, compared with it.
        seeds: the seeds of the retrainings (the same for both arms).
        best_mean, best_ci95, baseline_mean, baseline_ci95: each arm's mean and 95 % t-interval.
        best_trial, baseline_trial: the arms' Optuna trial numbers (None for evolution).
        best_validation, baseline_validation: the arms' validation scores in the search.
        n_test: test samples each run was scored on; protocol: what was done, in words.
    """

    best: str
    baseline: str | None
    metric: str
    direction: str
    best_scores: list
    baseline_scores: list | None
    difference: float | None
    ci95: list | None
    p_value: float | None
    outcome: str
    verdict: str
    best_is_baseline: bool = False
    seeds: list = dataclasses.field(default_factory=list)
    best_mean: float | None = None
    best_ci95: list | None = None
    baseline_mean: float | None = None
    baseline_ci95: list | None = None
    best_trial: int | None = None
    baseline_trial: int | None = None
    best_validation: float | None = None
    baseline_validation: float | None = None
    n_test: int | None = None
    protocol: str = ""

    def to_dict(self):
        """Plain JSON data (NaN written as None)."""
        return _clean(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data):
        """The `Verdict` of `to_dict`'s data (e.g. read back from a study or `verdict.json`);
        unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(data).items() if k in names})

    def lines(self):
        """The verdict as the summary prints it: each arm's test mean and interval, then the
        sentence."""
        factor, unit = _scale(self.metric)
        pct = " %" if unit else ""
        out = [f"verdict ({len(self.seeds)} fresh seeds per arm, each scored once on the test split):"]
        arms = [("best", self.best, self.best_mean, self.best_ci95, self.best_trial)]
        if self.baseline is not None and self.baseline_scores is not None:
            arms.append(
                ("baseline", self.baseline, self.baseline_mean, self.baseline_ci95, self.baseline_trial)
            )
        for role, name, mean, ci, trial in arms:
            where = f" (trial {trial})" if trial is not None else ""
            lo, hi = ci or (None, None)
            out.append(
                f"  {role:8s} {name}{where}: {self.metric} {_num(_mul(mean, factor))}{pct}, 95 % CI "
                f"[{_num(_mul(lo, factor))}, {_num(_mul(hi, factor))}]"
            )
        out.append("  " + self.verdict)
        return out


def _mul(x, factor):
    return None if x is None else x * factor


def _ci(lo, hi, factor):
    return f"95 % CI [{_num(_mul(lo, factor))}, {_num(_mul(hi, factor))}]"


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _none(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def compare(
    best,
    best_scores,
    baseline=None,
    baseline_scores=None,
    *,
    metric="test_accuracy",
    direction=None,
    seeds=(),
    best_is_baseline=False,
    **extra,
):
    """The `Verdict` of the test scores of two arms retrained on the same seeds.

    Args:
        best, best_scores: label of the best activation and its test score per seed.
        baseline, baseline_scores: the same for the best baseline; None when there is none.
        metric: the test metric's name; direction: `"maximize"` or `"minimize"` (default: from
            the name, losses and errors minimise).
        seeds: the seeds of the runs.
        best_is_baseline: the search's best was a baseline; `best` is then the best
            non-baseline activation (None with empty scores if no other activation completed).
        **extra: other `Verdict` fields (`best_trial`, `baseline_trial`, `best_validation`,
            `baseline_validation`, `n_test`, `protocol`).
    """
    from keras_bioact.search.metrics import direction_of

    direction = direction or direction_of(metric)
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"compare: `direction` must be 'maximize' or 'minimize', got {direction!r}")
    best_scores = [_none(v) for v in best_scores]
    baseline_scores = None if baseline_scores is None else [_none(v) for v in baseline_scores]
    factor, unit = _scale(metric)
    pct = " %" if unit else ""

    def arm(scores):
        if not scores:
            return None, None
        mean = stats.mean_std(scores)[0]
        return _none(mean), [_none(x) for x in stats.ci95(scores)]

    best_mean, best_ci = arm(best_scores)
    base_mean, base_ci = arm(baseline_scores)
    fields = dict(
        best=best, baseline=baseline, metric=metric, direction=direction, best_scores=best_scores,
        baseline_scores=baseline_scores, best_is_baseline=bool(best_is_baseline), seeds=list(seeds),
        best_mean=best_mean, best_ci95=best_ci, baseline_mean=base_mean, baseline_ci95=base_ci,
        difference=None, ci95=None, p_value=None, **extra,
    )  # fmt: skip

    if baseline is None or baseline_scores is None:
        lo, hi = best_ci or (None, None)
        score = f"{metric} {_num(_mul(best_mean, factor))}{pct}, {_ci(lo, hi, factor)}"
        if best_is_baseline:
            text = f"the best trial is a baseline ({best}): {score}; no other activation completed"
            return Verdict(outcome="only_baselines", verdict=text, **fields)
        text = f"no baseline to compare with (the search had none): {best} scores {score}"
        return Verdict(outcome="no_baseline", verdict=text, **fields)

    w = stats.welch(best_scores, baseline_scores)
    lo, hi = stats.welch_interval(best_scores, baseline_scores)
    diff, p = _none(w["diff"]), _none(w["p"])
    fields.update(difference=diff, ci95=[_none(lo), _none(hi)], p_value=p)
    who = (
        f"the best trial is a baseline ({baseline}); the best other activation, {best},"
        if best_is_baseline
        else best
    )
    numbers = f"difference {_num(_mul(diff, factor))}{unit}, {_ci(lo, hi, factor)}, {_p(p)}"
    if p is None or diff is None:
        outcome = "undecided"
        text = f"{who} vs {baseline}: no verdict, fewer than 2 finite test scores in an arm ({numbers})"
    else:
        better = diff > 0 if direction == "maximize" else diff < 0
        significant = p < ALPHA and diff != 0
        if significant and better:
            outcome = "beats"
            size = (
                f"{_num(abs(diff) * factor)}{unit}"
                if unit
                else f"{_num(abs(diff), 4)} {'higher' if diff > 0 else 'lower'} {metric}"
            )
            text = f"{who} beats {baseline} by {size}, {_ci(lo, hi, factor)}, {_p(p)}"
        elif significant:
            outcome = "worse"
            text = f"{who} is worse than {baseline}: {numbers}"
        else:
            outcome = "no_better"
            text = f"{who} is no better than {baseline}: {numbers}"
    return Verdict(outcome=outcome, verdict=text, **fields)


def write_json(verdict, directory):
    """Write `verdict.json` (`Verdict.to_dict`) to `directory`; returns its path."""
    import pathlib

    from keras_bioact._io import atomic_write

    path = pathlib.Path(directory) / VERDICT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(verdict.to_dict(), indent=2))
    return path


def write_tensorboard(verdict, directory):
    """TensorBoard logs of the verdict under `directory/verdict`: scalars `verdict/<arm>/<metric>`
    (step = the seed's index) and `verdict/difference`, `verdict/p_value`, and the summary as
    text (`verdict/summary`). Returns the folder, or None when `tensorboard` is not installed."""
    import pathlib

    try:
        from keras_bioact.callbacks.summary_writer import SummaryWriter
    except ImportError:  # pragma: no cover - an optional extra
        return None
    path = pathlib.Path(directory) / "verdict"
    try:
        writer = SummaryWriter(str(path), filename_suffix=".verdict")
    except ImportError:  # pragma: no cover
        return None
    with writer:
        for role, scores in (("best", verdict.best_scores), ("baseline", verdict.baseline_scores)):
            for i, value in enumerate(scores or []):
                if value is not None:
                    writer.scalar(f"verdict/{role}/{verdict.metric}", value, i)
        for name in ("difference", "p_value"):
            value = getattr(verdict, name)
            if value is not None:
                writer.scalar(f"verdict/{name}", value, 0)
        writer.text("verdict/summary", "\n\n".join(verdict.lines()), 0)
    return path
