"""Search throughput: trials per minute and per-trial overhead of `bioact search`.

Runs the quick-start specification (search/quickstart.toml) through the real command line with
1 and 2 worker processes on the embedded storages (SQLite, the default, and the journal file),
each in a fresh temporary storage, and prints a table:

* trials/min: finished trials / wall time of the whole command (process start, data loading,
  study creation, all trials, summary);
* trial s: mean trial duration (Optuna's datetime_start -> datetime_complete);
* fit s: mean time inside `model.fit` (user attribute `fit_seconds`, incl. XLA compilation);
* overhead s: mean (trial duration - fit time): sampling, model building, compile set-up,
  storage writes;
* startup s: wall time not covered by any trial (imports, data, study creation, summary).

With `--reuse`, it instead runs the quick-start study in this process twice, with
`reuse_compiled=False` (a new compiled model per trial) and `True` (one compiled model per
architecture), and prints per-trial cost against the epochs' own compute:

* search s: wall time of `study.optimize` (all trials, sampler and pruner included);
* compute s: mean of the epochs' own compute per trial (each epoch's wall time, the first
  epoch priced at the median of the others, since it also holds XLA compilation);
* overhead s: mean (trial duration - compute): sampling, model building, compilation,
  weight copies, storage; reported for all trials and for trials that reused a compiled model;
* pruned/complete: mean cost of a pruned trial over a complete one (trial duration), over all
  trials and over those that reused a compiled model, next to k/E, the fraction of the epochs
  pruned trials ran.

With `--batched`, it measures trials per second of one study trained one trial at a time (the
objective, `model.fit` per trial) against trials asked and trained together as one vectorised
population (`[optuna] batch` = B, `keras_bioact.search.optuna.batch`), for a single-family
gamma study (static regime: n, s and the learning rate differ, values only) on the digits MLP
(`--arch cnn`: the CNN template), on JAX and PyTorch (one child process per backend, in one run):

* warm trials/s: trials after the first (one-by-one) or the first batch (batched), over their
  wall time (sampling, model building, training, telling): the steady state;
* all trials/s: every trial over the whole wall time, compilation included;
* speed-up: warm trials/s over the one-by-one warm trials/s of the same backend.

Usage:
    PYTHONPATH=$PWD python benchmarks/search_throughput.py --batched [--batches 8 16 32]
        [--backends jax torch] [--epochs 3] [--n-plain 8] [--arch cnn --dataset fashion_mnist
        --max-train 2000]
    PYTHONPATH=$PWD KERAS_BACKEND=jax python benchmarks/search_throughput.py [--n-trials 8]
        [--workers 1 2] [--storages sqlite journal]
    PYTHONPATH=$PWD KERAS_BACKEND=jax python benchmarks/search_throughput.py --reuse [--n-trials 16]
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def measure(n_trials, workers, storage_kind):
    import optuna

    from keras_bioact.search import load_study, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db" if storage_kind == "sqlite" else f"journal:///{tmp}/bench.log"
        cmd = [
            sys.executable,
            "-m",
            "keras_bioact.cli",
            "search",
            str(ROOT / "search" / "quickstart.toml"),
            "--storage",
            url,
            "--study-name",
            "bench",
            "--n-trials",
            str(n_trials),
            "--workers",
            str(workers),
            "--quiet",
        ]
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        )
        start = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - start
        if r.returncode != 0:
            raise RuntimeError(r.stdout + r.stderr)
        storage = open_storage(url, heartbeat=None) if storage_kind == "sqlite" else open_storage(url)
        trials = [t for t in load_study("bench", storage).get_trials() if t.state.is_finished()]
    durations = [t.duration.total_seconds() for t in trials]
    fits = [t.user_attrs.get("fit_seconds", 0.0) for t in trials]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    covered = (last - first).total_seconds()
    n = len(trials)
    return {
        "storage": storage_kind,
        "workers": workers,
        "trials": n,
        "wall s": wall,
        "trials/min": 60.0 * n / wall,
        "trial s": sum(durations) / n,
        "fit s": sum(fits) / n,
        "overhead s": sum(d - f for d, f in zip(durations, fits, strict=True)) / n,
        "startup s": wall - covered,
    }


def _compute(epochs):
    if len(epochs) < 2:
        return sum(epochs)
    rest = sorted(epochs[1:])
    return rest[len(rest) // 2] + sum(epochs[1:])


def measure_reuse(n_trials, reuse):
    import optuna

    from keras_bioact.search import load_spec, make_objective, pruner_from_spec, sampler_from_spec
    from keras_bioact.search.data import load_data
    from keras_bioact.search.models import model_builder

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(ROOT / "search" / "quickstart.toml")
    data, (shape, classes) = load_data(spec)
    objective = make_objective(
        model_builder(spec, shape, classes),
        data,
        space=spec.space,
        budget=spec.budget,
        metric=spec.metric,
        reuse_compiled=reuse,
    )
    study = optuna.create_study(
        direction="maximize", sampler=sampler_from_spec(spec), pruner=pruner_from_spec(spec)
    )
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    search = time.perf_counter() - start
    trials = [t for t in study.trials if t.state.is_finished()]
    cost = {t.number: t.duration.total_seconds() for t in trials}
    compute = {t.number: _compute(t.user_attrs.get("epoch_seconds", [])) for t in trials}
    over = {n: cost[n] - compute[n] for n in cost}
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    cache = objective.compiled
    full = spec.budget.epochs

    def mean(xs):
        xs = list(xs)
        return sum(xs) / len(xs) if xs else float("nan")

    return {
        "reuse_compiled": str(reuse),
        "trials": f"{len(trials)} ({len(pruned)} pruned)",
        "compiled models": str(cache.misses) if cache else str(len(trials)),
        "search s": search,
        "compute s": mean(compute.values()),
        "overhead s": mean(over.values()),
        "overhead s (reused)": mean(over[t.number] for t in trials if t.user_attrs.get("reused_compiled")),
        "pruned/complete": mean(cost[t.number] for t in pruned) / mean(cost[t.number] for t in complete),
        "pruned/complete (reused)": mean(
            cost[t.number] for t in pruned if t.user_attrs.get("reused_compiled")
        )
        / mean(cost[t.number] for t in complete if t.user_attrs.get("reused_compiled")),
        "k/E": mean(len(t.user_attrs.get("epoch_seconds", [])) for t in pruned) / full,
    }


def main_reuse(n_trials):
    import keras

    print(f"backend={keras.backend.backend()} cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
    rows = [measure_reuse(n_trials, reuse) for reuse in (False, True)]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else r[c] for c in cols) + " |")
    print(
        f"search time ratio (new model per trial / reuse): {rows[0]['search s'] / rows[1]['search s']:.2f}x"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


BATCH_SPACE = {"families": ["gamma"], "learning_rate": [1e-3, 1e-2], "gamma": {"regime": ["static"]}}


ARCHS = {"mlp": {"template": "mlp", "hidden": [64, 64]},
         "cnn": {"template": "cnn", "filters": [16, 32], "dense": [64]}}  # fmt: skip


def _batched_child(batches, epochs, n_plain, arch, dataset, max_train):
    """In a process of one backend: one JSON line per row (one-by-one, then each B)."""
    import json

    import optuna

    from keras_bioact.search.data import load_data
    from keras_bioact.search.models import model_builder
    from keras_bioact.search.optuna import workers
    from keras_bioact.search.optuna.batch import BatchObjective, run_batches
    from keras_bioact.search.optuna.objective import make_objective
    from keras_bioact.search.spec import parse_spec
    from keras_bioact.search.spec.model import Budget

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    raw = {
        "optuna": {"study": "t", "storage": "sqlite:///:memory:"},
        "space": BATCH_SPACE,
        "data": {"name": dataset, **({"max_train": max_train} if max_train else {})},
        "model": ARCHS[arch],
    }
    spec = parse_spec(raw)
    data, (shape, classes) = load_data(spec)
    build = model_builder(spec, shape, classes)
    budget = Budget(epochs=epochs, batch_size=64)

    def study():
        return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))

    def row(name, b, stamps, start):
        warm = (len(stamps) - b) / (stamps[-1] - stamps[b - 1])
        return {
            "mode": name,
            "B": b,
            "trials": len(stamps),
            "warm": warm,
            "all": len(stamps) / (stamps[-1] - start),
        }

    stamps = []

    def stamp(*_):
        stamps.append(time.perf_counter())

    st = study()
    objective = make_objective(build, data, BATCH_SPACE, budget, prune=False)
    start = time.perf_counter()
    workers.run(st, objective, n_trials=n_plain, on_trial=stamp)
    print(json.dumps(row("one by one", 1, stamps, start)), flush=True)
    for b in batches:
        stamps.clear()
        st = study()
        objective = BatchObjective(build, data, BATCH_SPACE, budget, prune=False, batch=b)
        start = time.perf_counter()
        run_batches(st, objective, n_trials=3 * b, on_trial=stamp)
        print(json.dumps(row("batched", b, stamps, start)), flush=True)


def main_batched(backends, batches, epochs, n_plain, arch, dataset, max_train):
    import json

    print(
        f"cpus={os.cpu_count()} {dataset} {arch} {ARCHS[arch]} max_train={max_train} epochs={epochs} "
        f"load before={os.getloadavg()[0]:.1f}"
    )
    cols = ["backend", "mode", "B", "trials", "warm trials/s", "all trials/s", "speed-up (warm)"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|", flush=True)
    for backend in backends:
        env = {**os.environ, "KERAS_BACKEND": backend}
        args = [
            sys.executable,
            __file__,
            "--batched-child",
            "--epochs",
            str(epochs),
            "--n-plain",
            str(n_plain),
            "--arch",
            arch,
            "--dataset",
            dataset,
            "--max-train",
            str(max_train),
        ]
        proc = subprocess.Popen(
            args + ["--batches", *map(str, batches)], env=env, stdout=subprocess.PIPE, text=True
        )
        base = None
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            base = base or r["warm"]
            cells = [backend, r["mode"], r["B"], r["trials"], f"{r['warm']:.3f}", f"{r['all']:.3f}"]
            print("| " + " | ".join(map(str, cells + [f"{r['warm'] / base:.1f}x"])) + " |", flush=True)
        proc.wait()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batched", action="store_true", help="one-by-one vs batched trials, JAX and PyTorch")
    p.add_argument("--batched-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backends", nargs="+", default=["jax", "torch"], choices=["jax", "torch"])
    p.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-plain", type=int, default=8, help="one-by-one trials")
    p.add_argument("--arch", default="mlp", choices=sorted(ARCHS), help="--batched: the model template")
    p.add_argument("--dataset", default="digits", help="--batched: the data set ([data] name)")
    p.add_argument("--max-train", type=int, default=0, help="--batched: training examples (0: all)")
    p.add_argument("--n-trials", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--storages", nargs="+", default=["sqlite", "journal"], choices=["sqlite", "journal"])
    p.add_argument("--reuse", action="store_true", help="compare reuse_compiled=False/True in-process")
    args = p.parse_args()
    if args.batched_child:
        a = args
        return _batched_child(a.batches, a.epochs, a.n_plain, a.arch, a.dataset, a.max_train)
    if args.batched:
        return main_batched(
            args.backends, args.batches, args.epochs, args.n_plain, args.arch, args.dataset, args.max_train
        )
    if args.reuse:
        return main_reuse(args.n_trials)
    import keras

    print(
        f"backend={keras.backend.backend()} cpus={os.cpu_count()} n_trials={args.n_trials} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    cols = [
        "storage",
        "workers",
        "trials",
        "wall s",
        "trials/min",
        "trial s",
        "fit s",
        "overhead s",
        "startup s",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|", flush=True)
    for kind in args.storages:
        for w in args.workers:
            r = measure(args.n_trials, w, kind)  # each row is printed as soon as it is measured
            cells = [f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
            print("| " + " | ".join(cells) + " |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
