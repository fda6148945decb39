"""Known-answer tests of the verdicts `recipes/report.py` gives each claim (issue 28).

Every claim of `report.CLAIMS` is fed hand-made run values whose outcome is known: the candidate
clearly better, clearly worse, equal, not significantly better, too few seeds, and (for a claim
against a fixed threshold) one-sample cases. The verdict is checked exactly and the p-value against
scipy's Welch / one-sample t-test in the claimed direction.
"""

import math

import pytest
from scipy import stats as sps

from recipes import report

pytestmark = pytest.mark.single_backend
BASE = [1.0, 1.1, 1.2, 1.3, 1.4]


def _name(names, suffix="x"):
    """A variant name matched by `names` (a prefix "static:" gets a suffix)."""
    return names[0] + suffix if names[0].endswith(":") else names[0]


def _runs(claim, by_variant):
    recs = {
        v: [{"seed": i, "metrics": {claim["metric"]: x}} for i, x in enumerate(xs)]
        for v, xs in by_variant.items()
    }
    return {(claim["recipe"], claim["setting"]): recs}


def _better(claim):
    """+1 when a higher metric is better for the candidates, -1 when lower."""
    return 1.0 if claim["better"] == "higher" else -1.0


def _alt(claim):
    return "greater" if claim["better"] == "higher" else "less"


PAIRED = [c for c in report.CLAIMS if "threshold" not in c]
THRESHOLD = [c for c in report.CLAIMS if "threshold" in c]


def ID(c):
    return f"{c['recipe']}-{c['setting']}-{c['metric']}-{c['candidates'][0]}-{c.get('baselines', ('t',))[0]}"


def test_every_claim_kind_is_covered():
    assert PAIRED and THRESHOLD and len(PAIRED) + len(THRESHOLD) == len(report.CLAIMS)
    assert {c["better"] for c in PAIRED} == {"lower", "higher"}


# (shift of the candidate in the claimed direction, extra spread, expected verdict)
CASES = {
    "clearly_better": (1.0, 1.0, "yes"),
    "clearly_worse": (-1.0, 1.0, "no"),
    "equal": (0.0, 1.0, "no"),
    "better_not_significant": (0.05, 3.0, "no"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("claim", PAIRED, ids=ID)
def test_paired_claim_verdict_and_welch_p(claim, case):
    shift, spread, verdict = CASES[case]
    n = claim["planned_seeds"]
    base = BASE[:n]
    cand = [b + _better(claim) * shift + spread * (0.03 if i % 2 else -0.02) for i, b in enumerate(base)]
    cv, bv = _name(claim["candidates"]), _name(claim["baselines"])
    # A second, worse baseline must not be the one compared against.
    worse = _name(claim["baselines"][1:] or claim["baselines"], "y")
    values = {cv: cand, bv: base}
    if worse != bv:
        values[worse] = [b - _better(claim) * 5.0 for b in base]
    r = report.evaluate_claim(claim, _runs(claim, values))
    assert r["verdict"] == verdict
    assert r["candidate"][0] == cv and r["baseline"][0] == bv and r["n_min"] == n
    expected = sps.ttest_ind(cand, base, equal_var=False, alternative=_alt(claim)).pvalue
    assert r["welch"]["p"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert r["welch"]["diff"] == pytest.approx(sum(cand) / n - sum(base) / n)


@pytest.mark.parametrize("claim", PAIRED, ids=ID)
def test_paired_claim_too_few_seeds(claim):
    cv, bv = _name(claim["candidates"]), _name(claim["baselines"])
    good = lambda xs: [x + _better(claim) * 1.0 for x in xs]  # noqa: E731
    # One seed on a side: no test, no verdict.
    r = report.evaluate_claim(claim, _runs(claim, {cv: good(BASE[:1]), bv: BASE}))
    assert r["verdict"] == "no verdict (n < 2)" and r["n_min"] == 1 and math.isnan(r["welch"]["p"])
    # A diverged seed (None) does not count: 1 finite value left.
    r = report.evaluate_claim(claim, _runs(claim, {cv: good(BASE[:1]) + [None], bv: BASE}))
    assert r["verdict"] == "no verdict (n < 2)"
    # Two of the planned seeds, clearly better: held, marked as partial.
    r = report.evaluate_claim(claim, _runs(claim, {cv: good([1.0, 1.1]), bv: [1.0, 1.1]}))
    assert r["verdict"] == f"yes (so far: 2 of {claim['planned_seeds']} seeds)"
    # No baseline result at all: no row (the report lists the claim as not run).
    assert report.evaluate_claim(claim, _runs(claim, {cv: good(BASE)})) is None


@pytest.mark.parametrize("claim", THRESHOLD, ids=ID)
@pytest.mark.parametrize(
    "offsets, verdict",
    [
        ([0.2, 0.25, 0.3], "yes"),  # clearly past the threshold in the claimed direction
        ([-0.2, -0.25, -0.3], "no"),  # clearly on the wrong side
        ([-0.01, 0.0, 0.01], "no"),  # at the threshold
        ([0.01, -0.2, 0.25], "no"),  # right side on average, but not significant
    ],
)
def test_threshold_claim_one_sample(claim, offsets, verdict):
    t, n = claim["threshold"], claim["planned_seeds"]
    xs = [t + _better(claim) * o for o in (offsets * n)[:n]]
    cv = _name(claim["candidates"])
    r = report.evaluate_claim(claim, _runs(claim, {cv: xs}))
    assert r["verdict"] == verdict and r["baseline"][1] is None and r["n_min"] == n
    expected = sps.ttest_1samp(xs, t, alternative=_alt(claim)).pvalue
    assert r["welch"]["p"] == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("claim", THRESHOLD, ids=ID)
def test_threshold_claim_too_few_seeds(claim):
    t, cv = claim["threshold"], _name(claim["candidates"])
    r = report.evaluate_claim(claim, _runs(claim, {cv: [t + _better(claim)]}))
    assert r["verdict"] == "no verdict (n < 2)" and r["n_min"] == 1
    r = report.evaluate_claim(claim, _runs(claim, {cv: [t + _better(claim) * o for o in (0.2, 0.21)]}))
    assert r["verdict"] == f"yes (so far: 2 of {claim['planned_seeds']} seeds)"
    assert report.evaluate_claim(claim, _runs(claim, {})) is None
