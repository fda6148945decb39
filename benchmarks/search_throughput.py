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

Usage:
    PYTHONPATH=$PWD KERAS_BACKEND=jax python benchmarks/search_throughput.py [--n-trials 8]
        [--workers 1 2] [--storages sqlite journal]
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-trials", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--storages", nargs="+", default=["sqlite", "journal"], choices=["sqlite", "journal"])
    args = p.parse_args()
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
