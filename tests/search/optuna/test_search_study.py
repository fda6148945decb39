"""Storage: two concurrent workers on the embedded storages; SIGKILL mid-trial and resume."""

import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import optuna
import pytest

from keras_bioact.search import SearchSpace, count_finished, create_study, load_study, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = pathlib.Path(__file__).resolve().parents[3]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))

WORKER = textwrap.dedent(
    """
    import sys
    from helpers.search import sleepy_objective
    from keras_bioact.search import SearchSpace, load_study, make_sampler, run
    study = load_study("conc", sys.argv[1], sampler=make_sampler("random", seed=int(sys.argv[2])))
    run(study, sleepy_objective(SearchSpace.from_dict({"families": ["gamma"]}), delay=0.05), n_trials=16)
    """
)


@pytest.mark.single_backend
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_concurrent_workers_record_every_trial_once(tmp_path, kind):
    """Both embedded storages hold two concurrent worker processes. SQLite is the default
    because it additionally has Optuna's heartbeat (stale trials of dead workers on other
    machines are failed), shares its code path with PostgreSQL/MySQL, and is one file that
    `bioact show` and any SQLite tool can read; the journal file is offered for NFS."""
    url = f"sqlite:///{tmp_path}/conc.db" if kind == "sqlite" else f"journal:///{tmp_path}/conc.log"
    create_study("conc", url, ["maximize"])  # once, before the workers (creation races)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(i)], env=ENV, stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    try:
        errs = [p.communicate(timeout=240)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], errs
    study = load_study("conc", url)
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # each trial recorded exactly once
    assert 16 <= count_finished(study) <= 17  # the target, plus at most one in flight at stop
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert pids == {p.pid for p in procs}  # both workers contributed


def _spec(tmp_path, n_trials, delay):
    spec = tmp_path / "kill.toml"
    spec.write_text(
        textwrap.dedent(f"""
        [optuna]
        study = "kill"
        storage = "sqlite:///{tmp_path}/kill.db"
        n_trials = {n_trials}
        batch = 1  # one trial at a time: a finished one beside a running one (a batch tells all at its end)
        [data]
        name = "digits"
        max_train = 128
        max_val = 64
        [model]
        template = "helpers.search:slow_mlp"
        hidden = [8]
        delay = {delay}
        [budget]
        epochs = 1
        batch_size = 64
        verdict_seeds = 0  # what is tested is the trials; the verdict would retrain 2 x 5 models
        [optuna.pruner]
        name = "none"
        [space]
        families = ["relu", "gamma", "bru"]
        """)
    )
    return spec


@pytest.mark.single_backend
@pytest.mark.timeout(600)
def test_sigkill_mid_trial_loses_no_finished_trial_and_resume_finishes(tmp_path):
    spec = _spec(tmp_path, n_trials=3, delay=2.0)
    url = f"sqlite:///{tmp_path}/kill.db"
    cmd = [
        sys.executable,
        "-m",
        "keras_bioact.cli",
        "search",
        "--allow-code",
        "helpers.search",
        str(spec),
        "--quiet",
    ]
    proc = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    killed = None
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if not pathlib.Path(f"{tmp_path}/kill.db").exists():
                continue
            # read-only SQL: opening an Optuna storage here would race the CLI creating the tables
            try:
                with sqlite3.connect(f"file:{tmp_path}/kill.db?mode=ro", uri=True, timeout=5) as db:
                    done = db.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
                    # running and already sampled (the template sleeps while building the model)
                    running = db.execute(
                        "SELECT number FROM trials t WHERE state = 'RUNNING' AND EXISTS "
                        "(SELECT 1 FROM trial_params p WHERE p.trial_id = t.trial_id)"
                    ).fetchall()
            except sqlite3.Error:  # study not created yet / database busy
                continue
            if done and running:
                os.kill(proc.pid, signal.SIGKILL)
                killed = running[0][0]
                break
    finally:
        if proc.poll() is None and killed is None:
            proc.kill()
        out = proc.communicate(timeout=60)[0]
    assert killed is not None, f"never saw a finished and a running trial at once:\n{out}"
    before = {
        t.number: t.value
        for t in load_study("kill", open_storage(url, heartbeat=None)).get_trials()
        if t.state == optuna.trial.TrialState.COMPLETE
    }
    assert before

    again = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "dead workers" in again.stdout
    study = load_study("kill", open_storage(url, heartbeat=None))
    by_number = {t.number: t for t in study.get_trials()}
    for number, value in before.items():  # no finished trial lost
        assert (
            by_number[number].state == optuna.trial.TrialState.COMPLETE and by_number[number].value == value
        )
    stale = by_number[killed]
    assert (
        stale.state == optuna.trial.TrialState.FAIL and "died mid-trial" in stale.user_attrs["failure_reason"]
    )
    retries = [t for t in by_number.values() if t.user_attrs.get("retry_of") == killed]
    # the killed configuration re-ran: every parameter it had sampled (sites sampled while the
    # model was being built may come after the kill) is fixed in the retry
    assert len(retries) == 1 and stale.params
    assert stale.params.items() <= retries[0].params.items(), (retries[0].params, stale.params)
    assert count_finished(study) == 3
    assert not [t for t in by_number.values() if t.state == optuna.trial.TrialState.RUNNING]


def test_space_for_workers_is_plain_data():
    # what workers receive from a spec is data: a dict round trip gives the same space
    space = SearchSpace.from_dict({"families": ["gamma", "relu"]})
    assert SearchSpace.from_dict(space.to_dict()) == space


@pytest.mark.single_backend
@pytest.mark.parametrize("when", ["while it trains", "after it returns"])
def test_a_worker_skips_a_trial_that_another_process_finished_and_goes_on(tmp_path, when):
    """Another process's recovery may fail a live worker's trial (it took the worker for dead).
    The worker skips that trial with one line and finishes its trials, instead of exiting 1 with
    Optuna's UpdateFinishedTrialError ("Trial#4 has already finished")."""
    from helpers.search import sleepy_objective
    from optuna.trial import TrialState

    from keras_bioact.search import run

    url = f"sqlite:///{tmp_path}/u.db"
    study = create_study("u", open_storage(url, heartbeat=None))
    outside = load_study("u", open_storage(url, heartbeat=None))  # the recovering process's view
    inner = sleepy_objective(SearchSpace.from_dict({"families": ["gamma"]}), delay=0.0)

    def objective(trial):
        if trial.number == 1 and when == "while it trains":  # the worker then records into it
            outside._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        value = inner(trial)
        if trial.number == 1 and when == "after it returns":  # the worker then tells its value
            outside._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return value

    lines = []
    run(study, objective, n_trials=4, log=lines.append)
    assert count_finished(study) == 4 and study.trials[1].state == TrialState.FAIL
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL] + [
        TrialState.COMPLETE
    ] * 3
    assert len(lines) == 1 and lines[0].startswith("trial 1 was finished by another process"), lines


@pytest.mark.single_backend
def test_a_worker_still_fails_on_an_error_of_its_own(tmp_path):
    from keras_bioact.search import run

    study = create_study("e", open_storage(f"sqlite:///{tmp_path}/e.db", heartbeat=None))

    def objective(trial):
        raise ValueError("a bug in the objective")

    with pytest.raises(ValueError, match="a bug in the objective"):
        run(study, objective, n_trials=2, log=pytest.fail)
    assert len(study.trials) == 1
