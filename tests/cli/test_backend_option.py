"""`bioact --backend` sets KERAS_BACKEND for the command and its worker processes; `bioact search`
and `bioact show` state the backend in the same line; the progress bar says the first trial is
compiling until a trial finishes."""

import os
import pathlib
import subprocess
import sys

import keras
import pytest

from keras_bioact.cli import main
from keras_bioact.search import parse_spec
from keras_bioact.search.optuna import run_study, workers

pytestmark = pytest.mark.single_backend
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_backend_option_is_stated_and_set_before_keras(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optuna]\nn_trails = 1\n")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import sys; from keras_bioact.cli import main; rc = main(sys.argv[1:]); "
        "print('keras imported' if 'keras' in sys.modules else 'keras not imported', "
        "__import__('os').environ.get('KERAS_BACKEND'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "--backend", "torch", "search", str(bad)],
        env=env, capture_output=True, text=True, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    assert out[0] == (
        "keras backend: torch (from --backend; choose with `bioact --backend {jax,tensorflow,torch}`)"
    )
    assert out[-1] == "keras not imported torch"


def test_search_and_show_state_the_same_backend_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    bad = tmp_path / "bad.toml"
    bad.write_text("[optuna]\nn_trails = 1\n")
    assert main(["search", str(bad)]) == 2
    search = capsys.readouterr().out.splitlines()[0]
    assert main(["show", "none", "--storage", f"sqlite:///{tmp_path}/none.db"]) != 0
    assert capsys.readouterr().out.splitlines()[0] == search
    assert search.startswith(f"keras backend: {keras.backend.backend()} (") and "--help" not in search
    other = next(b for b in ("jax", "tensorflow") if b != keras.backend.backend())
    assert main(["--backend", other, "search", str(bad)]) == 2  # Keras is in use in this process
    assert "already in use" in capsys.readouterr().err


def test_backend_option_reaches_the_worker_processes(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    bad = tmp_path / "bad.toml"
    bad.write_text("[optuna]\nn_trails = 1\n")
    assert main(["--backend", keras.backend.backend(), "search", str(bad)]) == 2
    spec = parse_spec({"optuna": {"storage": f"sqlite:///{tmp_path}/w.db", "workers": 2}}, source="s")
    assert workers.worker_command(spec)[1]["KERAS_BACKEND"] == keras.backend.backend()


def test_progress_bar_says_compiling_until_the_first_trial_finishes(tmp_path, capsys):
    spec = parse_spec(
        {
            "optuna": {"study": "c", "storage": f"sqlite:///{tmp_path}/c.db", "n_trials": 1},
            "data": {"name": "digits", "max_train": 64},
            "model": {"hidden": [4]},
            "budget": {"epochs": 1},
            "space": {"families": ["relu"]},
        },
        source="c.toml",
    )
    run_study(spec, progress=True)
    err = capsys.readouterr().err
    first, last = err.index("compiling the first trial..."), err.rindex("best=")
    assert first < last and "compiling" not in err[last:]
