"""Numbers and markdown tables of the recipes and `recipes/report.py`.

Every "mean ± std" is `keras_bioact.stats.mean_std`: the sample standard deviation (ddof = 1) of the
finite values, so a single seed has no std (printed "-").
"""

import math

from keras_bioact import stats

__all__ = ["fmt", "fmt_mean_std", "fmt_p", "fmt_stat", "table", "values"]


def values(runs, metric):
    """`metric` of each run file's `metrics` (None where missing)."""
    return [r["metrics"].get(metric) for r in runs]


def fmt(x, digits=3, scale=1.0):
    """Fixed-point with `digits` decimals; huge values (a diverged run's loss) in e-notation; "-" if
    not finite."""
    if x is None or not math.isfinite(x):
        return "-"
    x *= scale
    return f"{x:.{digits}f}" if abs(x) < 1e5 else f"{x:.2e}"


def fmt_mean_std(values, scale=1.0, digits=2):
    """`"m ± s"` of `values * scale`, with the count of non-finite (diverged) runs noted."""
    m, s = stats.mean_std(values)
    bad = len(values) - len(stats.finite(values))
    text = f"{fmt(m, digits, scale)} ± {fmt(s, digits, scale)}"
    return text + (f" ({bad} diverged)" if bad else "")


def fmt_stat(d, digits=3, scale=1.0):
    """`"m ± s [lo, hi]"` of a `keras_bioact.stats.describe` dict, noting the values left out."""
    lo, hi = d["ci95"]
    text = (
        f"{fmt(d['mean'], digits, scale)} ± {fmt(d['std'], digits, scale)} "
        f"[{fmt(lo, digits, scale)}, {fmt(hi, digits, scale)}]"
    )
    if d["n_dropped"]:
        text += f" (n={d['n']}; {d['n_dropped']} not finite, left out)"
    return text


def fmt_p(p):
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def table(header, rows):
    """A GitHub-markdown table from a header list and a list of row lists."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])
