"""`bioact search --workers N` starts workers that import only installed code: Python files lying
in the working directory (beside the spec) never run; `--allow-code` modules still do."""

import os
import pathlib
import subprocess
import sys
import textwrap

import optuna
import pytest

from keras_bioact.search import count_finished, load_study

pytestmark = pytest.mark.single_backend
ROOT = pathlib.Path(__file__).resolve().parents[3]
# absolute entries only: the working directory is not on it
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
SHADOWS = ("optuna", "keras", "numpy", "jax", "sitecustomize")

SPEC = """
[optuna]
study = "w"
storage = "sqlite:///w.db"
n_trials = 2
workers = 2
[data]
name = "digits"
max_train = 128
max_val = 64
[model]
template = "mymodels:build"
hidden = [4]
[budget]
epochs = 1
verdict_seeds = 0  # what is tested is where the trials ran; the verdict would retrain 2 x 5 models
[optuna.sampler]
name = "random"
seed = 0
[optuna.pruner]
name = "none"
[space]
families = ["relu", "gamma"]
baselines = []
"""


def _plant(directory):
    """Python files named like the modules a worker imports, each leaving a marker if it runs."""
    marker = directory / "planted-code-ran"
    for name in SHADOWS:
        (directory / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n")
    return marker


def _search(directory, coordinator, *flags):
    """Run the search; the process ids of the workers that ran its trials (not the coordinator)."""
    cmd = [*coordinator, "search", "spec.toml", "--quiet", *flags]
    proc = subprocess.Popen(
        cmd, env=ENV, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    study = load_study("w", f"sqlite:///{directory}/w.db")
    trials = study.get_trials()
    assert count_finished(study) >= 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert pids and proc.pid not in pids
    return pids


@pytest.mark.timeout(600)
def test_workers_never_run_python_files_beside_the_spec_and_allow_code_still_reaches_them(tmp_path):
    """Files named like the modules a worker imports lie beside the spec, in the working directory:
    they never run. The coordinator (started like the `bioact` entry point: `-P`, no working
    directory on sys.path) found the `--allow-code` module `mymodels` in a directory of its own
    sys.path (not PYTHONPATH), here the same directory; the workers import it from there, after the
    installed packages, so the planted files stay inert. One search: its processes are the cost."""
    marker = _plant(tmp_path)
    (tmp_path / "mymodels.py").write_text(
        textwrap.dedent("""
        import os
        from keras_bioact.search import mlp

        def build(activation, input_shape, num_classes, hidden=(4,)):
            with open("builders", "a") as f:
                f.write(f"{os.getpid()}\\n")
            return mlp(activation, input_shape, num_classes, hidden=hidden)
        """)
    )
    (tmp_path / "spec.toml").write_text(SPEC)
    coordinator = [
        sys.executable,
        "-P",
        "-c",
        f"import sys; sys.path.append({str(tmp_path)!r}); from keras_bioact.cli import main; "
        "sys.exit(main(sys.argv[1:]))",
    ]
    pids = _search(tmp_path, coordinator, "--allow-code", "mymodels")
    assert not marker.exists(), marker.read_text()
    builders = {int(line) for line in (tmp_path / "builders").read_text().split()}
    assert pids <= builders  # every trial's worker built its model with mymodels.build
