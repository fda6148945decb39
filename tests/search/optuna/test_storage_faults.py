"""Damaged storages are refused or repaired, never silently replaced; the retry chain of
killed workers' trials survives repeated kills."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings

import optuna
import pytest

from keras_bioact.cli import main
from keras_bioact.search import create_study, load_study, open_storage, recover_dead_trials
from keras_bioact.search.optuna.storage import JOURNAL_LOCK_GRACE, StorageError, journal_lock_grace

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _quadratic(trial):
    return (trial.suggest_float("x", -1, 1) - 0.3) ** 2


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_an_empty_storage_file_is_refused_not_replaced(tmp_path, kind, capsys):
    path = tmp_path / ("s.db" if kind == "sqlite" else "s.log")
    path.write_bytes(b"")
    url = f"sqlite:///{path}" if kind == "sqlite" else f"journal:///{path}"
    with pytest.raises(StorageError, match=r"empty \(0 bytes\)"):
        open_storage(url)
    assert main(["show", "s", "--storage", url]) == 2
    assert "empty (0 bytes)" in capsys.readouterr().err
    assert path.read_bytes() == b""


def test_random_bytes_in_an_sqlite_file_give_a_clear_error(tmp_path, capsys):
    path = tmp_path / "s.db"
    junk = bytes(range(256)) * 16
    path.write_bytes(junk)
    with pytest.raises(StorageError, match="not an SQLite database"):
        open_storage(f"sqlite:///{path}")
    assert main(["show", "s", "--storage", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err
    assert "not an SQLite database" in err and "Traceback" not in err
    assert path.read_bytes() == junk


def test_a_truncated_sqlite_file_gives_a_clear_error(tmp_path, capsys):
    path = tmp_path / "s.db"
    study = create_study("s", open_storage(f"sqlite:///{path}", heartbeat=None))
    study.optimize(_quadratic, n_trials=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(StorageError, match="is damaged"):
        open_storage(f"sqlite:///{path}")
    assert main(["show", "s", "--storage", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and str(path) in err and "Traceback" not in err
    assert path.read_bytes() == data[: len(data) // 3]


def test_a_journal_with_a_cut_off_tail_is_repaired_and_stays_readable(tmp_path):
    path = tmp_path / "s.log"
    url = f"journal:///{path}"
    study = create_study("s", url, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_quadratic, n_trials=5)
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # the last record loses its end (a writer killed mid-append)
    with pytest.warns(UserWarning, match="incomplete"):
        study = load_study("s", url, sampler=optuna.samplers.RandomSampler(seed=1))
    backups = list(tmp_path.glob("s.log.partial-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == data[len(path.read_bytes()) : -25]
    complete_before = [t.number for t in study.trials if t.state.is_finished()]
    assert len(complete_before) >= 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the journal is clean now: no second repair
        study.optimize(_quadratic, n_trials=3)
        again = load_study("s", url)  # before the repair, this open failed with JSONDecodeError
    numbers = [t.number for t in again.trials]
    assert numbers == sorted(set(numbers))
    assert set(complete_before) <= {t.number for t in again.trials if t.state.is_finished()}
    assert sum(t.state.is_finished() for t in again.trials) >= len(complete_before) + 3


def test_the_retry_chain_survives_repeated_kills_before_parameters_are_sampled(tmp_path):
    study = create_study("r", open_storage(f"sqlite:///{tmp_path}/r.db", heartbeat=None))
    dead = subprocess.Popen(["true"])
    dead.wait()
    corpse = {"host": socket.gethostname(), "pid": dead.pid, "start": None}
    trial = study.ask()
    trial.suggest_float("x", -1, 1)
    trial.set_user_attr("worker", corpse)  # killed mid-trial
    chain = [trial.number]
    for _ in range(3):
        assert recover_dead_trials(study) == [chain[-1]]
        retry = study.ask()  # the re-queued trial starts ...
        assert retry.user_attrs["retry_of"] == chain[-1]
        assert study.trials[retry.number].system_attrs["fixed_params"] == {
            "x": study.trials[chain[0]].params["x"]
        }
        retry.set_user_attr("worker", corpse)  # ... and is killed before it samples anything
        chain.append(retry.number)
    assert recover_dead_trials(study) == [chain[-1]]
    last = study.ask()
    assert last.user_attrs["retry_of"] == chain[-1]
    assert last.suggest_float("x", -1, 1) == study.trials[chain[0]].params["x"]


def test_a_trial_whose_worker_never_recorded_itself_is_failed_after_the_grace(tmp_path, monkeypatch):
    from keras_bioact.search.optuna import workers

    study = create_study("o", open_storage(f"sqlite:///{tmp_path}/o.db", heartbeat=None))
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(-1, 1)})  # killed before recording
    assert recover_dead_trials(study) == []  # within the grace: it may still be starting
    monkeypatch.setattr(workers, "ORPHAN_GRACE", 0)
    assert recover_dead_trials(study) == [orphan.number]
    failed = study.trials[orphan.number]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert "within 0 s" in failed.user_attrs["failure_reason"]
    retry = study.ask()
    assert retry.user_attrs["retry_of"] == orphan.number


SPEC = """
[optuna]
study = "s"
{storage}
n_trials = 1
[data]
name = "digits"
[model]
template = "mlp"
hidden = [4]
[budget]
epochs = 1
[space]
families = ["relu"]
"""


def _other_programs_sqlite(path):
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        db.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    db.close()


def _snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() if p.is_file() else None for p in directory.rglob("*")}


# storage argument, what is in the working directory first, expected message fragment
HOSTILE = [
    (
        "app.log",
        {"app.log": b"2026-12-07 INFO started\n2026-12-07 INFO cut off mid-li"},
        "not an Optuna journal",
    ),
    ("journal:///app.log", {"app.log": b"GET / 200\nGET /x 404\n"}, "not an Optuna journal"),
    ("events.journal", {"events.journal": b'{"level": "info", "msg": "hi"}\n'}, "not an Optuna journal"),
    ("sqlite:///crm.db", {"crm.db": _other_programs_sqlite}, "SQLite database of another program"),
    ("crm.sqlite", {"crm.sqlite": _other_programs_sqlite}, "refusing to add Optuna's tables"),
    ("sqlite:///notes.db", {"notes.db": b"shopping list\n- milk\n"}, "not an SQLite database"),
    ("sqlite:///:memory:", {}, "lost when the process exits"),
    ("sqlite://", {}, "lost when the process exits"),
    ("sqlite:///empty.db", {"empty.db": b""}, "empty (0 bytes)"),
    ("journal:///empty.log", {"empty.log": b""}, "empty (0 bytes)"),
    ("sqlite:///nodir/s.db", {}, "directory nodir does not exist"),
    ("sqlite:///folder.db", {"folder.db/keep": b"x"}, "is not a file"),
    ("notes.txt", {"notes.txt": b"hello\n"}, "not a URL"),
]


@pytest.mark.parametrize("how", ["--storage", "optuna.storage", "show"])
@pytest.mark.parametrize("storage, files, fragment", HOSTILE, ids=[row[0] for row in HOSTILE])
def test_hostile_storages_are_refused_with_exit_2_and_nothing_written(
    tmp_path, monkeypatch, capsys, how, storage, files, fragment
):
    from keras_bioact.search.optuna import objective as objective_lib

    def no_training(spec, data=None):
        raise AssertionError("training started with a refused storage")

    monkeypatch.setattr(objective_lib, "objective_from_spec", no_training)
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        if callable(content):
            content(tmp_path / name)
        else:
            (tmp_path / name).write_bytes(content)
    in_spec = f"storage = {json.dumps(storage)}" if how == "optuna.storage" else ""
    (tmp_path / "spec.toml").write_text(SPEC.format(storage=in_spec))
    before = _snapshot(tmp_path)
    if how == "show":
        argv = ["show", "s", "--storage", storage]
    else:
        argv = ["search", "spec.toml", "--create-only"] + (
            ["--storage", storage] if how == "--storage" else []
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no repair warning: nothing is moved
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and ("--storage" if how != "optuna.storage" else "optuna.storage") in err, err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before  # byte for byte; no lock, .partial- or database file added


ROOT = pathlib.Path(__file__).resolve().parents[3]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
# run the rest of the command line with DIR ($0) mounted read-only, in a mount namespace of its own
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'


def _unwritable_runner(why, directory):
    """A command prefix under which `directory` (and all below it) cannot be written, for `why`."""
    if why == "read-only":
        prefix = ["unshare", "-m", "sh", "-c", READ_ONLY, str(directory)]
    else:
        for d in [directory, *directory.iterdir()]:
            d.chmod(0o555)
        # root may write anywhere: run as `nobody` (setpriv, util-linux) instead
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True, timeout=60)
    except FileNotFoundError:
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"cannot run a process that sees {directory} {why} here ({' '.join(prefix[:2])})")
    return prefix


# storage URL, whether a study is in it first
UNWRITABLE = [
    ("sqlite:///{d}/s.db", False),
    ("sqlite:///{d}/s.db", True),
    ("journal:///{d}/s.log", False),
    ("journal:///{d}/s.log", True),
]
# One child process runs `bioact search --create-only` on every storage of UNWRITABLE (starting
# a Python with Keras per storage costs ~15 s); it prints each call's exit code and stderr.
CREATE_ONLY = """
import contextlib, io, json, sys
from keras_bioact.cli import main
spec, urls = sys.argv[1], sys.argv[2:]
out = []
for url in urls:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = main(["search", spec, "--create-only", "--storage", url])
        except SystemExit as e:
            rc = e.code
    out.append([rc, err.getvalue()])
print(json.dumps(out))
"""


@pytest.mark.parametrize("why", ["permission denied", "read-only"])
def test_an_unwritable_storage_folder_is_reported_as_such_not_as_damage(why):
    base = pathlib.Path(tempfile.mkdtemp(prefix="bioact-ro-"))  # not pytest's tmp: 0700, root's
    stores = base / "stores"
    try:
        base.chmod(0o755)
        urls = []
        for i, (storage, existing) in enumerate(UNWRITABLE):
            (stores / str(i)).mkdir(parents=True)
            urls.append(storage.format(d=stores / str(i)))
            if existing:
                create_study("s", urls[-1]).optimize(_quadratic, n_trials=2)
        (base / "spec.toml").write_text(SPEC.format(storage=""))
        (base / "spec.toml").chmod(0o644)
        before = _snapshot(stores)
        prefix = _unwritable_runner(why, stores)
        cmd = [*prefix, sys.executable, "-c", CREATE_ONLY, str(base / "spec.toml"), *urls]
        r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, cwd=base)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        for i, (url, (rc, err)) in enumerate(zip(urls, json.loads(r.stdout.splitlines()[-1]), strict=True)):
            assert rc == 2, (url, err)
            assert why in err and str(stores / str(i)) in err and "--storage" in err, (url, err)
            assert "damaged" not in err and "Traceback" not in err, (url, err)
        assert _snapshot(stores) == before
    finally:
        for d in [stores, *stores.glob("*")]:
            d.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_journal_lock_grace_is_optunas_unless_the_environment_sets_it(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_BIOACT_JOURNAL_LOCK_GRACE", raising=False)
    assert journal_lock_grace() == JOURNAL_LOCK_GRACE == 30
    monkeypatch.setenv("KERAS_BIOACT_JOURNAL_LOCK_GRACE", "5")
    storage = open_storage(f"journal:///{tmp_path}/j.log")
    assert storage._backend._lock.grace_period == 5  # what the lock of the opened journal uses
    for bad in ("2", "five", ""):
        monkeypatch.setenv("KERAS_BIOACT_JOURNAL_LOCK_GRACE", bad)
        with pytest.raises(StorageError, match="KERAS_BIOACT_JOURNAL_LOCK_GRACE must be an integer >= 3"):
            open_storage(f"journal:///{tmp_path}/k.log")
