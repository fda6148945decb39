"""Distributed search against a real PostgreSQL server started by this test (loopback only)."""

import glob
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import optuna
import pytest

from keras_bioact.search import count_finished, load_study

ROOT = pathlib.Path(__file__).resolve().parents[3]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
pytestmark = [pytest.mark.postgres, pytest.mark.single_backend]
# in every URL; the server trusts loopback connections and never asks for it, so it must appear
# nowhere: not in output, not on a worker's command line, not in the study
PASSWORD = "pg-Hunter2-s3cret"


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


@pytest.fixture(scope="module")
def postgres_url():
    """Start a throwaway PostgreSQL on 127.0.0.1 (socket in a temp dir) for this module's tests
    (each uses its own study); stop it afterwards."""
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
        yield f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:{port}/bioact"
    finally:
        if started:
            subprocess.run(
                [*pg_ctl, "-m", "immediate", "-w", "-t", "30", "stop"], capture_output=True, timeout=60
            )
        shutil.rmtree(base, ignore_errors=True)


def _worker_command_lines_while_running(proc, timeout=600):
    """The command lines (as `ps` shows everyone) of the worker processes that `proc` started."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        lines = []
        for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                line = pathlib.Path(cmdline).read_bytes().replace(b"\0", b" ").decode(errors="replace")
                stat = pathlib.Path(cmdline).with_name("stat").read_text()
            except OSError:
                continue
            if "--worker-index" in line and int(stat.rsplit(")", 1)[1].split()[1]) == proc.pid:
                lines.append(line)
        if len(lines) >= 2:
            return lines
        time.sleep(0.2)
    return []


@pytest.mark.timeout(900)
def test_two_workers_share_a_postgres_study(tmp_path, postgres_url):
    spec = tmp_path / "pg.toml"
    spec.write_text(
        textwrap.dedent("""
        [optuna]
        study = "pg"
        storage = "{postgres_url}"
        n_trials = 4
        workers = 2
        [data]
        name = "digits"
        max_train = 128
        max_val = 64
        [model]
        template = "helpers.search:slow_mlp"
        hidden = [8]
        delay = 0.5
        [budget]
        epochs = 1
        verdict_seeds = 0  # what is tested is the trials; the verdict would retrain 2 x 5 models
        [optuna.sampler]
        name = "random"
        seed = 0
        [optuna.pruner]
        name = "none"
        [space]
        families = ["relu", "gamma", "bru"]
        """).replace("{postgres_url}", postgres_url)
    )
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
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen(cmd, env=ENV, stdout=out, stderr=err)
        command_lines = _worker_command_lines_while_running(proc)
        proc.wait(timeout=840)
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert proc.returncode == 0, out + err
    assert command_lines and not any(PASSWORD in line for line in command_lines), command_lines
    assert PASSWORD not in out + err
    study = load_study("pg", postgres_url)
    assert PASSWORD not in json.dumps(study.user_attrs)  # the stored spec shows `postgres:***@`
    assert study.user_attrs["spec"]["raw"]["optuna"]["storage"].startswith(
        "postgresql+psycopg2://postgres:***@"
    )
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))  # recorded once each
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)  # none lost or stuck
    assert 4 <= count_finished(study) <= 5  # target, plus at most one per extra worker
    workers = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(workers) == 2, workers  # both worker processes contributed
    assert "study 'pg'" in out and "number" in out  # summary table


@pytest.mark.timeout(900)
def test_killed_postgres_workers_lose_no_complete_trial(postgres_url):
    import random

    from helpers import kill_harness

    row = kill_harness.kill_search(postgres_url, kills=2, n_trials=12, workers=2, rng=random.Random(5))
    print(row)  # the figures of docs/reliability.md
    assert row["kills"] >= 1 and row["complete_trials_seen_before_kills"] >= 1, row
    assert row["ok"], repr(row)
