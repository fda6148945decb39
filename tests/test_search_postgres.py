"""Distributed search against a real PostgreSQL server started by this test (loopback only)."""

import glob
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap

import optuna
import pytest

from keras_bioact.search import count_finished, load_study

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]), KERAS_BACKEND="jax")
pytestmark = [pytest.mark.postgres, pytest.mark.single_backend]


def _pg_bin():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    initdb = candidates[0] if candidates else shutil.which("initdb")
    if not initdb or not os.path.exists(os.path.join(os.path.dirname(initdb), "pg_ctl")):
        return None
    return os.path.dirname(initdb)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    """Start a throwaway PostgreSQL on 127.0.0.1 (socket in a temp dir); stop it afterwards."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's `postgresql`")
    pytest.importorskip("psycopg2", reason="psycopg2 (psycopg2-binary) is needed for the postgresql URL")
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = tempfile.mkdtemp(prefix="bioact-pg-")
    if as_user:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data, sock, log = f"{base}/data", f"{base}/sock", f"{base}/server.log"
    port = _free_port()
    pg_ctl = [*as_user, f"{bindir}/pg_ctl", "-D", data]
    started = False
    try:
        subprocess.run([*as_user, "mkdir", "-p", sock], check=True, timeout=30)
        subprocess.run(
            [
                *as_user,
                f"{bindir}/initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        r = subprocess.run(
            [*pg_ctl, "-o", opts, "-l", log, "-w", "-t", "60", "start"],
            capture_output=True,
            text=True,
            timeout=90,
        )
        if r.returncode != 0:
            pytest.fail(f"pg_ctl start failed: {r.stdout}{r.stderr}\n{pathlib.Path(log).read_text()}")
        started = True
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=10
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE bioact")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/bioact"
    finally:
        if started:
            subprocess.run(
                [*pg_ctl, "-m", "immediate", "-w", "-t", "30", "stop"], capture_output=True, timeout=60
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(900)
def test_two_workers_share_a_postgres_study(tmp_path, postgres_url):
    spec = tmp_path / "pg.toml"
    spec.write_text(
        textwrap.dedent("""
        [optuna]
        study = "pg"
        n_trials = 4
        workers = 2
        [data]
        name = "digits"
        max_train = 128
        max_val = 64
        [model]
        template = "_search_helpers:slow_mlp"
        hidden = [8]
        delay = 0.5
        [budget]
        epochs = 1
        [optuna.sampler]
        name = "random"
        seed = 0
        [optuna.pruner]
        name = "none"
        [space]
        families = ["relu", "gamma", "bru"]
        """)
    )
    cmd = [
        sys.executable,
        "-m",
        "keras_bioact.cli",
        "search",
        "--allow-code",
        "_search_helpers",
        str(spec),
        "--storage",
        postgres_url,
        "--quiet",
    ]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=840)
    assert r.returncode == 0, r.stdout + r.stderr
    study = load_study("pg", postgres_url)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))  # recorded once each
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)  # none lost or stuck
    assert 4 <= count_finished(study) <= 5  # target, plus at most one per extra worker
    workers = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(workers) == 2, workers  # both worker processes contributed
    assert "study 'pg'" in r.stdout and "number" in r.stdout  # summary table


@pytest.mark.timeout(900)
def test_killed_postgres_workers_lose_no_complete_trial(postgres_url):
    import random

    import kill_harness

    row = kill_harness.kill_search(postgres_url, kills=2, n_trials=12, workers=2, rng=random.Random(5))
    print(row)  # the figures of docs/reliability.md
    assert row["kills"] >= 1 and row["complete_trials_seen_before_kills"] >= 1, row
    assert row["ok"], repr(row)
