"""Small-sample statistics for recipe results, in pure Python (no SciPy needed).

* `mean_std`: mean and sample standard deviation (ddof = 1) of the finite values.
* `ci95` / `t_interval`: confidence interval of the mean from Student's t distribution.
* `welch`: Welch's unequal-variance t-test (t, Welch-Satterthwaite df, two- or one-sided p).
* `welch_interval`: confidence interval of mean(a) - mean(b) with the Welch-Satterthwaite df.
* `one_sample`: one-sample t-test of the mean against a constant (e.g. a score threshold).
* `spearman`: Spearman's rank correlation (ties: average ranks).
* `t_cdf`, `t_ppf`: Student-t distribution function and its inverse, from the regularised
  incomplete beta function (continued fraction, Lentz's method), accurate to ~1e-12.

Non-finite values (diverged runs, recorded as None/NaN) are dropped, and how many were dropped is
reported by `describe`, so a diverged seed is visible rather than silently averaged away.
"""

import math

__all__ = [
    "betainc", "ci95", "describe", "finite", "mean_std", "one_sample", "spearman", "t_cdf", "t_interval",
    "t_ppf", "welch", "welch_interval",
]  # fmt: skip


def finite(values):
    """The finite floats among `values` (None, NaN and inf dropped)."""
    out = []
    for v in values:
        if v is None:
            continue
        v = float(v)
        if math.isfinite(v):
            out.append(v)
    return out


def mean_std(values):
    """(mean, sample std with ddof=1) of the finite values; std is nan for n < 2, both nan for n = 0."""
    v = finite(values)
    n = len(v)
    if n == 0:
        return math.nan, math.nan
    m = math.fsum(v) / n
    if n < 2:
        return m, math.nan
    return m, math.sqrt(math.fsum((x - m) ** 2 for x in v) / (n - 1))


def _betacf(a, b, x):
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            return h
    raise ArithmeticError(f"betainc: continued fraction did not converge (a={a}, b={b}, x={x}).")


def betainc(a, b, x):
    """Regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc: `a` and `b` must be > 0, got a={a}, b={b}.")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc: `x` must be in [0, 1], got {x}.")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """P(T <= t) for Student's t with `df` > 0 degrees of freedom (df may be fractional)."""
    if not df > 0:
        raise ValueError(f"t_cdf: `df` must be > 0, got {df}.")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_ppf(p, df):
    """The t with `t_cdf(t, df) == p`, for 0 < p < 1 (bisection on a bracket, then to 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_ppf: `p` must be in (0, 1), got {p}.")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def t_interval(values, level=0.95):
    """(low, high) confidence interval of the mean of the finite values; (nan, nan) for n < 2."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"t_interval: `level` must be in (0, 1), got {level}.")
    v = finite(values)
    m, s = mean_std(v)
    if len(v) < 2:
        return math.nan, math.nan
    half = t_ppf(0.5 + level / 2.0, len(v) - 1) * s / math.sqrt(len(v))
    return m - half, m + half


def ci95(values):
    """95 % t-interval of the mean: `t_interval(values, 0.95)`."""
    return t_interval(values, 0.95)


def welch(a, b, alternative="two-sided"):
    """Welch's t-test of mean(a) vs mean(b) on the finite values.

    Args:
        alternative: `"two-sided"`, `"less"` (H1: mean(a) < mean(b)) or `"greater"`.

    Returns `{"t", "df", "p", "n_a", "n_b", "diff"}`; t, df, p are nan when either sample has
    fewer than 2 values. Two samples with zero variance give p = 0 if their means differ, else 1.
    """
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(
            f"welch: `alternative` must be 'two-sided', 'less' or 'greater', got {alternative!r}."
        )
    a, b = finite(a), finite(b)
    out = {"n_a": len(a), "n_b": len(b), "t": math.nan, "df": math.nan, "p": math.nan, "diff": math.nan}
    if len(a) < 2 or len(b) < 2:
        if a and b:
            out["diff"] = mean_std(a)[0] - mean_std(b)[0]
        return out
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    out["diff"] = ma - mb
    if va + vb == 0.0:
        if ma == mb:
            out.update(t=0.0, df=math.inf, p=1.0)
        else:
            t = math.copysign(math.inf, ma - mb)
            sign_p = {"two-sided": 0.0, "less": float(t > 0), "greater": float(t < 0)}[alternative]
            out.update(t=t, df=math.inf, p=sign_p)
        return out
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    if alternative == "two-sided":
        p = 2.0 * t_cdf(-abs(t), df)
    elif alternative == "less":
        p = t_cdf(t, df)
    else:
        p = 1.0 - t_cdf(t, df)
    out.update(t=t, df=df, p=min(1.0, p))
    return out


def welch_interval(a, b, level=0.95):
    """(low, high) confidence interval of mean(a) - mean(b) on the finite values, from Welch's
    statistic: diff -+ t_ppf(0.5 + level / 2, df) * sqrt(var(a) / n_a + var(b) / n_b) with the
    Welch-Satterthwaite df; (nan, nan) when either sample has fewer than 2 values. It excludes 0
    exactly when the two-sided `welch(a, b)["p"]` is below 1 - level. Two samples with zero
    variance give the point interval (diff, diff)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"welch_interval: `level` must be in (0, 1), got {level}.")
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    if va + vb == 0.0:
        return ma - mb, ma - mb
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    half = t_ppf(0.5 + level / 2.0, df) * math.sqrt(va + vb)
    return ma - mb - half, ma - mb + half


def one_sample(a, mu, alternative="two-sided"):
    """One-sample t-test of mean(a) against the constant `mu`, on the finite values.

    Args:
        alternative: `"two-sided"`, `"less"` (H1: mean(a) < mu) or `"greater"`.

    Returns `{"t", "df", "p", "n_a", "diff"}` (`diff` = mean(a) - mu); t, df, p are nan for fewer
    than 2 values. A sample with zero variance gives p = 0 if its mean differs from `mu`, else 1.
    """
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(
            f"one_sample: `alternative` must be 'two-sided', 'less' or 'greater', got {alternative!r}."
        )
    a = finite(a)
    out = {"n_a": len(a), "t": math.nan, "df": math.nan, "p": math.nan, "diff": math.nan}
    if a:
        out["diff"] = mean_std(a)[0] - mu
    if len(a) < 2:
        return out
    m, sd = mean_std(a)
    if sd == 0.0:
        t = 0.0 if m == mu else math.copysign(math.inf, m - mu)
    else:
        t = (m - mu) / (sd / math.sqrt(len(a)))
    df = len(a) - 1
    p = {"two-sided": 2.0 * t_cdf(-abs(t), df), "less": t_cdf(t, df), "greater": 1.0 - t_cdf(t, df)}
    out.update(t=t, df=df, p=min(1.0, p[alternative]))
    return out


def _ranks(values):
    """Ranks from 1 (ties: their average rank), as `scipy.stats.rankdata`."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i : j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a, b):
    """Spearman's rank correlation of two equally long sequences (ties: average ranks); nan
    with fewer than 3 pairs or a constant sequence."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b):
        raise ValueError(f"spearman: two sequences of one length, got lengths {len(a)} and {len(b)}")
    if len(a) < 3:
        return math.nan
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    ra, rb = [r - ma for r in ra], [r - mb for r in rb]
    denominator = math.sqrt(sum(r * r for r in ra) * sum(r * r for r in rb))
    return math.nan if denominator == 0 else sum(x * y for x, y in zip(ra, rb, strict=True)) / denominator


def describe(values):
    """`{"n", "n_dropped", "mean", "std", "ci95": [lo, hi]}` of a list of per-seed values."""
    values = list(values)
    v = finite(values)
    m, s = mean_std(v)
    lo, hi = ci95(v)
    return {"n": len(v), "n_dropped": len(values) - len(v), "mean": m, "std": s, "ci95": [lo, hi]}
