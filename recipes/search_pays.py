"""Does the search pay? One Optuna study per procedure seed, through the library's own protocol
(`keras_bioact.search.run_spec`): the activation families and the tuned baselines in the same
study, repeated trials, and the verdict on the test split (issue 27 item 6).

Protocol, for each procedure seed `k` (one study, one run file):

* the space is every registered family (the default space of `bioact search`) with Adam's
  learning rate searched jointly (`[space] learning_rate`); the baselines relu, gelu and swish
  (`[space] baselines`, the default) are the study's first trials and get the same budget,
  learning-rate range and repeats as every other trial;
* each trial trains `--repeats` seeds (`[budget] repeats`; the objective is their mean);
* TPE sampler (seed `k`), no pruner, the validation split carved out of the training split with
  seed `k`; trials are ranked on it;
* at the end the verdict (`[budget] verdict_seeds`): the best trial and the best baseline are
  each retrained with the same fresh seeds and scored once on the untouched test split; the
  difference, its 95 % Welch interval, the p-value and the sentence go to the run file.

What differs from the earlier `search_pays` runs (recipes/README.md keeps their table): those ran
one study per arm (search, relu, gelu), retrained each study's best trial once and compared the
arms with Welch over the 3 procedure seeds. Here every seed gives its own verdict (the winner's
curse is removed by retraining on fresh seeds), and the summary over seeds counts the verdicts.

`--space composed` (issue 29 item 4a) runs the same protocol over composed activations instead of
the families: the expressions `u(x)`, `u1(u2(x))`, `b(u1(x), u2(x))` of `COMPOSED` as
conditional categorical choices, with the training-free pre-screen (`[space] prescreen`: each
round draws `--propose` random expressions, ranks them by a regressor on their N(0, 1) output
statistics and Fisher spectrum, fitted to the trials done, and trains the top `--prescreen-train`);
the same baselines, budget, repeats and verdict. Its run files are the variant `composed`.

`--space mixture` (issue 29 item 4b) runs the mixture cell per layer (`[mixture]` specs through
`run_spec`): every activation site of the architecture gets a softmax mixture of `MIXTURE`'s
candidates, warm-started near GELU and trained with the network by first-order alternation
(weights on training batches, mixture logits on validation batches) for `--epochs` epochs,
shrinking to one candidate per site from epoch `--shrink-start`. Its tuned baseline is the one
the families study of the same procedure seed tuned (the best of relu, gelu, swish on
validation, with its learning rate; that run file must exist): the discretized architecture and
that baseline are retrained at the baseline's tuned learning rate with the same
`--verdict-seeds` fresh seeds and scored once on the test split (the same verdict). Its run
files are the variant `mixture`.

`--transfer-from ARCH` (issue 29 item 4: does an activation selected on one task hold on
another?) trains nothing to select: it takes the best non-baseline trial that the study of
`--space` on architecture ARCH selected for the same procedure seed (its run file must exist),
retrains its activation on `--arch` with the learning rate that `--arch`'s families study tuned
for its best baseline, on that study's verdict seeds, and judges it against that baseline's
verdict scores (same seeds, same test split). Its run files are the variant
`<variant>-from-<ARCH>`.

One run file per (setting, variant, seed) goes to `--results` under `search_verdict/` (finished
runs are skipped); a study cut off mid-way resumes from its SQLite file under `--work`. `python
recipes/report.py` lists each seed's verdict in recipes/README.md.

    python recipes/search_pays.py --results recipes/results               # Fashion-MNIST MLP
    python recipes/search_pays.py --arch cnn --results recipes/results    # Fashion-MNIST CNN (5,000 x 3)
    python recipes/search_pays.py --space composed --results recipes/results  # composed + pre-screen
    python recipes/search_pays.py --dataset digits --n-trials 4 --epochs 1 --results /tmp/r  # smoke
"""

import argparse
import hashlib
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(ROOT))

from recipes.common.run_results import RunStore  # noqa: E402

RECIPE = "search_verdict"
VARIANTS = {"families": "study", "composed": "composed", "mixture": "mixture"}  # --space -> variant
# The composed space of `--space composed`: search/composed.toml's primitives and schemas.
COMPOSED = {
    "schemas": ["u(x)", "u1(u2(x))", "b(u1(x), u2(x))"],
    "unary": ["identity", "relu", "gelu", "silu", "elu", "softplus", "sigmoid", "tanh", "erf", "sin",
              "abs", "square", "softsign", "gamma", "eru", "oru"],
    "binary": ["add", "sub", "mul", "max", "min", "wsum"],
    "sharing": ["layer"],
}  # fmt: skip
# The mixture cell of `--space mixture`: search/mixture.toml's candidates and settings.
MIXTURE = {
    "candidates": ["identity", "relu", "gelu", "silu", "elu", "tanh", "softplus", "sigmoid", "gamma", "eru"],
    "warm_start": "gelu",
    "warm_weight": 0.9,
    "temperature": 1.0,
    "arch_learning_rate": 0.05,
}
KERAS_NAME = {"swish": "silu"}  # the `swish` baseline family is Keras' swish, the silu candidate
BASELINES = ("relu", "gelu", "swish")
ARCHS = {"mlp": {"template": "mlp", "hidden": [128, 128]},
         "cnn": {"template": "cnn", "filters": [16, 32], "dense": [64]}}  # fmt: skip
# The stated scale of each architecture (`--train-limit`, `--epochs` left out). The CNN's is
# smaller: one CNN training of 10,000 images x 5 epochs takes ~100 s on one of the 2 CPU cores
# here, so a seed at the MLP's scale (46 trainings) would take ~80 minutes.
SCALE = {"mlp": {"train_limit": 10000, "epochs": 5}, "cnn": {"train_limit": 5000, "epochs": 3}}


def make_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist, digits or idx:DIR")
    p.add_argument("--arch", default="mlp", choices=sorted(ARCHS))
    p.add_argument("--space", default="families", choices=sorted(VARIANTS),
                   help="families, composed expressions (pre-screened) or the mixture cell")  # fmt: skip
    p.add_argument("--propose", type=int, default=200, help="--space composed: expressions drawn per round")
    p.add_argument("--prescreen-train", type=int, default=3, help="--space composed: trained per round")
    p.add_argument("--shrink-start", type=int, default=1, help="--space mixture: epochs before shrinking")
    p.add_argument("--transfer-from", choices=sorted(ARCHS),
                   help="judge on --arch the activation --space selected on this architecture")  # fmt: skip
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="procedure seeds")
    p.add_argument("--n-trials", type=int, default=12, help="trials of each study (baselines included)")
    p.add_argument("--repeats", type=int, default=3, help="seeds per trial ([budget] repeats)")
    p.add_argument("--verdict-seeds", type=int, default=5, help="fresh seeds per arm of the verdict")
    p.add_argument("--epochs", type=int, help="epochs of every training (default: 5 MLP, 3 CNN)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-limit", type=int, help="training images (default: 10,000 MLP, 5,000 CNN)")
    p.add_argument("--val-limit", type=int, default=5000, help="validation images")
    p.add_argument("--validation-fraction", type=float, default=0.2, help="of the training split")
    p.add_argument("--lr-range", nargs=2, type=float, default=[1e-4, 1e-2], help="Adam lr, log-uniform")
    p.add_argument("--startup-trials", type=int, default=4, help="TPE's random trials before modelling")
    p.add_argument("--results", default=str(ROOT / "recipes" / "results"), help="run files go here")
    p.add_argument("--work", default=str(ROOT / "runs" / "search_verdict"), help="SQLite studies (resumable)")
    return p


def protocol(args):
    """The `config` every run file of this invocation shares (checked on resume). `--space
    families` adds no key, so its run files keep the digest they were written with."""
    config = {
        "dataset": args.dataset,
        "arch": args.arch,
        "model": ARCHS[args.arch],
        "n_trials": args.n_trials,
        "repeats": args.repeats,
        "verdict_seeds": args.verdict_seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "adam",
        "lr_range": list(args.lr_range),
        "train_limit": args.train_limit,
        "val_limit": args.val_limit,
        "validation_fraction": args.validation_fraction,
        "sampler": {"name": "tpe", "n_startup_trials": args.startup_trials},
        "pruner": "none",
        "search_families": "all registered",
        "baselines": list(BASELINES),
    }
    if args.space == "composed":
        config.update(search_families=["composed"], **composed_space(args))
    if args.transfer_from:
        lr = "the tuned baseline's of the target families study"
        config.update(transfer_from=args.transfer_from, learning_rate=lr)
    if args.space == "mixture":
        config.update(mixture={**MIXTURE, "epochs": args.epochs, "shrink_start": args.shrink_start},
                      baseline_from="the families study (variant study) of the same seed")  # fmt: skip
    return config


def composed_space(args):
    """The `[space]` keys of `--space composed`: the expressions and the pre-screen."""
    return {"composed": COMPOSED, "prescreen": {"propose": args.propose, "train": args.prescreen_train}}


def work_name(args, config, seed):
    """The name of one procedure seed's study (and work folder): setting, variant (none for
    the families), seed and the protocol's digest."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    variant = VARIANTS[args.space] + (f"-from-{args.transfer_from}" if args.transfer_from else "")
    tag = "" if variant == VARIANTS["families"] else f"{variant}-"
    return f"{args.dataset}-{args.arch}-{tag}seed{seed}-{digest}"


def data_table(args, seed):
    """The `[data]` table of one procedure seed (its validation split is seeded by it)."""
    return {
        "name": args.dataset,
        "validation_fraction": args.validation_fraction,
        "seed": seed,
        "max_train": args.train_limit,
        "max_val": args.val_limit,
    }


def spec_for(args, seed, storage, study_name):
    """The search specification (a `SearchSpec`) of one procedure seed."""
    from keras_bioact.search import parse_spec

    budget = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": 1000 * seed,
        "repeats": args.repeats,
        "verdict_seeds": args.verdict_seeds,
    }
    space = {"learning_rate": list(args.lr_range), "baselines": list(BASELINES)}
    if args.space == "composed":
        space.update(families=["composed"], **composed_space(args))
    raw = {
        "optuna": {
            "study": study_name,
            "storage": storage,
            "n_trials": args.n_trials,
            "metric": "val_accuracy",
            "sampler": {"name": "tpe", "seed": seed, "n_startup_trials": args.startup_trials},
            "pruner": {"name": "none"},
        },
        "data": data_table(args, seed),
        "model": dict(ARCHS[args.arch]),
        "budget": budget,
        "space": space,
    }
    return parse_spec(raw, source=f"search_pays:{study_name}")


def run_seed(args, config, seed, log=print):
    """Run (or resume) one procedure seed's study with its verdict; returns the run record."""
    import optuna

    from keras_bioact import search

    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    name = work_name(args, config, seed)
    spec = spec_for(args, seed, f"sqlite:///{work / name}.db", name)
    start = time.perf_counter()
    result = search.run_spec(spec, progress=False, log=log)
    wall = time.perf_counter() - start
    v = result.verdict
    if v is None:
        raise RuntimeError(f"study {name}: no verdict ({result.test_error or 'no complete trial'})")
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "val_accuracy": t.value if t.values else None,
            "family": (t.user_attrs.get("activation") or {}).get("family"),
            "expression": (t.user_attrs.get("activation") or {}).get("expression"),
            "learning_rate": t.params.get("learning_rate"),
            "params": dict(t.params),
            "fit_seconds": t.user_attrs.get("fit_seconds"),
        }
        for t in result.study.get_trials(deepcopy=False)
        if t.state != optuna.trial.TrialState.RUNNING
    ]
    rec = record(
        args,
        v,
        wall,
        trials=trials,
        study={"name": name, "storage": spec.storage},
        # the pre-screen's rank correlation on candidates it had not seen (--space composed)
        prescreen_spearman=result.study.user_attrs.get("prescreen_spearman"),
    )
    rec["metrics"].update(
        best_validation=v.best_validation,
        baseline_validation=v.baseline_validation,
        n_trials=len(trials),
        n_failed=sum(t["state"] == "FAIL" for t in trials),
    )
    return rec


def record(args, v, wall, **extra):
    """The run record of a verdict `v` that took `wall` seconds; `extra` goes to the run file."""
    metrics = {
        "best_test_accuracy": v.best_mean,
        "baseline_test_accuracy": v.baseline_mean,
        "difference": v.difference,
        "p_value": v.p_value,
        "n_test": v.n_test,
    }
    architecture = f"{args.arch} {ARCHS[args.arch]}"
    extra = {"architecture": architecture, "verdict": v.to_dict(), **extra}
    return {"metrics": metrics, "curves": {}, "extra": extra, "wall_time_s": wall}


def tuned_baseline(study_run):
    """`(family, learning rate, trial number)` of the baseline a families study's run file
    tuned: the one its verdict judged against (the best baseline on validation), or its best
    trial when only baselines completed."""
    v = study_run["verdict"]
    number = v.get("baseline_trial")
    if number is None and v.get("outcome") == "only_baselines":
        number = v.get("best_trial")
    if number is None:
        seed = study_run["seed"]
        raise SystemExit(f"search_pays: the families study of seed {seed} has no tuned baseline")
    best = next(t for t in study_run["trials"] if t["number"] == number)
    return best["family"], best["learning_rate"], best["number"]


def run_mixture_seed(args, config, seed, study_run, log=print):
    """The mixture search of one procedure seed and its verdict against the tuned baseline of
    the families study `study_run` (a run dict); returns the run record."""
    from keras_bioact import search
    from keras_bioact.search import parse_spec

    family, learning_rate, trial = tuned_baseline(study_run)
    baseline = KERAS_NAME.get(family, family)
    name = work_name(args, config, seed)
    raw = {
        "mixture": {**config["mixture"], "seeds": args.verdict_seeds, "baseline": baseline},
        "data": data_table(args, seed),
        "model": dict(ARCHS[args.arch]),
        "budget": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": learning_rate,
                   "seed": 1000 * seed},
        "output": {"dir": str(pathlib.Path(args.work) / name)},
    }  # fmt: skip
    spec = parse_spec(raw, source=f"search_pays:{name}")
    start = time.perf_counter()
    result = search.run_spec(spec, progress=False, log=log)
    wall = time.perf_counter() - start
    tuned = {"family": family, "learning_rate": learning_rate, "trial": trial}
    return record(args, result.verdict, wall, chosen=result.chosen, tuned_baseline=tuned,
                  history=result.history)  # fmt: skip


def run_transfer_seed(args, config, seed, source, target, log=print):
    """Judge the activation that the study of run file `source` (another architecture) selected,
    on this architecture against the tuned baseline of the families study `target` (run dicts)."""
    from keras_bioact.search import verdict as verdict_lib
    from keras_bioact.search.optuna.holdout import retrain_on_test

    chosen = source["verdict"]
    trials = {t["number"]: t for t in source["trials"]}
    best = trials.get(chosen.get("best_trial"))
    if best is None or "params" not in best:
        raise SystemExit(f"search_pays: the {args.transfer_from} run file of seed {seed} has no selected "
                         "non-baseline trial with its parameters (rerun it with this script)")  # fmt: skip
    base = target["verdict"]
    _, lr, number = tuned_baseline(target)
    if number != base.get("baseline_trial"):  # only baselines completed: no baseline verdict scores
        raise SystemExit(f"search_pays: the {args.arch} families study of seed {seed} has no baseline scores")
    params = {**best["params"], "learning_rate": lr}
    name = work_name(args, config, seed)
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    spec = spec_for(args, seed, f"sqlite:///{work / name}.db", name)
    seeds = verdict_lib.verdict_seeds(spec.budget)
    if list(seeds) != list(base["seeds"]):
        raise SystemExit(f"search_pays: verdict seeds {seeds} differ from the target study's {base['seeds']}")
    label = f"{best['expression'] or best['family']} (from {args.transfer_from} trial {best['number']})"
    start = time.perf_counter()
    scores = retrain_on_test(spec, params, seeds, log=log, name=label)
    wall = time.perf_counter() - start
    v = verdict_lib.compare(
        label,
        scores,
        base["baseline"],
        base["baseline_scores"],
        metric="test_accuracy",
        seeds=seeds,
        baseline_trial=base["baseline_trial"],
        n_test=base.get("n_test"),
    )
    for line in v.lines():
        log(line)
    transferred = {"from": args.transfer_from, "trial": best["number"], "family": best["family"],
                   "expression": best.get("expression"), "params": params,
                   "source_validation": best["val_accuracy"]}  # fmt: skip
    return record(args, v, wall, transferred=transferred)


def main(argv=None):
    args = make_parser().parse_args(argv)
    given = {key: getattr(args, key) for key in SCALE[args.arch]}  # None: the architecture's scale
    for key, value in SCALE[args.arch].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.n_trials, args.epochs, args.repeats) < 1 or args.verdict_seeds < 2:
        raise SystemExit("search_pays: --n-trials, --epochs, --repeats >= 1 and --verdict-seeds >= 2.")
    if not 1 <= args.prescreen_train <= args.propose:
        got = f"{args.prescreen_train}, {args.propose}"
        raise SystemExit(f"search_pays: 1 <= --prescreen-train <= --propose, got {got}.")
    if not 0 < args.lr_range[0] <= args.lr_range[1] <= 10:
        raise SystemExit(f"search_pays: --lr-range must satisfy 0 < low <= high <= 10, got {args.lr_range}.")
    if args.space == "mixture" and not 0 <= args.shrink_start < args.epochs:
        got = f"{args.shrink_start}, {args.epochs}"
        raise SystemExit(f"search_pays: 0 <= --shrink-start < --epochs, got {got}.")
    config = protocol(args)
    store = RunStore(args.results, RECIPE, config)
    setting, variant = f"{args.dataset}-{args.arch}", VARIANTS[args.space]
    if args.transfer_from:
        if args.space == "mixture" or args.transfer_from == args.arch:
            raise SystemExit("search_pays: --transfer-from: --space families or composed, another --arch.")
        source_args = argparse.Namespace(**{**vars(args), "arch": args.transfer_from, "transfer_from": None})
        for key, value in SCALE[args.transfer_from].items():  # the source study ran at its own scale
            setattr(source_args, key, value if given[key] is None else given[key])
        sources = RunStore(args.results, RECIPE, protocol(source_args))
        variant = f"{variant}-from-{args.transfer_from}"
    if args.space == "mixture" or args.transfer_from:  # each seed's families study tuned the baseline
        families = argparse.Namespace(**{**vars(args), "space": "families", "transfer_from": None})
        studies = RunStore(args.results, RECIPE, protocol(families))
    for seed in args.seeds:
        if store.existing(setting, variant, seed) is not None:
            print(f"{setting} {variant} seed {seed}: done, skipped")
            continue
        what = (f"the mixture cell ({args.epochs} epochs)" if args.space == "mixture"
                else f"the {args.transfer_from} study's choice" if args.transfer_from
                else f"{args.n_trials} trials x {config['repeats']} repeats")  # fmt: skip
        print(f"{setting} {variant} seed {seed}: {what}, then the verdict ({args.verdict_seeds} seeds per "
              "arm) ...", flush=True)  # fmt: skip
        if args.transfer_from:
            source = sources.existing(f"{args.dataset}-{args.transfer_from}", VARIANTS[args.space], seed)
            target = studies.existing(setting, VARIANTS["families"], seed)
            if source is None or target is None:
                raise SystemExit(f"search_pays: --transfer-from needs the {args.transfer_from} study of "
                                 f"--space {args.space} and the {args.arch} families study of seed {seed} "
                                 "first.")  # fmt: skip
            rec = run_transfer_seed(args, config, seed, source, target)
        elif args.space == "mixture":
            study_run = studies.existing(setting, VARIANTS["families"], seed)
            if study_run is None:
                flags = " ".join(a for a in (argv or sys.argv[1:]) if a not in ("--space", "mixture"))
                raise SystemExit(f"search_pays: --space mixture tunes no baseline of its own: run the "
                                 f"families study of seed {seed} first (`python recipes/search_pays.py "
                                 f"{flags}`).")  # fmt: skip
            rec = run_mixture_seed(args, config, seed, study_run)
        else:
            rec = run_seed(args, config, seed)
        path = store.save(setting, variant, seed, metrics=rec["metrics"], curves=rec["curves"],
                          extra=rec["extra"], wall_time_s=rec["wall_time_s"])  # fmt: skip
        verdict = rec["extra"]["verdict"]["verdict"]
        print(f"{setting} {variant} seed {seed}: {verdict}; {rec['wall_time_s']:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
