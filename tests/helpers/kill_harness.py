"""Kill harness: SIGKILL search workers and evolution runs at random moments, then check the data.

Search (SQLite, journal, PostgreSQL): a group of worker processes runs one study with a
keras-free objective; the whole process group is killed with SIGKILL at a random moment,
several times, and restarted each time; a last run finishes the study. Checked: every trial
that was COMPLETE before a kill is still COMPLETE with the same value, trial numbers are unique
and contiguous, the study ends with `n_trials` finished trials and no RUNNING trial, and the
overshoot past `n_trials` is at most one trial per worker.

Evolution: the seeded SNES run of tests/helpers/evolution.py is killed at random moments and
resumed each time (`resume=True`, in a new process; the last resume and the uninterrupted
reference run in the harness's process); checked: no finished generation is lost (history.csv
only grows), no killed run had finished, and the final result and every generation's row equal
an uninterrupted run with the same seed.

    python tests/helpers/kill_harness.py --kills 5 --storages sqlite journal [--postgres URL] \
        --evolution-kills 5

prints one table row per storage and for evolution, and returns 1 if anything was lost. The test
tests/search/test_kill_harness.py runs it with a few kills; docs/reliability.md has the figures of a
longer run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
# a journal's lock left by a killed writer is broken after 5 s instead of 30 (a lock is held
# only while one record is appended)
LOCK_GRACE = {"KERAS_BIOACT_JOURNAL_LOCK_GRACE": os.environ.get("KERAS_BIOACT_JOURNAL_LOCK_GRACE", "5")}
ENV = {
    **os.environ,
    **LOCK_GRACE,
    "PYTHONPATH": os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")]),
}

WORKER = """
import sys
from helpers.search import sleepy_objective
from keras_bioact.search import SearchSpace, load_study, make_sampler, open_storage, run
storage = open_storage(sys.argv[1], heartbeat=None) if sys.argv[1].startswith("sqlite") else sys.argv[1]
study = load_study("kill", storage, sampler=make_sampler("random", seed=int(sys.argv[2])))
objective = sleepy_objective(SearchSpace.from_dict({"families": ["gamma"]}), delay=0.05)
run(study, objective, n_trials=int(sys.argv[3]))
"""
LAUNCHER = """
import subprocess, sys
url, n_trials, workers, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cmd = [sys.executable, "-c", sys.argv[5], url]
procs = [subprocess.Popen(cmd + [str(seed + i), n_trials]) for i in range(workers)]
sys.exit(max(p.wait() for p in procs))
"""


def _storage(url):
    """One storage object per target, reused by every poll (a new RDB storage per poll would
    open a new connection pool each time and exhaust PostgreSQL's connections)."""
    from keras_bioact.search import open_storage

    return url if url.startswith("journal") else open_storage(url, heartbeat=None)


def _snapshot(storage):
    import optuna

    from keras_bioact.search import load_study

    trials = load_study("kill", storage).get_trials(deepcopy=False)
    complete = {t.number: t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    # RUNNING trials whose worker recorded itself (an orphan killed before that is failed by a
    # run ORPHAN_GRACE seconds later, see recover_dead_trials)
    running = [
        t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING and "worker" in t.user_attrs
    ]
    return complete, [t.number for t in trials], running


def _launch(url, n_trials, workers, seed):
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, url, str(n_trials), str(workers), str(seed), WORKER],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_search(url, kills, n_trials=40, workers=2, rng=None):
    """Kill the worker group `kills` times, then finish; returns a result row."""
    saved = {k: os.environ.get(k) for k in LOCK_GRACE}
    os.environ.update(LOCK_GRACE)  # this process reads the journal too
    try:
        return _kill_search(url, kills, n_trials, workers, rng)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kill_search(url, kills, n_trials, workers, rng):
    import optuna

    from keras_bioact.search import count_finished, create_study, load_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = rng or random.Random(0)
    storage = _storage(url)
    create_study("kill", storage)
    seen, lost, done_kills = {}, [], 0
    for k in range(kills):
        proc = _launch(url, n_trials, workers, seed=100 * k)
        # kill after 1-3 more trials have completed, at a random moment within a trial
        target = len(seen) + rng.randint(1, 3)
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline:
            try:
                if len(_snapshot(storage)[0]) >= target:
                    break
            except Exception:  # storage busy: poll again
                pass
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.06))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            done_kills += 1
        proc.wait()
        proc.stderr.close()
        complete, _, _ = _snapshot(storage)
        lost += [n for n, v in seen.items() if complete.get(n) != v]
        seen.update(complete)
    final = _launch(url, n_trials, workers, seed=999)
    _, err = final.communicate(timeout=600)
    complete, numbers, running = _snapshot(storage)
    lost += [n for n, v in seen.items() if complete.get(n) != v]
    study = load_study("kill", storage)
    finished = count_finished(study)
    return {
        "storage": url.split(":", 1)[0],
        "kills": done_kills,
        "complete_trials_seen_before_kills": len(seen),
        "complete_trials_lost": len(set(lost)),
        "duplicate_numbers": len(numbers) - len(set(numbers)),
        "numbers_contiguous": sorted(numbers) == list(range(len(numbers))),
        "finished": finished,
        "overshoot": finished - n_trials,
        "running_left": len(running),
        "final_rc": final.returncode,
        "ok": (
            not lost
            and len(numbers) == len(set(numbers))
            and n_trials <= finished <= n_trials + workers
            and not running
            and final.returncode == 0
        ),
        "stderr": err.decode()[-500:] if final.returncode else "",
    }


def _rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().strip().splitlines()[1:]


def _values(rows):
    """best, mean, spread, best_so_far, evaluations of each row (not its timing), rounded."""
    return [[round(float(v), 6) for v in row.split(",")[1:6]] for row in rows]


def _evolution_main():
    """`main` of tests/helpers/evolution.py (imported as `helpers.evolution`, also when this file
    runs as a script)."""
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)
    from helpers import evolution

    return evolution.main


def kill_evolution(directory, kills, generations=12, rng=None):
    """Kill the seeded evolution run `kills` times (each time resuming it in a new process), then
    resume it to the end in this process and compare with an uninterrupted run (also here)."""
    rng = rng or random.Random(1)
    script = os.path.join(HERE, "evolution.py")
    killed = os.path.join(directory, "killed")
    history = os.path.join(killed, "history.csv")
    rows_before, shrunk, done_kills = [], 0, 0
    for _ in range(kills):
        args = [sys.executable, script, killed, "--generations", str(generations), "--sleep", "0.3"]
        if os.path.exists(os.path.join(killed, "checkpoint.npz")):
            args.append("--resume")
        proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 300
        target = len(rows_before) + rng.randint(1, 2)
        while proc.poll() is None and len(_rows(history)) < target and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))  # mid-generation or mid-checkpoint
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            done_kills += 1
        proc.wait()
        proc.stderr.close()
        rows = _rows(history)
        shrunk += int(rows[: len(rows_before)] != rows_before)
        rows_before = rows
    # the resume and the uninterrupted reference run in this process: the killed runs already
    # cover fresh processes, and two more Python processes importing Keras cost more than the run
    finished_early = os.path.exists(os.path.join(killed, "final.json"))
    straight = os.path.join(directory, "straight")
    run_evolution = _evolution_main()
    resume = ["--resume"] if os.path.exists(os.path.join(killed, "checkpoint.npz")) else []
    errors = []
    runs = [
        [killed, "--generations", str(generations), *resume],
        [straight, "--generations", str(generations)],
    ]
    for argv in runs:
        try:
            if run_evolution(argv) != 0:
                errors.append(f"{argv}: non-zero return")
        except Exception as e:  # reported in the row, like a failed subprocess
            errors.append(f"{argv}: {type(e).__name__}: {e}")
    equal = False
    if not errors:
        with open(os.path.join(killed, "final.json")) as f:
            a = json.load(f)
        with open(os.path.join(straight, "final.json")) as f:
            b = json.load(f)
        equal = (
            abs(a["best_fitness"] - b["best_fitness"]) <= 1e-6 * max(1.0, abs(b["best_fitness"]))
            and max(abs(x - y) for x, y in zip(a["best_genes"], b["best_genes"], strict=True)) <= 1e-5
            and _values(_rows(history)) == _values(_rows(os.path.join(straight, "history.csv")))
        )
    return {
        "storage": "evolution checkpoint",
        "kills": done_kills,
        "generations_lost": shrunk,
        "history_rows": len(_rows(history)),
        "generations_before_resume": len(rows_before),
        "finished_before_resume": finished_early,
        "equal_to_uninterrupted": equal,
        "ok": equal and shrunk == 0 and not finished_early and len(_rows(history)) == generations,
        "stderr": "\n".join(errors)[-500:],
    }


def main(argv=None):
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--kills", type=int, default=3, help="kills per storage")
    parser.add_argument("--storages", nargs="*", default=["sqlite", "journal"])
    parser.add_argument("--postgres", help="a PostgreSQL URL to test as well")
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evolution-kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": f"sqlite:///{tmp}/kill.db", "journal": f"journal:///{tmp}/kill.log"}
        targets = [urls[s] for s in args.storages]
        if args.postgres:
            targets.append(args.postgres)
        for url in targets:
            rows.append(kill_search(url, args.kills, args.n_trials, args.workers, rng))
        if args.evolution_kills:
            rows.append(kill_evolution(tmp, args.evolution_kills, rng=rng))
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "stderr"}))
        if row["stderr"]:
            print(row["stderr"], file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
