"""Evolution checkpoints are data: exact resume for every algorithm, and every damaged,
foreign, legacy or malicious file refused with an error naming it (its payload never runs)."""

import io
import json
import os
import pickle
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
from helpers.evolution import teacher_problem

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


def _npz(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


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
        "object array": (evil_npz.getvalue(), "damaged"),
        "bad meta": (buf.getvalue(), "damaged"),
        "foreign npz": (foreign.getvalue(), "not a keras-bioact evolution checkpoint"),
        "tampered": (tampered.getvalue(), "checksum mismatch"),
        "deep meta": (_npz({"meta.json": np.frombuffer(b"[" * 200_000, dtype=np.uint8)}), "damaged"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "truncated",
        "random bytes",
        "pickle",
        "object array",
        "bad meta",
        "foreign npz",
        "tampered",
        "deep meta",
    ],
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
    meta, checksum = checkpoint.read_meta(str(path))
    assert meta["format"] == checkpoint.FORMAT and meta["version"] == checkpoint.VERSION
    assert meta["generation"] == 1 and len(meta["history"]) == 1
    assert set(meta["layout"]) == {"searcher", "rng", "best_genes", "problem_generator"}
    assert len(checksum) == 64


# ------------------------------------------------------------------------------------------
# Forged checkpoints: the checksum is not keyed, so anyone who can write the file can recompute
# it. What such a file may still do is put allowed, checked numbers into allowed places.

GADGET = [  # the path of the exploit: EvoTorch's `import torch` -> sys.path[0]
    ["attr", "_problem"],
    ["attr", "__class__"],
    ["attr", "__init__"],
    ["attr", "__globals__"],
    ["item", "torch"],
    ["attr", "sys"],
    ["attr", "path"],
    ["item", 0],
]
MU = [["attr", "_distribution"], ["attr", "_Distribution__parameters"], ["item", "mu"]]


def _forge(saved, edit, out):
    """`saved` with `edit(body, arrays, out)` applied and the checksum recomputed."""
    with np.load(io.BytesIO(saved), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    body = json.loads(arrays.pop("meta.json").tobytes())["body"]
    edit(body, arrays, out)
    body_bytes = json.dumps(body, sort_keys=True, allow_nan=True).encode()
    document = {"body": body, "sha256": checkpoint._checksum(body_bytes, arrays)}
    arrays["meta.json"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    return _npz(arrays)


def _entry(body, steps):
    return next(e for e in body["layout"]["searcher"] if e[0] == steps)


def _array(body, group, steps):
    return next(e for e in body["layout"][group] if e[0] == steps)[2]["array"]


def _add(steps, kind, value):
    return lambda body, arrays, out: body["layout"]["searcher"].append([steps, kind, value(out)])


def _set_leaf(steps, value):
    return lambda body, arrays, out: _entry(body, steps).__setitem__(2, value)


def _set_meta(**values):
    return lambda body, arrays, out: body.update(values)


def _set_array(group, steps, fn):
    def edit(body, arrays, out):
        key = _array(body, group, steps)
        arrays[key] = fn(arrays[key])

    return edit


def _drop_mu(body, arrays, out):
    entries = body["layout"]["searcher"]
    del arrays[_entry(body, MU)[2]["array"]]
    entries.remove(_entry(body, MU))


def _set_row(**values):
    return lambda body, arrays, out: body["history"][0].update(values)


def _set_best(value):  # best_fitness and the history's best_so_far, consistently
    def edit(body, arrays, out):
        body["best_fitness"] = body["history"][-1]["best_so_far"] = value

    return edit


def _nan_first(a):
    a = a.copy()
    a[0] = np.nan
    return a


FORGED = {  # case: (edit(body, arrays, out_dir), what the error says)
    "gadget path to sys.path[0]": (_add(GADGET, "scalar", str), "has no place"),
    "item outside the allow-list": (
        _add([["attr", "_problem"], ["attr", "_config"], ["item", "seed"]], "scalar", lambda out: 99),
        "has no place",
    ),
    "private attribute outside": (
        _add([["attr", "_problem"], ["attr", "_stdev_init"]], "scalar", lambda out: 9.0),
        "has no place",
    ),
    "missing path": (_drop_mu, "lacks"),
    "setting changed": (_set_leaf([["attr", "_popsize"]], 10**6), "_popsize"),
    "step counter": (_set_leaf([["attr", "_steps_count"]], 2), "_steps_count"),
    "generation -5": (_set_meta(generation=-5), "generation"),
    "generation as text": (_set_meta(generation="1"), "generation"),
    "best_fitness nan": (_set_best(float("nan")), "best_fitness"),
    "best_fitness inf": (_set_best(float("-inf")), "best_fitness"),
    "best_fitness text": (_set_meta(best_fitness="0.999"), "best_fitness"),
    "best_fitness 0.999 alone": (_set_meta(best_fitness=0.999), "best_fitness"),
    "history value text": (_set_row(mean="0.5"), r"history\[1\]"),
    "history row key missing": (lambda body, arrays, out: body["history"][0].pop("spread"), r"history\[1\]"),
    "history nan mean": (_set_row(mean=float("nan")), r"history\[1\]"),
    "array shape": (_set_array("searcher", MU, lambda a: np.zeros(9, a.dtype)), "shape"),
    "array dtype": (_set_array("searcher", MU, lambda a: a.astype(np.float64)), "float64"),
    "array not finite": (_set_array("searcher", MU, _nan_first), "finite"),
    "generator size": (_set_array("problem_generator", ["generator"], lambda a: a[:100]), "shape"),
    "best_genes length": (_set_array("best_genes", ["best_genes"], lambda a: a[:3]), "shape"),
    "best_genes not finite": (_set_array("best_genes", ["best_genes"], _nan_first), "finite"),
    "extra array": (lambda body, arrays, out: arrays.update(extra=np.zeros(3)), "extra"),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_checkpoints_are_refused(tmp_path, saved, monkeypatch, case):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the gadget would write into it
    before = list(sys.path)
    edit, message = FORGED[case]
    out = tmp_path / "run"
    out.mkdir()
    path = out / CHECKPOINT_NAME
    forged = _forge(saved, edit, str(out))
    path.write_bytes(forged)
    with pytest.raises(CheckpointError, match=message) as info:
        _run(out, generations=3, resume=True)
    assert str(path) in str(info.value)
    assert sys.path == before
    assert path.read_bytes() == forged
    assert not (out / "history.csv").exists()


def test_resume_beyond_the_configured_generations_is_refused(tmp_path):
    _run(tmp_path, generations=3, stop_after=2)
    with pytest.raises(CheckpointError, match="generation 2, beyond generations=1"):
        _run(tmp_path, generations=1, resume=True)


def test_an_oversized_array_is_refused_before_it_is_read(tmp_path, saved):
    """A small file whose `mu` decompresses to 100 MB (the genuine one is 32 bytes): its `.npy`
    header is checked against the fresh searcher before any of its data is read."""
    with np.load(io.BytesIO(saved), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = json.loads(arrays["meta.json"].tobytes())["body"]
    key = next(e for e in key["layout"]["searcher"] if e[0] == MU)[2]["array"]
    path = tmp_path / CHECKPOINT_NAME
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, a in arrays.items():
            if name != key:
                with z.open(name + ".npy", "w") as f:
                    np.lib.format.write_array(f, a)
        with z.open(key + ".npy", "w", force_zip64=True) as f:
            count = 25_000_000  # float32: 100 MB
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (count,)}
            )
            chunk = bytes(4_000_000)
            for _ in range(count * 4 // len(chunk)):
                f.write(chunk)
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="shape"):
            _run(tmp_path, generations=3, resume=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB allocated while refusing it"


def test_meta_json_above_the_size_limit_is_refused_unread(tmp_path, saved, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", 1000)
    (tmp_path / CHECKPOINT_NAME).write_bytes(saved)
    with pytest.raises(CheckpointError, match="limit of 1000 bytes"):
        _run(tmp_path, generations=3, resume=True)


def test_gadget_checkpoint_never_runs_the_planted_module(tmp_path):
    """The exploit end to end, in a fresh process (where EvoTorch and the TensorBoard logger
    still import modules lazily): a checkpoint that points `sys.path[0]` at its own directory,
    which holds modules that create a marker file when imported."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "helpers", "evolution.py")
    out = tmp_path / "run"
    student, data = teacher_problem()
    evolve(  # the settings of `helpers.evolution.main`
        student,
        data,
        target="gamma",
        popsize=8,
        generations=3,
        metric="mse",
        seed=7,
        out_dir=str(out),
        progress=False,
        stop_after=1,
    )
    path = out / CHECKPOINT_NAME
    forged = _forge(path.read_bytes(), _add(GADGET, "scalar", str), str(out))
    path.write_bytes(forged)
    marker = tmp_path / "payload-ran"
    for module in ("tensorboard", "fsspec", "configparser", "tqdm", "ray"):
        (out / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, script, str(out), "--generations", "3", "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not marker.exists(), "the planted module ran"
    assert done.returncode != 0 and "CheckpointError" in done.stderr and "has no place" in done.stderr
    assert path.read_bytes() == forged
