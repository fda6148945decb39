"""The "Does the search pay?" part of recipes/README.md (issue 15 item 3), used by report.py.

Kept out of report.py so the claim and its table live next to each other: `CLAIMS` is appended to
report.py's claims, `section(key, variants)` writes the table of one setting of
`recipes/search_pays.py`, and `NOT_RUN` lists the parts of the comparison that have no run files
yet. Pure Python, no Keras.
"""

from keras_bioact.stats import describe
from recipes.common.tables import fmt, fmt_stat, table, values

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
    "Baldwinian evolution of per-neuron gamma on the CNN (`--arch cnn --arms evolve`): not run, the CPU went "
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
            "values, before evolution) "
            + fmt_stat(start, 2, 100)
            + " %."
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
