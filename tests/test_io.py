"""One atomic write (`keras_bioact._io.atomic_write`) and one exception base class
(`keras_bioact.errors.BioactError`)."""

import os

import pytest

from keras_bioact import datasets
from keras_bioact._io import atomic_write
from keras_bioact.errors import BioactError
from keras_bioact.search import SpaceError, SpecError
from keras_bioact.search.evolution import CheckpointError
from keras_bioact.search.optuna import StorageError

pytestmark = pytest.mark.single_backend


def test_atomic_write_writes_text_and_bytes_with_the_permissions_of_open(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write(tmp_path / "sub" / "a.txt", "grün\n")
        assert path.read_bytes() == "grün\n".encode() and os.stat(path).st_mode & 0o777 == 0o640
        with open(tmp_path / "plain", "w"):
            pass
        assert os.stat(tmp_path / "plain").st_mode & 0o777 == 0o640  # what open() gives
        atomic_write(str(path), b"\x00\x01")
        assert path.read_bytes() == b"\x00\x01"
    finally:
        os.umask(old)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.txt"]  # no temporary file left


def test_an_interrupted_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    atomic_write(path, "old")

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize(
    "error, args",
    [
        (SpecError, ("spec.toml", "data.name", "unknown")),
        (StorageError, ("refused",)),
        (CheckpointError, ("damaged",)),
        (SpaceError, ("space.gamma.n", "out of range")),
        (datasets.DatasetNotFoundError, ("not installed",)),
    ],
)
def test_every_refusal_is_a_bioact_error_and_a_value_error(error, args):
    e = error(*args)
    assert isinstance(e, BioactError) and isinstance(e, ValueError)
    assert issubclass(datasets.DatasetNotFoundError, FileNotFoundError)  # as before
