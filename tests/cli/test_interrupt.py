"""Ctrl-C (SIGINT to the process group, as a terminal sends it) or SIGTERM ends `bioact search`
cleanly: exit 130, no traceback, the running trials failed and re-queued at once (as the
recovery of a dead worker does on the next run), and one line saying how to continue."""

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

from keras_bioact.search import count_finished, load_study, open_storage

pytestmark = [pytest.mark.single_backend, pytest.mark.timeout(300)]
ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))


def _running(db_path):
    """Numbers of the RUNNING trials that have sampled their parameters (the template then sleeps)."""
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(
                "SELECT number FROM trials t WHERE state = 'RUNNING' AND EXISTS "
                "(SELECT 1 FROM trial_params p WHERE p.trial_id = t.trial_id)"
            ).fetchall()
    except sqlite3.Error:  # not created yet / busy
        return []


@pytest.mark.parametrize(
    "workers, signum, group", [(1, signal.SIGINT, True), (2, signal.SIGINT, True), (2, signal.SIGTERM, False)]
)
def test_interrupt_fails_and_requeues_running_trials_without_traceback(tmp_path, workers, signum, group):
    spec = tmp_path / "int.toml"
    spec.write_text(
        textwrap.dedent(f"""
        [optuna]
        study = "int"
        storage = "sqlite:///{tmp_path}/int.db"
        n_trials = 4
        workers = {workers}
        [data]
        name = "digits"
        max_train = 64
        max_val = 32
        [model]
        template = "helpers.search:slow_mlp"
        hidden = [4]
        delay = 60
        [optuna.pruner]
        name = "none"
        [space]
        families = ["relu", "gamma"]
        baselines = []
        """)
    )
    cmd = [sys.executable, "-m", "keras_bioact.cli", "search", "--allow-code", "helpers.search", str(spec)]
    proc = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_running(tmp_path / "int.db")) == workers:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
        out, err = proc.communicate(timeout=180)  # a loaded machine may take a while to wind down
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out, err
    lines = [line for line in err.splitlines() if line.startswith("bioact:")]
    assert len(lines) == 1 and "run the same command again to continue" in lines[0], err
    study = load_study("int", open_storage(f"sqlite:///{tmp_path}/int.db", heartbeat=None))
    trials = study.get_trials()
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == workers and all(t.user_attrs.get("stale") for t in failed)
    assert f"trial(s) {sorted(t.number for t in failed)} failed and re-queued" in lines[0]
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    queued = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in queued) == sorted(t.number for t in failed)
    by_number = {t.number: t.params for t in failed}
    assert all(by_number[t.user_attrs["retry_of"]] == dict(t.system_attrs["fixed_params"]) for t in queued)
    assert count_finished(study) == 0
