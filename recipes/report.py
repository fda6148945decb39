"""Regenerate the result tables and plots of recipes/README.md from the run files in recipes/results.

Every (recipe, setting, variant, seed) run file (`recipes.common.run_results`, JSON only) is read;
per setting the script writes a table of every variant (mean ± sample std, 95 % t-interval, n),
PNG plots (training loss and validation accuracy per epoch, final test error with 95 % intervals) under
`--figures`, and, for every claim in `CLAIMS`, the statistics of its comparison (best candidate
variant vs best baseline by mean, one-sided Welch t-test in the claimed direction) with a plain
held yes/no verdict. Claims without results are listed with the reason. Paper-scale throughput runs
(`recipes/results/paper_scale/*.json`) get their own table.

The generated text replaces what lies between `<!-- report:begin -->` and `<!-- report:end -->` in
the README, so no number there is typed by hand.

    python recipes/report.py            # rewrite README section and figures
    python recipes/report.py --check    # exit 1 if the README section differs from the results
"""

import argparse
import difflib
import json
import math
import pathlib
import sys
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(ROOT))

from keras_bioact import stats  # noqa: E402 (pure Python, like the report: no Keras import)
from recipes.common import report_claims, search_pays_report  # noqa: E402
from recipes.common.run_results import load_run, safe_name  # noqa: E402
from recipes.common.tables import fmt, fmt_p, fmt_stat, table, values  # noqa: E402

# What each claim compares (recipes/common/report_claims.py): paper, claim, recipe, setting, metric, ...
CLAIMS = report_claims.CLAIMS + search_pays_report.CLAIMS  # issue 15 item 3: the search-pays claims
COLUMNS, SEED_LISTS, SWEEPS = report_claims.COLUMNS, report_claims.SEED_LISTS, report_claims.SWEEPS
BASELINES = report_claims.BASELINES
NOT_RUN_SEARCH, NOT_RUN_GPU = search_pays_report.NOT_RUN, report_claims.NOT_RUN_GPU

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
ALPHA = 0.05


def _matches(variant, names):
    return any(variant.startswith(n) if n.endswith(":") else variant == n for n in names)


def collect(results_dir):
    """`{(recipe, setting): {variant: [run dicts sorted by seed]}}` and the paper-scale records."""
    results_dir = pathlib.Path(results_dir)
    runs, paper = {}, []
    for path in sorted(results_dir.rglob("*.json")):
        if path.name.startswith("."):
            continue
        rel = path.relative_to(results_dir)
        if rel.parts[0] == "paper_scale":
            paper.append(json.loads(path.read_text()) | {"_file": rel.as_posix()})
            continue
        run = load_run(path)
        runs.setdefault((run["recipe"], run["setting"]), {}).setdefault(run["variant"], []).append(run)
    for variants in runs.values():
        for recs in variants.values():
            recs.sort(key=lambda r: r["seed"])
    return runs, paper


def _diverged(run):
    return any(v is None for v in run.get("curves", {}).get("loss", []))


def evaluate_claim(claim, runs):
    """Statistics and verdict of one claim, or None when it has no results on both sides."""
    variants = runs.get((claim["recipe"], claim["setting"]), {})
    metric, sign = claim["metric"], 1.0 if claim["better"] == "lower" else -1.0

    def best(names):
        scored = []
        for v, recs in variants.items():
            d = stats.describe(values(recs, metric))
            if _matches(v, names) and d["n"]:
                scored.append((sign * d["mean"], v, d))
        return min(scored) if scored else None

    alternative = "less" if claim["better"] == "lower" else "greater"
    cand = best(claim["candidates"])
    if "threshold" in claim:  # against a constant: one-sample t-test
        if cand is None:
            return None
        (_, cv, cd), bv, bd = cand, f"threshold {claim['threshold']} (one-sample t-test)", None
        w = stats.one_sample(values(variants[cv], metric), claim["threshold"], alternative)
    else:
        base = best(claim["baselines"])
        if cand is None or base is None:
            return None
        (_, cv, cd), (_, bv, bd) = cand, base
        w = stats.welch(values(variants[cv], metric), values(variants[bv], metric), alternative)
    n_min = min(cd["n"], bd["n"]) if bd else cd["n"]
    enough = n_min >= 2
    held = enough and sign * w["diff"] < 0 and w["p"] < ALPHA
    verdict = ("yes" if held else "no") if enough else "no verdict (n < 2)"
    if enough and n_min < claim["planned_seeds"]:
        verdict += f" (so far: {n_min} of {claim['planned_seeds']} seeds)"
    return {"candidate": (cv, cd), "baseline": (bv, bd), "welch": w, "verdict": verdict, "n_min": n_min}


def validation_source(variants):
    """(short, long) description of where the runs' per-epoch `val_*` curves were measured, or None."""
    runs = [r for recs in variants.values() for r in recs]
    if not any("val_accuracy" in r.get("curves", {}) for r in runs):
        return None
    cfg = runs[0]["config"]
    if cfg.get("validation_fraction"):  # feed-forward recipes since the split (and search_pays)
        share = f"{cfg['validation_fraction']:.0%}"
        return "validation split", f"a seeded {share} of the training split, not trained on"
    if cfg.get("patience"):  # two_arg_xor: early stopping on the last `validation_split` of training
        share = f"{cfg['validation_split']:.0%} " if cfg.get("validation_split") else ""
        return "validation split", f"the last {share}of the training split (early stopping), not trained on"
    return "test set", "the test set (runs made before the recipes held out a validation split)"


def figure_paths(key, figures):
    """`{name: path}` of one setting's PNGs: curves, test error, and the robustness sweeps if any."""
    stem = safe_name("-".join(key))
    names = ("curves", "test_error") + (("robustness",) if key[0] in SWEEPS else ())
    return {n: pathlib.Path(figures) / f"{stem}-{n}.png" for n in names}


def plot_setting(key, variants, figures):
    """Loss and accuracy curves and a test-error bar chart (95 % intervals) of one setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    paths = figure_paths(key, figures)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for variant, recs in variants.items():
        for ax, curve in zip(axes, ("loss", "val_accuracy"), strict=True):
            rows = [[np.nan if v is None else v for v in r["curves"].get(curve, [])] for r in recs]
            if not max(map(len, rows)):
                continue
            arr = np.full((len(rows), max(map(len, rows))), np.nan)  # early-stopped runs are shorter
            for i, row in enumerate(rows):
                arr[i, : len(row)] = row
            with warnings.catch_warnings():  # an all-diverged epoch is NaN, drawn as a gap; one seed: no band
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(arr, 0), np.nanstd(arr, 0, ddof=1)
            epochs = np.arange(1, arr.shape[1] + 1)
            (line,) = ax.plot(epochs, mean, label=f"{variant} (n={len(recs)})")
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    axes[0].set(yscale="log", xlabel="epoch", ylabel="training loss", title="training loss (mean ± std)")
    source = validation_source(variants)
    axes[1].set(xlabel="epoch", ylabel="accuracy", title=f"val_accuracy ({source[0] if source else 'none'})")
    for ax in axes:
        ax.grid(alpha=0.3)
    (axes[1] if axes[1].lines else axes[0]).legend(fontsize="small")  # no val curves: legend on the loss
    fig.suptitle(" / ".join(key))
    fig.tight_layout()
    fig.savefig(paths["curves"], dpi=100, metadata={"Software": None})
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(variants) + 2), 4))
    names = list(variants)
    ds = [stats.describe(values(variants[v], "test_error")) for v in names]
    means = [100 * d["mean"] for d in ds]
    err = [[100 * (d["mean"] - d["ci95"][0]) if d["n"] > 1 else 0 for d in ds],
           [100 * (d["ci95"][1] - d["mean"]) if d["n"] > 1 else 0 for d in ds]]  # fmt: skip
    ax.bar(range(len(names)), means, yerr=err, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set(ylabel="final test error (%)", title=f"{' / '.join(key)}: test error, mean and 95 % CI")
    finite = [m for m in means if math.isfinite(m)]  # a variant without test_error draws no bar
    ax.set_ylim(min(finite) * 0.9 if finite else 0, None)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths["test_error"], dpi=100, metadata={"Software": None})
    plt.close(fig)
    if "robustness" in paths:
        plot_sweeps(key, variants, SWEEPS[key[0]], paths["robustness"])
    return paths


def plot_sweeps(key, variants, sweeps, path):
    """Test accuracy against perturbation strength, mean and 95 % interval over seeds, per variant."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.5 * len(sweeps), 4), squeeze=False)
    for ax, (sweep, label) in zip(axes[0], sweeps, strict=True):
        for variant, recs in variants.items():
            points = recs[0].get("record", {}).get(sweep) or {}
            if not points:  # e.g. the LSTM has no pre-activation to drive
                continue
            xs = sorted(points, key=float)
            ds = [stats.describe([r["record"][sweep].get(x) for r in recs]) for x in xs]
            mean = np.array([d["mean"] for d in ds])
            lo = np.array([d["ci95"][0] if d["n"] > 1 else d["mean"] for d in ds])
            hi = np.array([d["ci95"][1] if d["n"] > 1 else d["mean"] for d in ds])
            strengths = [float(x) for x in xs]
            (line,) = ax.plot(strengths, mean, marker="o", label=f"{variant} (n={len(recs)})")
            ax.fill_between(strengths, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set(xlabel=label, ylabel="test accuracy", title=f"accuracy vs {label} (mean, 95 % CI)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(" / ".join(key))
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def best_baseline(recipe, variants):
    """`(name, test accuracies)` of the variant of `BASELINES[recipe]` with the best mean test accuracy."""
    scored = []
    for v in BASELINES.get(recipe, ()):
        d = stats.describe(values(variants.get(v, []), "test_accuracy"))
        if d["n"]:
            scored.append((-d["mean"], v))
    return (min(scored)[1], values(variants[min(scored)[1]], "test_accuracy")) if scored else (None, None)


def figure_paths_dir(figure_paths):
    """The figures directory of a setting (where its curves PNG lies)."""
    return pathlib.Path(next(iter(figure_paths.values()))).parent


def params_cell(recs):
    """The parameter count(s) stored in the run files (`params`), or "-"."""
    counts = sorted({r["params"] for r in recs if isinstance(r.get("params"), int)})
    return " / ".join(f"{c:,}" for c in counts) or "-"


def setting_section(key, variants, figure_paths, readme_dir):
    recipe, setting = key
    first = next(iter(variants.values()))[0]
    cfg = first["config"]
    proto = ", ".join(f"{k} {cfg[k]}" for k in ("epochs", "batch_size", "optimizer", "lr") if k in cfg)
    backends = sorted({r["environment"].get("keras_backend") or "?" for rs in variants.values() for r in rs})
    source = validation_source(variants)
    val = f"per-epoch validation on {source[1]}; " if source else ""
    lines = [
        f"### `{recipe}` · {setting}",
        "",
        f"{first.get('architecture', '')} on {cfg.get('dataset', '?')}; {proto}; {val}"
        f"backend {', '.join(backends)}. "
        "Mean ± sample std over seeds [95 % t-interval]; n = finished seeds.",
        "",
    ]
    extra = COLUMNS.get(recipe, ())
    base, base_acc = best_baseline(recipe, variants)
    rows = []
    for variant, recs in variants.items():
        welch = []
        if base is not None:
            p = stats.welch(values(recs, "test_accuracy"), base_acc)["p"] if variant != base else None
            welch = ["(best baseline)" if variant == base else fmt_p(p)]
        cells = []
        for metric, _, digits, scale in extra:
            d = stats.describe(values(recs, metric))
            cells.append(fmt_stat(d, digits, scale) if d["n"] else "-")
        acc = stats.describe(values(recs, "test_accuracy"))
        auc = stats.describe(values(recs, "mean_train_loss"))
        fin = stats.describe(values(recs, "final_train_loss"))
        wall = stats.describe([r.get("wall_time_s") for r in recs])
        div = sum(_diverged(r) for r in recs)
        rows.append(
            [
                variant,
                params_cell(recs),
                acc["n"],
                ", ".join(str(r["seed"]) for r in recs),
                fmt_stat(acc, 2, 100),
                *welch,
                fmt_stat(auc, 4),
                fmt(fin["mean"], 4),
                *cells,
                div,
                fmt(wall["mean"], 0),
            ]
        )
    hdr = ["variant", "params", "n", "seeds", "test accuracy %"]
    if base is not None:
        hdr.append(f"Welch p vs best baseline ({base}), test accuracy, two-sided")
    hdr += ["mean train loss (AUC)", "final train loss"]
    lines.append(table(hdr + [h for _, h, _, _ in extra] + ["diverged", "s / run"], rows))
    for metric, label in SEED_LISTS.get(recipe, ()):
        per_variant = [
            f"{v}: " + ", ".join(f"{fmt(r['metrics'][metric], 2)} (seed {r['seed']})" for r in recs)
            for v, recs in variants.items()
            if all(r["metrics"].get(metric) is not None for r in recs)
        ]
        if per_variant:
            lines += ["", f"{label}: " + "; ".join(per_variant) + "."]
    surfaces = [
        (v, r["seed"], r["record"]["surface_png"])
        for v, recs in variants.items()
        for r in recs
        if isinstance(r.get("record"), dict) and isinstance(r["record"].get("surface_png"), str)
    ]
    if surfaces:
        lines += ["", "Learned g surfaces (xor_score of each g in its panel's title):", ""]
        for v, seed, name in surfaces:
            rel = (pathlib.Path(figure_paths_dir(figure_paths)) / safe_name(name)).resolve()
            lines.append(f"![{v} g seed {seed}]({rel.relative_to(readme_dir.resolve()).as_posix()})")
    if figure_paths:
        lines.append("")
        for name, path in figure_paths.items():
            rel = pathlib.Path(path).resolve().relative_to(readme_dir.resolve()).as_posix()
            lines.append(f"![{setting} {name}]({rel})")
    return "\n".join(lines)


def claims_section(runs, paper=()):
    rows, missing = [], []
    for c in CLAIMS:
        r = evaluate_claim(c, runs)
        what = f"{c['paper']}: {c['claim']} (`{c['recipe']}`, {c['setting']})"
        if r is None:
            missing.append(f"* {what}: {c['why']}.")
            continue
        (cv, cd), (bv, bd), w, n_min = r["candidate"], r["baseline"], r["welch"], r["n_min"]
        if n_min < c["planned_seeds"]:
            missing.append(f"* {what}: partly run ({n_min} of {c['planned_seeds']} seeds); {c['why']}.")
        digits = 4
        rows.append(
            [
                f"{c['paper']}: {c['claim']}",
                f"{c['metric']} ({c['better']} is better)",
                f"{cv}: {fmt_stat(cd, digits)}, n={cd['n']}",
                f"{bv}: {fmt_stat(bd, digits)}, n={bd['n']}" if bd else bv,
                fmt(w["diff"], digits),
                fmt_p(w["p"]),
                f"**{r['verdict']}**",
            ]
        )
    not_run = list(NOT_RUN_SEARCH) + search_pays_report.verdict_not_run(runs)
    if not any(p["device"]["platform"] == "gpu" for p in paper):
        not_run.append(NOT_RUN_GPU)
    hdr = ["claim", "metric", "best candidate", "best baseline", "difference", "Welch p (one-sided)", "held"]
    out = [
        "Each claim compares the candidate variant with the best mean against the baseline with the best "
        f"mean (so the candidate side is favoured by selection); held = the difference is in the claimed "
        f"direction and the one-sided Welch t-test gives p < {ALPHA} (a one-sample t-test for a claim "
        "against a fixed threshold).",
        "",
        table(hdr, rows) if rows else "No claim has results yet.",
        "",
        "Not run yet, and why:",
        "",
        "\n".join(missing) if missing else "* nothing: every claim has results.",
        "",
        "Other parts of issue 15 not run yet:",
        "",
        "\n".join(f"* {why}." for why in not_run),
    ]
    return "\n".join(out)


def paper_scale_section(paper):
    if not paper:
        return "No paper-scale run recorded yet (`bash scripts/paper_scale.sh anru`)."
    rows = []
    for p in sorted(paper, key=lambda p: p["_file"]):
        cfg, dev, th = p["config"], p["device"], p.get("throughput", {})
        rows.append(
            [
                f"`{p['_file']}`",
                p["model"],
                f"{dev['backend']} / {dev['platform']} ({', '.join(dev['devices'])})",
                f"{cfg['steps']} steps, {cfg['units']} units, controller {cfg['controller']}, "
                f"batch {cfg['batch']}",
                fmt(p["budget_s"], 0),
                p["batches"],
                fmt(th.get("samples_per_s"), 2),
                fmt(th.get("steps_per_s"), 0),
                fmt(p.get("first_batch_s"), 1),
                fmt(p.get("train_loss_so_far"), 4),
                f"{fmt(p['test_accuracy'], 3)} (n={p['test_samples']})",
            ]
        )
    hdr = ["file", "model", "backend / device", "size", "budget s", "batches", "samples/s", "steps/s",
           "first batch s", "train loss so far", "test accuracy so far"]  # fmt: skip
    return table(hdr, rows)


def _shown(path, base):
    """`path` relative to `base` when inside it (stable text in the README), else as given."""
    try:
        return pathlib.Path(path).resolve().relative_to(pathlib.Path(base).resolve()).as_posix()
    except ValueError:
        return str(path)


def generate(results_dir, readme_dir, figures, plot=True):
    """The README section (str); with `plot`, also write the PNGs under `figures`."""
    runs, paper = collect(results_dir)
    figures = pathlib.Path(figures)
    n_files = sum(len(r) for v in runs.values() for r in v.values())
    parts = [
        BEGIN,
        "<!-- generated by `python recipes/report.py` from recipes/results/; do not edit by hand -->",
        "",
        f"Run files: {n_files} (`{_shown(results_dir, ROOT)}`, one JSON per recipe/setting/variant/seed).",
        "",
        "### Claims",
        "",
        claims_section(runs, paper),
    ]
    for key in sorted(runs):
        if key[0] == search_pays_report.RECIPE:
            parts += ["", search_pays_report.section(key, runs[key])]
            continue
        if key[0] == search_pays_report.VERDICT_RECIPE:
            parts += ["", search_pays_report.verdict_section(key, runs[key])]
            continue
        if plot:
            figures.mkdir(parents=True, exist_ok=True)
            paths = plot_setting(key, runs[key], figures)
        else:
            paths = figure_paths(key, figures)
        parts += ["", setting_section(key, runs[key], paths, readme_dir)]
    parts += [
        "",
        "### Paper-scale throughput (`scripts/paper_scale.sh`)",
        "",
        paper_scale_section(paper),
        END,
    ]
    return "\n".join(parts)


def splice(readme_text, section):
    if BEGIN not in readme_text or END not in readme_text:
        raise ValueError(
            f"README: the markers {BEGIN} and {END} are missing; add them where the report goes."
        )
    head, rest = readme_text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + section + tail


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(ROOT / "recipes" / "results"))
    p.add_argument("--readme", default=str(ROOT / "recipes" / "README.md"))
    p.add_argument("--figures", default=str(ROOT / "recipes" / "figures"))
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when the README is stale")
    args = p.parse_args(argv)
    readme = pathlib.Path(args.readme)
    old = readme.read_text()
    section = generate(args.results, readme.parent, args.figures, plot=not args.check)
    new = splice(old, section)
    if args.check:
        missing = [
            line.split("](", 1)[1].rstrip(")")
            for line in section.splitlines()
            if line.startswith("![") and not (readme.parent / line.split("](", 1)[1].rstrip(")")).exists()
        ]
        if new != old or missing:
            sys.stdout.writelines(
                difflib.unified_diff(old.splitlines(True), new.splitlines(True), "README", "generated")
            )
            for m in missing:
                print(f"missing figure: {m}")
            print("recipes/README.md is out of date: run `python recipes/report.py` and commit the result.")
            return 1
        print("recipes/README.md matches recipes/results.")
        return 0
    readme.write_text(new)
    print(f"wrote {readme} and figures under {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
