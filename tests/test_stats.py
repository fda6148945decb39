"""keras_bioact.stats against textbook values and, where installed, scipy.stats."""

import math
import random

import pytest

from keras_bioact import stats

pytestmark = pytest.mark.single_backend


def test_textbook_t_quantiles_and_cdf():
    # Two-sided 95 % critical values of Student's t (any statistics table).
    for df, crit in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)]:
        assert stats.t_ppf(0.975, df) == pytest.approx(crit, abs=5e-4)
    assert stats.t_cdf(0.0, 3) == 0.5
    assert stats.t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy: 1/2 + atan(1)/pi
    assert stats.t_cdf(-2.0, 2) == pytest.approx(0.5 - 1 / math.sqrt(6.0) * 1.0, abs=1e-12)
    assert stats.t_ppf(0.025, 4) == pytest.approx(-stats.t_ppf(0.975, 4))


def test_mean_std_ci_and_dropped_values():
    m, s = stats.mean_std([1.0, 2.0, 3.0, None, float("nan")])
    assert (m, s) == (2.0, 1.0)
    lo, hi = stats.ci95([1.0, 2.0, 3.0])
    assert (lo, hi) == pytest.approx((2.0 - 4.303 / math.sqrt(3), 2.0 + 4.303 / math.sqrt(3)), abs=1e-3)
    d = stats.describe([0.5, float("inf"), 0.7])
    assert d["n"] == 2 and d["n_dropped"] == 1 and d["mean"] == pytest.approx(0.6)
    assert math.isnan(stats.mean_std([4.0])[1]) and all(map(math.isnan, stats.ci95([4.0])))


def test_one_sample_hand_computed():
    # a = [1, 2, 3] against 0: t = 2 / (1 / sqrt(3)), df = 2, where the t CDF is closed-form:
    # F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
    o = stats.one_sample([1, 2, 3], 0.0)
    t = 2 * math.sqrt(3)
    assert o["t"] == pytest.approx(t) and o["df"] == 2 and o["diff"] == pytest.approx(2.0)
    upper = 0.5 - t / (2 * math.sqrt(2 + t * t))
    assert o["p"] == pytest.approx(2 * upper, rel=1e-9)
    assert stats.one_sample([1, 2, 3], 0.0, "greater")["p"] == pytest.approx(upper, rel=1e-9)
    assert stats.one_sample([1, 2, 3], 0.0, "less")["p"] == pytest.approx(1 - upper, rel=1e-9)
    assert math.isnan(stats.one_sample([1.0, None], 0.0)["p"])  # one finite value: no test
    assert stats.one_sample([0.5, 0.5], 0.25, "greater")["p"] == 0.0
    assert stats.one_sample([0.5, 0.5], 0.5)["p"] == 1.0
    with pytest.raises(ValueError, match="alternative"):
        stats.one_sample([1, 2], 0.0, "bigger")


def test_welch_hand_computed():
    # a = [1, 2, 3] (var 1), b = [4, 6, 8] (var 4): t = (2 - 6) / sqrt(1/3 + 4/3),
    # df = (5/3)^2 / ((1/9 + 16/9) / 2)
    w = stats.welch([1, 2, 3], [4, 6, 8])
    assert w["t"] == pytest.approx(-4 / math.sqrt(5 / 3))
    assert w["df"] == pytest.approx((5 / 3) ** 2 / (17 / 18))
    assert w["p"] == pytest.approx(2 * stats.t_cdf(w["t"], w["df"]))
    assert stats.welch([1, 2, 3], [4, 6, 8], "less")["p"] == pytest.approx(w["p"] / 2)
    assert stats.welch([1, 2, 3], [4, 6, 8], "greater")["p"] == pytest.approx(1 - w["p"] / 2)
    assert math.isnan(stats.welch([1.0], [2.0, 3.0])["p"])
    assert stats.welch([1.0, 1.0], [2.0, 2.0], "less")["p"] == 0.0
    with pytest.raises(ValueError, match="alternative"):
        stats.welch([1, 2], [3, 4], "bigger")
    with pytest.raises(ValueError, match="`p`"):
        stats.t_ppf(1.0, 3)
    with pytest.raises(ValueError, match="`df`"):
        stats.t_cdf(1.0, 0)


def test_against_scipy():
    sp = pytest.importorskip("scipy.stats")
    import numpy as np

    rng = np.random.default_rng(1)
    for df in (1, 2.5, 4, 17, 200):
        for t in (-6.0, -1.3, 0.2, 2.9):
            assert stats.t_cdf(t, df) == pytest.approx(sp.t.cdf(t, df), abs=1e-11)
        assert stats.t_ppf(0.975, df) == pytest.approx(sp.t.ppf(0.975, df), rel=1e-9)
    for n_a, n_b in ((2, 5), (5, 5), (3, 8)):
        a, b = rng.normal(0, 1, n_a), rng.normal(0.7, 2, n_b)
        ref = sp.ttest_ind(a, b, equal_var=False)
        w = stats.welch(a, b)
        assert (w["t"], w["p"]) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
        assert stats.welch(a, b, "less")["p"] == pytest.approx(
            sp.ttest_ind(a, b, equal_var=False, alternative="less").pvalue, rel=1e-9
        )
        lo, hi = sp.t.interval(0.95, n_a - 1, loc=a.mean(), scale=sp.sem(a))
        assert stats.ci95(a) == pytest.approx((lo, hi), rel=1e-9)


def test_spearman_agrees_with_scipy():
    sp = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    for a, b in [
        ([rng.gauss(0, 1) for _ in range(20)], [rng.gauss(0, 1) for _ in range(20)]),
        ([1, 2, 2, 3, 5, 5, 5], [7, 1, 3, 3, 2, 9, 0]),  # ties
        ([1, 2, 3, 4], [4, 3, 2, 1]),
    ]:
        assert stats.spearman(a, b) == pytest.approx(sp.spearmanr(a, b).statistic, abs=1e-12)
    assert math.isnan(stats.spearman([1, 2], [2, 1])) and math.isnan(stats.spearman([1, 1, 1], [1, 2, 3]))
