"""The verdict's statistics and sentences (`keras_bioact.search.verdict`, `stats.welch_interval`)
against known answers: scipy where installed, closed forms otherwise."""

import json
import math

import pytest

from keras_bioact import stats
from keras_bioact.search import verdict as verdict_lib
from keras_bioact.search.spec import SpecError, parse_spec

pytestmark = pytest.mark.single_backend

KEYS = {
    "best",
    "baseline",
    "metric",
    "best_scores",
    "baseline_scores",
    "difference",
    "ci95",
    "p_value",
    "verdict",
}


def test_welch_interval_closed_form():
    # a = [1, 2, 3] (var 1), b = [4, 6, 8] (var 4): se^2 = 1/3 + 4/3, df = (5/3)^2 / (17/18)
    lo, hi = stats.welch_interval([1, 2, 3], [4, 6, 8])
    df = (5 / 3) ** 2 / (17 / 18)
    half = stats.t_ppf(0.975, df) * math.sqrt(5 / 3)
    assert (lo, hi) == pytest.approx((-4 - half, -4 + half), rel=1e-12)
    # equal sizes and variances: df = 2n - 2, the pooled interval; t(0.975, 4) = 2.776
    lo, hi = stats.welch_interval([1, 2, 3], [2, 3, 4])
    assert (lo, hi) == pytest.approx((-1 - 2.7764451 * math.sqrt(2 / 3), -1 + 2.7764451 * math.sqrt(2 / 3)))
    assert stats.welch_interval([1.0, 1.0], [0.5, 0.5]) == (0.5, 0.5)
    assert all(map(math.isnan, stats.welch_interval([1.0], [1.0, 2.0])))


def test_welch_interval_and_p_against_scipy():
    sp = pytest.importorskip("scipy.stats")
    import numpy as np

    rng = np.random.default_rng(4)
    for n_a, n_b in ((2, 5), (5, 5), (3, 9)):
        a, b = rng.normal(0.85, 0.01, n_a), rng.normal(0.84, 0.03, n_b)
        ref = sp.ttest_ind(a, b, equal_var=False)
        va, vb = a.var(ddof=1) / n_a, b.var(ddof=1) / n_b
        df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
        half = sp.t.ppf(0.975, df) * math.sqrt(va + vb)
        diff = a.mean() - b.mean()
        assert stats.welch_interval(a, b) == pytest.approx((diff - half, diff + half), rel=1e-9)
        v = verdict_lib.compare("x", list(a), "gelu", list(b), metric="test_accuracy")
        assert v.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert v.difference == pytest.approx(diff, rel=1e-12)
        if hasattr(ref, "confidence_interval"):  # scipy >= 1.11
            ci = ref.confidence_interval(0.95)
            assert v.ci95 == pytest.approx([ci.low, ci.high], rel=1e-9)
        # the rule: beats <=> the interval excludes 0 on the better side <=> p < 0.05 and diff > 0
        assert (v.outcome == "beats") == (v.ci95[0] > 0) == (ref.pvalue < 0.05 and diff > 0)


def test_sentence_beats_in_points():
    v = verdict_lib.compare(
        "bru/oru", [0.870, 0.872, 0.871, 0.869, 0.873], "gelu", [0.860, 0.861, 0.862, 0.859, 0.863],
        metric="test_accuracy", seeds=[1, 2, 3, 4, 5],
    )  # fmt: skip
    assert v.outcome == "beats" and v.direction == "maximize"
    assert v.verdict.startswith("bru/oru beats gelu by 1.00 points, 95 % CI [")
    assert v.difference == pytest.approx(0.01) and v.p_value < 0.001
    assert v.best_mean == pytest.approx(0.871) and v.best_ci95[0] < 0.871 < v.best_ci95[1]
    assert any("best     bru/oru: test_accuracy 87.10 %" in line for line in v.lines())


def test_sentence_no_better_and_worse():
    v = verdict_lib.compare(
        "gamma/static", [0.86, 0.88, 0.87], "gelu", [0.865, 0.87, 0.868], metric="test_accuracy"
    )
    assert v.outcome == "no_better"
    assert v.verdict.startswith("gamma/static is no better than gelu: difference 0.23 points, 95 % CI [-")
    assert f"p = {v.p_value:.2f}" in v.verdict
    w = verdict_lib.compare("gamma", [0.80, 0.81, 0.80], "relu", [0.86, 0.87, 0.86], metric="test_accuracy")
    assert w.outcome == "worse" and w.verdict.startswith("gamma is worse than relu: difference -6.00 points")


def test_sentence_minimised_metric_lower_beats():
    # a loss: lower is better; the difference (best - baseline) is negative when the best wins
    v = verdict_lib.compare("bru/eru", [0.30, 0.31, 0.29], "relu", [0.40, 0.41, 0.39], metric="test_loss")
    assert v.direction == "minimize" and v.outcome == "beats"
    assert v.difference == pytest.approx(-0.10) and v.ci95[1] < 0
    assert v.verdict.startswith("bru/eru beats relu by 0.1000 lower test_loss, 95 % CI [-0.")
    assert "points" not in v.verdict
    # the same numbers for a maximised metric: worse
    assert (
        verdict_lib.compare("a", [0.30, 0.31, 0.29], "b", [0.40, 0.41, 0.39], metric="score").outcome
        == "worse"
    )
    # a higher loss does not beat
    assert (
        verdict_lib.compare("a", [0.40, 0.41, 0.39], "b", [0.30, 0.31, 0.29], metric="val_loss").outcome
        == "worse"
    )


def test_sentence_when_the_best_is_a_baseline():
    v = verdict_lib.compare(
        "gamma/static",
        [0.86, 0.87, 0.85],
        "gelu",
        [0.87, 0.86, 0.88],
        metric="test_accuracy",
        best_is_baseline=True,
    )
    assert v.verdict.startswith(
        "the best trial is a baseline (gelu); the best other activation, gamma/static, is no better"
    )
    only = verdict_lib.compare("gelu", [0.87, 0.86, 0.88], metric="test_accuracy", best_is_baseline=True)
    assert only.outcome == "only_baselines" and only.verdict.startswith(
        "the best trial is a baseline (gelu): test_accuracy 87.00 %"
    )
    assert only.difference is None and only.p_value is None
    none = verdict_lib.compare("bru/oru", [0.87, 0.86, 0.88], metric="test_accuracy")
    assert none.outcome == "no_baseline" and "no baseline" in none.verdict


def test_diverged_seed_and_undecided():
    v = verdict_lib.compare("a", [0.9, float("nan"), 0.91], "b", [0.8, 0.81, 0.82], metric="test_accuracy")
    assert v.best_scores == [0.9, None, 0.91] and v.outcome == "beats"
    u = verdict_lib.compare("a", [0.9, None], "b", [0.8, 0.81], metric="test_accuracy")
    assert u.outcome == "undecided" and u.p_value is None and "no verdict" in u.verdict


def test_verdict_json_keys_and_round_trip(tmp_path):
    v = verdict_lib.compare(
        "bru/oru", [0.87, 0.88], "gelu", [0.86, 0.85], metric="test_accuracy", seeds=[7, 8]
    )
    path = verdict_lib.write_json(v, tmp_path)
    data = json.loads(path.read_text())
    assert path.name == "verdict.json" and KEYS <= set(data)
    assert data["best_scores"] == [0.87, 0.88] and data["verdict"] == v.verdict
    assert verdict_lib.Verdict.from_dict(data) == v
    tb = verdict_lib.write_tensorboard(v, tmp_path / "tb")
    if tb is not None:
        assert any(p.name.endswith(".verdict") for p in tb.iterdir())


def test_seeds_are_fresh_and_the_same_for_both_arms():
    from keras_bioact.search.spec.model import Budget

    assert verdict_lib.verdict_seeds(Budget(seed=3, verdict_seeds=3)) == [1_000_003, 1_000_004, 1_000_005]
    assert verdict_lib.verdict_seeds(Budget(verdict_seeds=0)) == []
    assert verdict_lib.label({"family": "bru", "form": "oru", "r": [2.0]}) == "bru/oru"
    assert verdict_lib.label({"family": "gelu"}) == "gelu"


@pytest.mark.parametrize("value", [1, -1, True, False, 2.5, "5", 1001])
def test_bad_verdict_seeds_are_refused_naming_the_key(value):
    raw = {"optuna": {"n_trials": 2}, "budget": {"verdict_seeds": value}}
    with pytest.raises(SpecError, match=r"budget\.verdict_seeds"):
        parse_spec(raw, source="v.toml")


def test_verdict_seeds_zero_turns_it_off_and_default_is_five():
    assert parse_spec({"optuna": {}, "budget": {"verdict_seeds": 0}}, "v.toml").budget.verdict_seeds == 0
    assert parse_spec({"optuna": {}}, "v.toml").budget.verdict_seeds == 5
    assert parse_spec({"evolution": {}, "budget": {"verdict_seeds": 2}}, "v.toml").budget.verdict_seeds == 2
