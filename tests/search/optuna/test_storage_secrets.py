"""A password in a storage URL never leaves the process: not in messages, not on worker command
lines, not in the study's stored spec."""

import io
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from keras_bioact.search import load_spec
from keras_bioact.search.optuna import study as study_lib
from keras_bioact.search.optuna.storage import StorageError, display_url, open_storage, redact
from keras_bioact.search.optuna.workers import worker_command, worker_main
from keras_bioact.search.spec import SpecError

pytestmark = pytest.mark.single_backend
ROOT = pathlib.Path(__file__).resolve().parents[3]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
PASSWORD = "Hunter2-s3cret"

SPEC = """
[optuna]
study = "pw"
{storage}
n_trials = 2
workers = 2
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


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            f"postgresql+psycopg2://bioact:{PASSWORD}@db:5432/bioact",
            "postgresql+psycopg2://bioact:***@db:5432/bioact",
        ),
        (
            f"mysql+pymysql://root:{PASSWORD}@db/bioact?charset=utf8",
            "mysql+pymysql://root:***@db/bioact?charset=utf8",
        ),
        ("postgresql://bioact:Hunter2%40s3cret@db/bioact", "postgresql://bioact:***@db/bioact"),
        (
            "postgresql://bioact:Hunter2@s3cret@db/bioact",
            "postgresql://bioact:***@db/bioact",
        ),  # '@' unencoded
        (
            f"postgresql://db/bioact?user=bioact&password={PASSWORD}",
            "postgresql://db/bioact?user=bioact&password=***",
        ),
        ("postgresql://bioact@db/bioact", "postgresql://bioact@db/bioact"),
        ("sqlite:///runs/a:b@c.db", "sqlite:///runs/a:b@c.db"),
        ("journal:///runs/study.log", "journal:///runs/study.log"),
    ],
)
def test_display_url_hides_the_password(url, shown):
    assert display_url(url) == shown
    assert "s3cret" not in display_url(url) and "s3cret" not in redact(f"failed: {url} ({url!r})", url)
    if url.count("@") == 1 and "password=" not in url and url.startswith(("postgres", "mysql")):
        # what SQLAlchemy itself shows (which also re-encodes file paths, and stops a password at '@')
        assert display_url(url) == make_url(url).render_as_string(hide_password=True)


def test_redact_hides_the_password_as_written_and_decoded():
    url = "postgresql://bioact:p%40ss%2Fword@db/bioact"
    message = "could not connect with password 'p@ss/word' (p%40ss%2Fword) to " + url
    assert "p@ss/word" not in redact(message, url) and "p%40ss" not in redact(message, url)
    assert "postgresql://bioact:***@db/bioact" in redact(message, url)


def test_a_password_with_an_unencoded_at_sign_is_refused_before_connecting():
    with pytest.raises(StorageError, match="percent-encoded") as info:
        open_storage("postgresql+psycopg2://bioact:Hunter2@s3cret@127.0.0.1:1/bioact")
    assert "s3cret" not in str(info.value) and "Hunter2" not in str(info.value)


# One child process runs the `bioact` calls that start no worker (a Python with Keras costs ~10 s
# to start), each in its own folder with its file descriptors 1 and 2 sent to files: whatever any
# part of the process writes (print, logging, warnings, a library's handler) is what it captured.
CALLS = """
import json, os, sys, tempfile
from keras_bioact.cli import main
out = []
for folder, argv in json.loads(sys.argv[1]):
    os.chdir(folder)
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile("w+") as o, tempfile.TemporaryFile("w+") as e:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(o.fileno(), 1); os.dup2(e.fileno(), 2)
        try:
            rc = main(argv)
        except SystemExit as exit:
            rc = exit.code
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        o.seek(0); e.seek(0)
        out.append([rc, o.read(), e.read()])
print(json.dumps(out))
"""


def test_a_password_never_reaches_stdout_or_stderr(tmp_path):
    """A PostgreSQL URL with a password, pointing at a closed local port (no server needed): on
    the command line, in the spec, to `show`, and to a search with worker processes."""
    url = f"postgresql+psycopg2://bioact:{PASSWORD}@127.0.0.1:{_closed_port()}/bioact"
    argvs = {
        "--storage": ["search", "spec.toml", "--storage", url, "--create-only"],
        "optuna.storage": ["search", "spec.toml", "--create-only"],
        "show": ["show", "pw", "--storage", url],
        "--workers": ["search", "spec.toml", "--storage", url, "--workers", "2", "--quiet"],
    }
    for how in argvs:
        (tmp_path / how).mkdir()
        in_spec = f'storage = "{url}"' if how == "optuna.storage" else ""
        (tmp_path / how / "spec.toml").write_text(SPEC.format(storage=in_spec))
    inline = [[str(tmp_path / how), argv] for how, argv in argvs.items() if how != "--workers"]
    r = subprocess.run([sys.executable, "-c", CALLS, json.dumps(inline)], env=ENV, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stderr
    results = dict(zip(["--storage", "optuna.storage", "show"], json.loads(r.stdout), strict=True))
    w = subprocess.run([sys.executable, "-m", "keras_bioact.cli", *argvs["--workers"]], env=ENV,
                       cwd=tmp_path / "--workers", capture_output=True, text=True, timeout=300)  # fmt: skip
    results["--workers"] = [w.returncode, w.stdout, w.stderr]
    assert PASSWORD not in r.stdout + w.stdout + w.stderr
    for how, (rc, out, err) in results.items():
        assert rc == 2, (how, out + err)
        assert "bioact:***@127.0.0.1" in err and "Traceback" not in err, (how, err)
        assert ("optuna.storage" if how == "optuna.storage" else "--storage") in err, (how, err)
        assert sorted(p.name for p in (tmp_path / how).iterdir()) == ["spec.toml"], how  # nothing written


def test_workers_get_the_url_on_stdin_not_on_their_command_line_or_in_their_environment(
    tmp_path, monkeypatch
):
    url = f"postgresql+psycopg2://bioact:{PASSWORD}@db/bioact"
    (tmp_path / "spec.toml").write_text(SPEC.format(storage=f'storage = "{url}"'))
    spec = load_spec(tmp_path / "spec.toml")
    monkeypatch.setenv("PYTHONPATH", f":{ROOT}:")  # empty entries: the working directory
    cmd, env, job = worker_command(spec)
    assert not any(PASSWORD in arg for arg in cmd) and not any(PASSWORD in value for value in env.values())
    # -P: no working directory on sys.path
    assert cmd == [sys.executable, "-P", "-m", "keras_bioact.search.optuna"]
    assert env["PYTHONPATH"] == str(ROOT)
    # the worker side: the URL comes with the job on stdin
    seen = []

    def open_study(spec, worker_index):
        seen.append((spec.storage, worker_index))
        raise SpecError(spec.source, "optuna.storage", "not opened in this test")

    monkeypatch.setattr(study_lib, "open_study", open_study)
    stdin = io.BytesIO(json.dumps({**job, "index": 3}).encode())
    assert worker_main(["--worker-index", "3"], stdin=stdin) == 2
    assert seen == [(url, 3)]


def test_the_stored_spec_has_no_password(tmp_path):
    url = f"postgresql+psycopg2://bioact:{PASSWORD}@db/bioact"
    (tmp_path / "spec.toml").write_text(SPEC.format(storage=f'storage = "{url}"'))
    spec = load_spec(tmp_path / "spec.toml")
    assert PASSWORD in json.dumps(spec.raw)  # the spec file has it ...
    stored = study_lib.stored_spec(spec)
    assert PASSWORD not in json.dumps(stored)  # ... the study does not
    assert stored["raw"]["optuna"]["storage"] == "postgresql+psycopg2://bioact:***@db/bioact"
    assert stored["raw"]["data"] == spec.raw["data"] and spec.storage == url  # nothing else changed
