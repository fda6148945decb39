"""Evolution checkpoints are data: exact resume for every algorithm, and every damaged,
foreign, legacy or malicious file refused with an error naming it (its payload never runs)."""

import io
import pickle
import zipfile

import numpy as np
import pytest
from _evolution_utils import teacher_problem

from keras_bioact.search.evolution import ALGORITHMS, checkpoint, evolve
from keras_bioact.search.evolution.checkpoint import CHECKPOINT_NAME, CheckpointError

pytestmark = pytest.mark.single_backend


def _run(out_dir, generations=4, algorithm="snes", **kwargs):
    student, data = teacher_problem(64)
    return evolve(
        student,
        data,
        target="gamma",
        algorithm=algorithm,
        popsize=6,
        generations=generations,
        metric="mse",
        seed=3,
        out_dir=str(out_dir),
        progress=False,
        tensorboard=False,
        **kwargs,
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_resume_equals_an_uninterrupted_run(tmp_path, algorithm):
    straight = _run(tmp_path / "straight", algorithm=algorithm)
    partial = _run(tmp_path / "split", algorithm=algorithm, stop_after=2)
    assert len(partial.history) == 2
    resumed = _run(tmp_path / "split", algorithm=algorithm, resume=True)
    assert [r["generation"] for r in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(straight.history, resumed.history, strict=True):
        np.testing.assert_allclose([a["best"], a["mean"]], [b["best"], b["mean"]], rtol=1e-6)
    np.testing.assert_allclose(straight.best_genes, resumed.best_genes, rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A genuine checkpoint after 1 of 3 generations (bytes)."""
    out = tmp_path_factory.mktemp("genuine")
    _run(out, generations=3, stop_after=1)
    return (out / CHECKPOINT_NAME).read_bytes()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def _damaged(saved, marker):
    half = saved[: len(saved) // 2]
    buf = io.BytesIO()
    np.savez(buf, **{"meta.json": np.zeros(3, dtype=np.uint8), "x": np.ones(2)})
    foreign = io.BytesIO()
    np.savez(foreign, weights=np.ones(3))
    evil_npz = io.BytesIO()
    np.savez(evil_npz, **{"meta.json": np.array([_Payload(marker)], dtype=object)})
    # a genuine file with one array changed: the checksum no longer matches
    tampered = io.BytesIO()
    with np.load(io.BytesIO(saved), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if k.startswith("searcher/"))
    arrays[key] = arrays[key] + 1
    np.savez(tampered, **arrays)
    return {
        "empty": (b"", "empty"),
        "truncated": (half, "truncated or corrupted"),
        "random bytes": (np.random.default_rng(0).bytes(4096), "truncated or corrupted"),
        "pickle": (pickle.dumps(_Payload(marker)), "truncated or corrupted"),
        "object array": (evil_npz.getvalue(), "truncated or corrupted"),
        "bad meta": (buf.getvalue(), "damaged"),
        "foreign npz": (foreign.getvalue(), "not a keras-bioact evolution checkpoint"),
        "tampered": (tampered.getvalue(), "checksum mismatch"),
    }


@pytest.mark.parametrize(
    "case",
    ["empty", "truncated", "random bytes", "pickle", "object array", "bad meta", "foreign npz", "tampered"],
)
def test_damaged_or_malicious_checkpoints_are_refused(tmp_path, saved, case):
    marker = tmp_path / "payload-ran"
    payload, message = _damaged(saved, str(marker))[case]
    out = tmp_path / "run"
    out.mkdir()
    path = out / CHECKPOINT_NAME
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match=message) as info:
        _run(out, generations=3, resume=True)
    assert str(path) in str(info.value)
    assert not marker.exists(), "the checkpoint's payload ran"
    assert path.read_bytes() == payload  # never replaced


def test_legacy_pickle_checkpoint_is_never_loaded(tmp_path):
    marker = tmp_path / "payload-ran"
    (tmp_path / "checkpoint.pkl").write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(CheckpointError, match="pickle checkpoint, which is never loaded"):
        _run(tmp_path, generations=2, resume=True)
    assert not marker.exists()


def test_no_silent_restart_or_overwrite(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        _run(tmp_path / "none", resume=True)
    assert not (tmp_path / "none" / "history.csv").exists()
    first = _run(tmp_path / "run", generations=2)
    before = (tmp_path / "run" / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(CheckpointError, match="overwrite=True"):
        _run(tmp_path / "run", generations=2)
    assert (tmp_path / "run" / CHECKPOINT_NAME).read_bytes() == before
    again = _run(tmp_path / "run", generations=2, overwrite=True)
    np.testing.assert_allclose(first.best_genes, again.best_genes, rtol=1e-6)
    with pytest.raises(ValueError, match="exclude each other"):
        _run(tmp_path / "run", resume=True, overwrite=True)


def test_checkpoint_is_an_npz_of_plain_arrays_with_version_and_checksum(tmp_path, saved):
    path = tmp_path / "c.npz"
    path.write_bytes(saved)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "meta.json.npy" in names
    with np.load(path, allow_pickle=False) as z:  # loads without pickle
        assert all(z[k].dtype != object for k in z.files)
    meta, groups = checkpoint.read(str(path))
    assert meta["format"] == checkpoint.FORMAT and meta["version"] == checkpoint.VERSION
    assert meta["generation"] == 1 and len(meta["history"]) == 1
    assert {"searcher", "rng", "best_genes"} <= set(groups)


def test_restore_refuses_state_that_has_no_place_in_the_searcher():
    class Target:
        pass

    with pytest.raises(CheckpointError, match="no place"):
        checkpoint.restore_state(Target(), [([["attr", "planted"]], "scalar", 1)], "f.npz")
    with pytest.raises(CheckpointError, match="unknown kind"):
        checkpoint.restore_state(Target(), [([["attr", "x"]], "code", "os.system")], "f.npz")
