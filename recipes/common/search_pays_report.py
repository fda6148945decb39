"""The "Does the search pay?" part of recipes/README.md (issue 15 item 3), used by report.py.

Kept out of report.py so the claim and its table live next to each other: `CLAIMS` is appended to
report.py's claims, `section(key, variants)` writes the table of one setting of the earlier
per-arm protocol (`search_pays` run files), `verdict_section` the table of the verdict protocol
that `recipes/search_pays.py` runs now (`search_verdict` run files: one study and one verdict
per procedure seed), and `NOT_RUN` / `verdict_not_run` list the parts of the comparison that
have no run files yet. Pure Python, no Keras.
"""

import math

from keras_bioact.search.verdict import compare
from keras_bioact.stats import describe
from recipes.common.tables import fmt, fmt_p, fmt_stat, table, values

RECIPE = "search_pays"
WHY = "3 procedure seeds: `python recipes/search_pays.py --results recipes/results` (finished runs skipped)"
CNN_WHY = (
    "3 procedure seeds: `python recipes/search_pays.py --arch cnn --results recipes/results` (finished runs "
    "are skipped)"
)
EVOLVE_WHY = (
    "3 procedure seeds: `python recipes/search_pays.py --arms evolve --results recipes/results` (finished "
    "runs are skipped)"
)


def _claim(candidate, what, arch, why, budget="the same trials"):
    return {
        "paper": "keras-bioact",
        "claim": f"{what} beats ReLU and GELU given {budget} to tune their learning rate "
        f"(Fashion-MNIST {arch.upper()})",
        "recipe": RECIPE,
        "setting": f"fashion_mnist-{arch}",
        "metric": "test_accuracy",
        "better": "higher",
        "candidates": (candidate,),
        "baselines": ("relu", "gelu"),
        "planned_seeds": 3,
        "why": why,
    }


SEARCH = "search beats tuned ReLU/GELU: the best trial of an Optuna search over the families"
CLAIMS = [
    _claim("search", SEARCH, "mlp", WHY),
    _claim("search", SEARCH, "cnn", CNN_WHY),
    _claim("evolve", "Baldwinian evolution of per-neuron gamma", "mlp", EVOLVE_WHY, "about as many epochs"),
]
NOT_RUN = (
    "Does the search pay at the papers' training budgets (all 60,000 training images, tens of epochs, "
    "more trials)? Not run: the `search_pays` runs use the reduced scale stated in their table, chosen "
    "to finish on the 2-core CPU (issue 15 item 3)",
    "Baldwinian evolution of per-neuron gamma on the CNN (`--arch cnn --arms evolve` of the per-arm "
    "`recipes/search_pays.py` before issue 27): not run, the CPU went "
    "to the paper claims' seeds; the arm works on the CNN (a 4 x 1 smoke run on 256 images finished, at "
    "nice 19 beside two recipes that held both cores, so its 641 s say little about a quiet run)",
)


def section(key, variants):
    """Markdown of one `search_pays` setting: protocol, then one row per arm."""
    recipe, setting = key
    cfg = next(iter(variants.values()))[0]["config"]
    model = ", ".join(f"{k} {v}" for k, v in cfg["model"].items() if k != "template")
    lines = [
        f"### `{recipe}` · {setting}: does the search pay?",
        "",
        "The earlier per-arm protocol (`recipes/search_pays.py` as of issue 15, in the git history; the "
        "script now runs the verdict protocol, see the verdict-protocol table where it has run files). "
        f"Each arm is one Optuna study per procedure seed with the same budget: {cfg['n_trials']} trials "
        f"(TPE, {cfg['sampler']['n_startup_trials']} random start-up trials, no pruning), each training "
        f"`{cfg['arch']}` ({model}) for {cfg['epochs']} epochs (batch {cfg['batch_size']}, Adam) on "
        f"{cfg['train_limit']:,} {cfg['dataset']} training images, with the learning rate searched "
        f"log-uniformly in {cfg['lr_range']}; arm `search` also searches the activation over every "
        "registered family (the default space of `bioact search`), `relu` / `gelu` only their learning "
        f"rate. Trials are ranked on a validation split of {cfg['val_limit']:,} images carved out of the "
        "training split (seeded by the procedure seed); the best trial is retrained once and scored on "
        "the untouched test split. This is a reduced scale chosen to fit a 2-core CPU, not the papers' "
        "training budgets. Mean ± sample std over procedure seeds [95 % t-interval].",
    ]
    evo = next((r["config"]["evolution"] for r in variants.get("evolve", [])), None)
    if evo:
        start = describe(values(variants["evolve"], "start_test_accuracy"))
        before = describe(values(variants["evolve"], "test_accuracy_before_learning"))
        lines[-1] += (
            f" Arm `evolve`: heterogeneous gamma ({evo['init']} init) trained {cfg['epochs']} epochs with "
            f"Adam (lr {evo['pretrain_learning_rate']}, gamma held), then {evo['algorithm'].upper()} evolves "
            f"every neuron's (n, s) for {evo['generations']} generations of {evo['popsize']} candidates, "
            f"each learning {evo['train_epochs']} epoch (SGD lr {evo['sgd_learning_rate']}) before it is "
            "scored on validation (Baldwinian: the learning is discarded); its val and test accuracy "
            "are those of the best genome after that same learning (what `bioact search` reports as "
            "`best_test_accuracy`). Without the learning the best genome scores "
            + fmt_stat(before, 2, 100)
            + " % on the test split, and the start model itself (pretrained, gamma at its initial "
            "values, before evolution) " + fmt_stat(start, 2, 100) + " %."
        )
    lines.append("")
    rows = []
    for arm, recs in sorted(variants.items()):
        test = describe(values(recs, "test_accuracy"))
        val = describe(values(recs, "val_accuracy"))
        chosen = "; ".join(
            f"{r['seed']}: {r['chosen']['family']}"
            + (f" (lr {fmt(r['chosen']['learning_rate'], 4)})" if r["chosen"]["learning_rate"] else "")
            for r in recs
        )
        wall = describe([r.get("wall_time_s") for r in recs])
        rows.append(
            [
                arm,
                test["n"],
                fmt_stat(test, 2, 100),
                fmt_stat(val, 2, 100),
                chosen,
                fmt(wall["mean"] / 60, 1),
            ]
        )
    hdr = ["arm", "n", "test accuracy % (held out)", "val accuracy % (selection)",
           "chosen per seed", "min / study (wall, shared machine)"]  # fmt: skip
    lines.append(table(hdr, rows))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The verdict protocol (issue 27 item 6): one study per procedure seed, with its own verdict.

VERDICT_RECIPE = "search_verdict"
VERDICT_COMMANDS = (
    "`python recipes/search_pays.py --results recipes/results` (MLP) and `python recipes/search_pays.py "
    "--arch cnn --results recipes/results` (CNN), 3 procedure seeds each"
)


def verdict_not_run(runs):
    """The not-run lines of the verdict protocol's settings and spaces without run files (empty
    when all have run)."""
    lines = []
    spaces = (
        ("study", "Does the search pay", ""),
        ("composed", "Does a composed-activation search with the pre-screen pay", " --space composed"),
        ("mixture", "Does the mixture cell per layer pay", " --space mixture"),
    )
    settings = ("fashion_mnist-mlp", "fashion_mnist-cnn")
    for variant, what, flag in spaces:
        missing = [s for s in settings if variant not in runs.get((VERDICT_RECIPE, s), {})]
        if not missing:
            continue
        commands = VERDICT_COMMANDS.replace("search_pays.py --", f"search_pays.py{flag} --")
        lines.append(
            f"{what} under the verdict protocol (each seed one study with tuned baselines, repeated trials "
            f"and a verdict on fresh seeds; `{VERDICT_RECIPE}`, {', '.join(missing)})? Not run yet: "
            + commands
        )
    return lines


def _trial(number):
    return "" if number is None else f" (trial {number})"


def _baseline(verdict, run):
    """The baseline column: the verdict's baseline and its trial (for the mixture, the trial of
    the families study that tuned it, and its learning rate)."""
    tuned = run.get("tuned_baseline")
    if tuned:
        return f"{tuned['family']} (families study trial {tuned['trial']}, lr {tuned['learning_rate']:.2g})"
    return verdict["baseline"] + _trial(verdict.get("baseline_trial")) if verdict.get("baseline") else "-"


def _named(best, run):
    """The verdict's name of the best trial, with its expression when it is a composed one and
    the choice per layer for the mixture."""
    if run.get("chosen"):
        return "mixture: " + ", ".join(run["chosen"].values())
    trial = next((t for t in run.get("trials", []) if t["number"] == run["verdict"].get("best_trial")), {})
    return f"`{trial['expression']}`" if trial.get("expression") else best


def _mean_ci(mean, ci, scale=100):
    lo, hi = ci or (None, None)
    return f"{fmt(mean, 2, scale)} [{fmt(lo, 2, scale)}, {fmt(hi, 2, scale)}]"


def verdict_section(key, variants):
    """Markdown of one setting of the verdict protocol: per space searched (variant `study`, the
    families; `composed`, composed expressions with the pre-screen; `mixture`, the mixture cell
    against the families study's tuned baseline), one row per procedure seed
    with its verdict, then the count of verdicts and the mean difference over seeds."""
    order = ["study", "composed", "mixture"]
    order += sorted(v for v in variants if v not in order)  # `<variant>-from-<arch>`: transfers
    families = {r["seed"]: r for r in variants.get("study", [])}
    return "\n\n".join(_verdict_table(key, v, variants[v], families) for v in order if v in variants)


def _space_sentence(cfg):
    if "composed" not in cfg:
        return "the space is every registered family (the default space of `bioact search`)"
    c, p = cfg["composed"], cfg["prescreen"]
    return (
        f"the space is composed activations (`--space composed`): the schemas {', '.join(c['schemas'])} over "
        f"{len(c['unary'])} unary and {len(c['binary'])} binary primitives (`recipes/search_pays.py` "
        f"`COMPOSED`), learnable scalars per layer, functionally equal expressions trained once; after "
        f"the baselines every trial comes from the training-free pre-screen, in rounds that draw "
        f"{p['propose']} random expressions, rank them by a ridge regressor on their N(0, 1) output "
        f"statistics and Fisher spectrum at initialisation (fitted to the trials done) and train the top "
        f"{p['train']}"
    )


def _study_protocol(cfg, model):
    return (
        "Each procedure seed is one Optuna study through `keras_bioact.search.run_spec`; "
        f"{_space_sentence(cfg)}. "
        f"{cfg['n_trials']} "
        f"trials (TPE, {cfg['sampler']['n_startup_trials']} random start-up trials, no pruning), the "
        f"baselines {', '.join(cfg['baselines'])} enqueued as its first trials, every trial training "
        f"`{cfg['arch']}` ({model}) {cfg['repeats']} time(s) (`repeats`, the objective is the mean) for "
        f"{cfg['epochs']} epochs (batch {cfg['batch_size']}, Adam, learning rate searched in "
        f"{cfg['lr_range']}) on up to {cfg['train_limit']:,} {cfg['dataset']} training images, ranked "
        f"on a validation split of up to {cfg['val_limit']:,} images (seeded by the procedure seed). The "
        "verdict: the "
        f"best trial and the best baseline, each retrained with the same {cfg['verdict_seeds']} fresh seeds "
        "and scored once on the test split; difference best - baseline with its 95 % Welch interval and "
        "two-sided p; *beats* when the interval excludes 0 on the better side (docs/search.md). Unlike "
        "the per-arm table above (one study per arm, its best retrained once, arms compared over the "
        "seeds), each seed here gives its own verdict. Test accuracy % of each arm: mean over the "
        "verdict's seeds [95 % t-interval]."
    )


def _mixture_protocol(cfg):
    m = cfg["mixture"]
    return (
        "Each procedure seed runs the mixture cell per layer (`--space mixture`, a `[mixture]` spec "
        f"through `keras_bioact.search.run_spec`): every activation site of `{cfg['arch']}` gets a "
        f"softmax mixture of {', '.join(m['candidates'])}, warm-started at {m['warm_start']} (weight "
        f"{m['warm_weight']}), trained with the network by first-order alternation (weights on training "
        f"batches, mixture logits on validation batches, Adam {m['arch_learning_rate']}) for "
        f"{m['epochs']} epochs and shrunk to one candidate per site from epoch {m['shrink_start']}, on up "
        f"to {cfg['train_limit']:,} {cfg['dataset']} training images and a validation split of up to "
        f"{cfg['val_limit']:,} (seeded by the procedure seed). The baseline is the one the families "
        f"study of the same seed tuned (the best of {', '.join(cfg['baselines'])} on validation, with its "
        "learning rate). The verdict: the discretized architecture and that baseline, each retrained at "
        f"the baseline's tuned learning rate with the same {cfg['verdict_seeds']} fresh seeds for "
        f"{cfg['epochs']} epochs and scored once on the test split; difference with its 95 % Welch "
        "interval and two-sided p. Test accuracy % of each arm: mean over the verdict's seeds [95 % "
        "t-interval]."
    )


SPACE_NAMES = {"study": "families", "composed": "composed"}


def _transfer_protocol(cfg, variant):
    space = SPACE_NAMES[variant.partition("-from-")[0]]
    source = cfg["transfer_from"]
    return (
        f"Does an activation selected on one task hold on another (`--transfer-from {source}`)? Each "
        f"procedure seed takes the best non-baseline trial that the {space} study on the {source} "
        f"selected on its validation split (its table under the {source} setting), retrains its activation "
        f"on `{cfg['arch']}` at the learning rate this architecture's families study tuned for its best "
        f"baseline, with that study's {cfg['verdict_seeds']} verdict seeds for {cfg['epochs']} epochs, and "
        "judges it against that baseline's verdict scores (same seeds, same test split); nothing is selected "
        "on this architecture. Test accuracy % of each arm: mean over the verdict's seeds [95 % t-interval]."
    )


def _against_families(recs, families):
    """For a composed study: its best composed trial's verdict scores against the baseline that
    the families study of the same seed tuned (that space may sample a baseline more than once),
    where both verdicts ran on the same seeds; None when no seed has such a pair."""
    each = []
    for r in recs:
        fam = families.get(r["seed"], {}).get("verdict") or {}
        v = r["verdict"]
        if not fam.get("baseline") or fam.get("seeds") != v.get("seeds"):
            continue
        c = compare(v["best"], v["best_scores"], fam["baseline"], fam["baseline_scores"],
                    metric=v["metric"], direction=v.get("direction"), seeds=v["seeds"])  # fmt: skip
        each.append(
            f"seed {r['seed']}: {fam['baseline']} (families trial {fam.get('baseline_trial')}) "
            f"{_mean_ci(c.difference, c.ci95)}, p = {fmt_p(c.p_value)}"
        )
    if not each:
        return None
    return (
        "Against the baseline the families study of the same seed tuned (its verdict scores on the same "
        "seeds and test split; in a composed study each baseline is one enqueued trial with one "
        "learning-rate draw, while the families space can sample a baseline again), the best composed "
        "trial's difference, points [95 % Welch CI]: " + "; ".join(each) + "."
    )


def _verdict_table(key, variant, runs, families=None):
    recipe, setting = key
    recs = sorted(runs, key=lambda r: r["seed"])
    cfg = recs[0]["config"]
    model = ", ".join(f"{k} {v}" for k, v in cfg["model"].items() if k != "template")
    titles = {"study": "does the search pay?", "composed": "does a composed-activation search pay?",
              "mixture": "does the mixture cell pay?"}  # fmt: skip
    source = cfg.get("transfer_from")
    space = SPACE_NAMES.get(variant.partition("-from-")[0])
    title = f"does what the {space} search selected on the {source} hold here?"
    lines = [f"### `search_pays` (verdict protocol) · {setting}: {titles.get(variant, title)}", ""]
    if source:
        lines += [_transfer_protocol(cfg, variant), ""]
    elif variant == "mixture":
        lines += [_mixture_protocol(cfg), ""]
    else:
        lines += [_study_protocol(cfg, model), ""]
    rows, diffs, outcomes = [], [], []
    for r in recs:
        v = r["verdict"]
        rows.append(
            [
                r["seed"],
                _named(v["best"], r) + _trial(v.get("best_trial")),
                _mean_ci(v.get("best_mean"), v.get("best_ci95")),
                _baseline(v, r),
                _mean_ci(v.get("baseline_mean"), v.get("baseline_ci95")),
                _mean_ci(v.get("difference"), v.get("ci95")),
                fmt_p(v.get("p_value")),
                v["verdict"],
                fmt((r.get("wall_time_s") or math.nan) / 60, 1),
            ]
        )
        diffs.append(v.get("difference"))
        outcomes.append(v.get("outcome"))
    hdr = ["seed", "best activation (by validation; if a baseline, its best rival)", "its test %",
           "best baseline", "its test %", "difference, points [95 % CI]", "p (Welch)", "verdict",
           "min / study (wall, shared)"]  # fmt: skip
    lines.append(table(hdr, rows))
    d = describe([x * 100 if x is not None else None for x in diffs])
    counts = ", ".join(f"{outcomes.count(o)} {o.replace('_', ' ')}" for o in sorted(set(outcomes)))
    lines += [
        "",
        f"Over the {len(recs)} procedure seed(s): {counts}; mean difference {fmt(d['mean'], 2)} points "
        f"[95 % t-interval over seeds {fmt(d['ci95'][0], 2)}, {fmt(d['ci95'][1], 2)}].",
    ]
    if variant == "composed" and (line := _against_families(recs, families or {})):
        lines.append(line)
    rhos = [(r["seed"], r.get("prescreen_spearman")) for r in recs if r.get("prescreen_spearman")]
    if rhos:
        each = "; ".join(f"seed {k}: {fmt(x['rho'], 2)} (n = {x['n']})" for k, x in rhos)
        lines.append(
            "Pre-screen: Spearman's rho between each pre-screened trial's predicted value (made before it "
            "was trained, by a regressor fitted on earlier trials only) and its trained validation "
            f"accuracy: {each}."
        )
    return "\n".join(lines)
