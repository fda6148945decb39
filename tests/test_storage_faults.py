"""Damaged storages are refused or repaired, never silently replaced; the retry chain of
killed workers' trials survives repeated kills."""

import socket
import subprocess
import warnings

import optuna
import pytest

from keras_bioact.cli import main
from keras_bioact.search import create_study, load_study, open_storage, recover_dead_trials
from keras_bioact.search.storage import StorageError

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
    from keras_bioact.search import study as study_lib

    study = create_study("o", open_storage(f"sqlite:///{tmp_path}/o.db", heartbeat=None))
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(-1, 1)})  # killed before recording
    assert recover_dead_trials(study) == []  # within the grace: it may still be starting
    monkeypatch.setattr(study_lib, "ORPHAN_GRACE", 0)
    assert recover_dead_trials(study) == [orphan.number]
    failed = study.trials[orphan.number]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert "within 0 s" in failed.user_attrs["failure_reason"]
    retry = study.ask()
    assert retry.user_attrs["retry_of"] == orphan.number
