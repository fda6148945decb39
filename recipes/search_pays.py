"""Does the search pay? An Optuna search over the activation families against ReLU and GELU
baselines that get the same trial budget to tune their own learning rate (issue 15, item 3).

Protocol, for each procedure seed `k` and each arm:

* `search`: `[space] families` = every registered family (the default space of `bioact search`),
  plus `learning_rate = [low, high]` (Adam's learning rate, searched jointly);
* `relu`, `gelu`: `families = ["relu"]` / `["gelu"]` with the same `learning_rate` range, so the
  baseline's trials tune its learning rate only;
* `evolve` (opt-in, `--arms ... evolve`): Baldwinian evolution of per-neuron gamma (`bioact search`'s
  `[evolution]` engine, `keras_bioact.search.evolution.runner`): the same template with heterogeneous
  gamma (the papers' init) is trained `--epochs` epochs with Adam (the default learning rate, gamma
  held), then SNES evolves every neuron's `(n, s)` for `--evo-generations` generations of
  `--evo-popsize` candidates, each learning for one epoch (SGD, learning discarded) before it is scored
  on the validation split; the best genome on the start weights is scored on the test split. Its
  training budget in epochs, `epochs + popsize * generations`, defaults to about the Optuna arms'
  `n_trials * epochs`.

Every arm runs one study through the library's own search API (`keras_bioact.search`: spec,
`create_study`, `run`, `holdout.score_on_test`) with the same `n_trials`, TPE sampler (seed `k`),
no pruner, the same model template, training budget and data: the validation split is carved out
of the training split with seed `k` (`data.validation_fraction`), trials are ranked on it, and the
best trial is retrained once (its own seed) and scored on the untouched test split. One run file
per (setting, arm, seed) goes to `--results` (`recipes.common.run_results`); finished runs are
skipped, and a study cut off mid-way resumes from its SQLite file under `--work`.
`python recipes/report.py` turns the files into the README's table and the claim
"search beats tuned ReLU/GELU" (one-sided Welch over the procedure seeds).

    python recipes/search_pays.py --results recipes/results               # the MLP comparison
    python recipes/search_pays.py --arch cnn --results recipes/results    # the CNN comparison
    python recipes/search_pays.py --dataset digits --n-trials 2 --epochs 1 --results /tmp/r  # smoke
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

RECIPE = "search_pays"
ARMS = ("search", "relu", "gelu", "evolve")
ARCHS = {"mlp": {"template": "mlp", "hidden": [128, 128]},
         "cnn": {"template": "cnn", "filters": [16, 32], "dense": [64]}}  # fmt: skip


def make_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist, digits or idx:DIR")
    p.add_argument("--arch", default="mlp", choices=sorted(ARCHS))
    p.add_argument("--arms", nargs="+", default=list(ARMS[:3]), choices=ARMS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="procedure seeds")
    p.add_argument("--n-trials", type=int, default=12, help="trials of every arm's study")
    p.add_argument("--epochs", type=int, default=5, help="epochs of every trial")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-limit", type=int, default=10000, help="training images (after the val split)")
    p.add_argument("--val-limit", type=int, default=5000, help="validation images")
    p.add_argument("--validation-fraction", type=float, default=0.2, help="of the training split")
    p.add_argument("--lr-range", nargs=2, type=float, default=[1e-4, 1e-2], help="Adam lr, log-uniform")
    p.add_argument("--startup-trials", type=int, default=4, help="TPE's random trials before modelling")
    p.add_argument("--evo-popsize", type=int, default=8, help="evolve arm: SNES population")
    p.add_argument("--evo-generations", type=int, default=7, help="evolve arm: generations")
    p.add_argument("--results", default=str(ROOT / "recipes" / "results"), help="run files go here")
    p.add_argument("--work", default=str(ROOT / "runs" / "search_pays"), help="SQLite studies (resumable)")
    return p


def protocol(args):
    """The `config` every run file of this invocation shares (checked on resume)."""
    return {
        "dataset": args.dataset,
        "arch": args.arch,
        "model": ARCHS[args.arch],
        "n_trials": args.n_trials,
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
    }


def data_table(args, seed):
    """The spec's `[data]` table of every arm: the training subset and the validation split carved
    out of it by the procedure seed; the test split is untouched."""
    return {
        "name": args.dataset,
        "validation_fraction": args.validation_fraction,
        "seed": seed,
        "max_train": args.train_limit,
        "max_val": args.val_limit,
    }


def evolve_protocol(args):
    """The evolve arm's extra `config` keys (its run files carry them, the others' do not)."""
    return {
        "evolution": {
            "target": "gamma",
            "regime": "heterogeneous",
            "init": "paper",
            "granularity": "element",
            "algorithm": "snes",
            "popsize": args.evo_popsize,
            "generations": args.evo_generations,
            "mode": "baldwinian",
            "train_epochs": 1,
            "sgd_learning_rate": 0.05,
            "pretrain_learning_rate": 1e-3,
            # the best solution is scored after the same brief learning its fitness measured
            "test_scored": "after learning",
        }
    }


def spec_for(args, arm, seed, storage, study_name):
    """The search specification (a `SearchSpec`) of one arm and procedure seed."""
    from keras_bioact.search import parse_spec

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
        "budget": {"epochs": args.epochs, "batch_size": args.batch_size, "seed": 1000 * seed},
        # the arms are the baselines here: no study gets the others' baselines enqueued
        "space": {"learning_rate": list(args.lr_range), "baselines": []},
    }
    if arm != "search":
        raw["space"]["families"] = [arm]
    return parse_spec(raw, source=f"search_pays:{study_name}")


def run_arm(args, config, arm, seed, log=print):
    """Run (or resume) one arm's study, score its best trial on test; returns the run record."""
    import optuna

    from keras_bioact import search
    from keras_bioact.search.optuna import holdout

    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    name = f"{args.dataset}-{args.arch}-{arm}-seed{seed}-{digest}"
    spec = spec_for(args, arm, seed, f"sqlite:///{work / name}.db", name)
    study = search.create_study(
        name, spec.storage, spec.directions, search.sampler_from_spec(spec), search.pruner_from_spec(spec)
    )
    start = time.perf_counter()

    def on_trial(st, t):
        fam = (t.user_attrs.get("activation") or {}).get("family", "?")
        log(f"  {name} trial {t.number}: {t.state.name} {fam} lr={t.params.get('learning_rate', '-')} "
            f"val={t.value if t.values else '-'}")  # fmt: skip

    search.run(study, search.objective_from_spec(spec), n_trials=spec.n_trials, on_trial=on_trial)
    scores = holdout.score_on_test(spec, study, k=1, log=log)
    wall = time.perf_counter() - start
    best = holdout._top(study, 1)
    if not best:
        raise RuntimeError(f"study {name}: no complete trial (all {spec.n_trials} diverged or failed)")
    best = best[0]
    test = scores[best.number]
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "val_accuracy": t.value if t.values else None,
            "family": (t.user_attrs.get("activation") or {}).get("family"),
            "learning_rate": t.params.get("learning_rate"),
            "fit_seconds": t.user_attrs.get("fit_seconds"),
        }
        for t in study.get_trials(deepcopy=False)
        if t.state != optuna.trial.TrialState.RUNNING
    ]
    history = best.user_attrs.get("history", {})
    return {
        "metrics": {
            "test_accuracy": test["value"],
            "test_error": 1.0 - test["value"],
            "val_accuracy": best.value,
            "n_test": test["n_test"],
            "n_trials": len(trials),
            "n_failed": sum(t["state"] == "FAIL" for t in trials),
        },
        "curves": {"loss": history.get("loss", []), "val_accuracy": history.get("val_accuracy", [])},
        "extra": {
            "architecture": f"{args.arch} {ARCHS[args.arch]}",
            "chosen": {
                "trial": best.number,
                "family": best.user_attrs.get("activation", {}).get("family"),
                "learning_rate": best.params.get("learning_rate"),
                "params": dict(best.params),
                "activation": best.user_attrs.get("activation"),
            },
            "trials": trials,
            "study": {"name": name, "storage": spec.storage},
        },
        "wall_time_s": wall,
    }


def run_evolve(args, config, seed, log=print):
    """Baldwinian evolution of per-neuron gamma (the evolve arm); returns the run record."""
    from keras_bioact.search import parse_spec
    from keras_bioact.search.evolution import CHECKPOINT_NAME, run_evolution

    evo = config["evolution"]
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    out = pathlib.Path(args.work) / f"{args.dataset}-{args.arch}-evolve-seed{seed}-{digest}"
    raw = {
        "evolution": {
            "target": "gamma",
            "activation": {"family": "gamma", "regime": evo["regime"], "init": evo["init"]},
            "granularity": evo["granularity"],
            "algorithm": evo["algorithm"],
            "popsize": evo["popsize"],
            "generations": evo["generations"],
            "metric": "accuracy",
            "mode": evo["mode"],
            "train_epochs": evo["train_epochs"],
            "train_batch_size": args.batch_size,
            "learning_rate": evo["sgd_learning_rate"],
            "seed": seed,
            "baselines": [],  # the relu and gelu arms are this recipe's baselines
        },
        "data": data_table(args, seed),
        "model": dict(ARCHS[args.arch]),
        "budget": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seed": 1000 * seed,
            "learning_rate": evo["pretrain_learning_rate"],
        },
        "output": {"dir": str(out), "tensorboard": False},
    }
    spec = parse_spec(raw, source=f"search_pays:{out.name}")
    start = time.perf_counter()
    resume = (out / CHECKPOINT_NAME).exists()
    result, summary = run_evolution(spec, resume=resume, progress=False, log=lambda *a: None)
    wall = time.perf_counter() - start
    history = [dict(r) for r in result.history]
    return {
        "metrics": {
            "test_accuracy": summary["best_test_accuracy"],
            "test_error": 1.0 - summary["best_test_accuracy"],
            "val_accuracy": summary["best_val_fitness"],
            "start_test_accuracy": summary["start_test_accuracy"],
            "test_accuracy_before_learning": summary["best_test_accuracy_before_learning"],
            "n_test": None,
            "n_trials": evo["popsize"] * evo["generations"],
            "n_failed": None,
        },
        "curves": {"best_so_far": [r.get("best_so_far") for r in history]},
        "extra": {
            "architecture": f"{args.arch} {ARCHS[args.arch]}",
            "chosen": {"family": "gamma (evolved per neuron)", "learning_rate": None, "params": {}},
            "history": history,
            "study": {"name": out.name, "out_dir": str(out)},
        },
        "wall_time_s": wall,
    }


def main(argv=None):
    args = make_parser().parse_args(argv)
    if min(args.n_trials, args.epochs, args.evo_popsize - 1, args.evo_generations) < 1:
        raise SystemExit("search_pays: --n-trials, --epochs, --evo-generations >= 1, --evo-popsize >= 2.")
    if not 0 < args.lr_range[0] <= args.lr_range[1] <= 10:
        raise SystemExit(f"search_pays: --lr-range must satisfy 0 < low <= high <= 10, got {args.lr_range}.")
    config = protocol(args)
    store = RunStore(args.results, RECIPE, config)
    evo_store = RunStore(args.results, RECIPE, config | evolve_protocol(args))
    setting = f"{args.dataset}-{args.arch}"
    for seed in args.seeds:  # seed-major: every arm's seed 0 first
        for arm in args.arms:
            st = evo_store if arm == "evolve" else store
            if st.existing(setting, arm, seed) is not None:
                print(f"{setting} {arm} seed {seed}: done, skipped")
                continue
            size = f"{args.evo_popsize} x {args.evo_generations} candidates" if arm == "evolve" else ""
            print(f"{setting} {arm} seed {seed}: {size or f'{args.n_trials} trials'} ...", flush=True)
            if arm == "evolve":
                rec = run_evolve(args, st.config, seed)
            else:
                rec = run_arm(args, config, arm, seed)
            path = st.save(setting, arm, seed, metrics=rec["metrics"], curves=rec["curves"],
                              extra=rec["extra"], wall_time_s=rec["wall_time_s"])  # fmt: skip
            m, c = rec["metrics"], rec["extra"]["chosen"]
            print(f"{setting} {arm} seed {seed}: chose {c['family']} (lr {c['learning_rate']}), "
                  f"val {m['val_accuracy']:.4f}, test {m['test_accuracy']:.4f}, "
                  f"{rec['wall_time_s']:.0f} s -> {path}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
