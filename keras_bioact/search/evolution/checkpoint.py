"""Evolution checkpoints as data: one `.npz` file that can never run code when it is read.

A checkpoint is a NumPy `.npz` archive, written atomically and read with
`allow_pickle=False`. It holds:

- `meta.json`: a UTF-8 JSON document (as a `uint8` array) with the format name and version,
  the generation, the history, the search settings, the model fingerprint and a SHA-256
  checksum over everything else in the file;
- one array per numeric piece of state: the searcher's tensors (distribution parameters,
  population, optimizer state), the random generators' states and the best genome.

Reading a checkpoint never constructs an object from the file. The caller builds a fresh
searcher from the (checked) settings, and `restore_state` writes the saved numbers and
scalars into that object's existing attributes, path by path; a path the fresh searcher does
not have is an error, not a new object.

A truncated, corrupted, foreign or legacy (pickle) file raises `CheckpointError` naming the
file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["CHECKPOINT_NAME", "FORMAT", "LEGACY_NAME", "VERSION", "CheckpointError", "read", "write"]

CHECKPOINT_NAME = "checkpoint.npz"
LEGACY_NAME = "checkpoint.pkl"  # keras-bioact 0.1 (pickle): refused, never read
FORMAT = "keras-bioact/evolution-checkpoint"
VERSION = 2
_META = "meta.json"
# Searcher attributes that are caches, back references or settings rebuilt from the spec.
# Hooks (`_before_step_hook`, `_log_hook`, ...) hold the loggers a run attaches, not state.
_SKIP = ("_problem", "_first_step_datetime", "LazyReporter", "__exclude", "DISTRIBUTION_", "_hook")


class CheckpointError(ValueError):
    """An evolution checkpoint that cannot be used; the message names the file."""


def atomic_write(path, payload):
    """Write `payload` (bytes) to `path` through a temporary file and `os.replace`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------------
# Object state <-> leaves


def _is_scalar(v):
    return v is None or isinstance(v, (bool, int, float, str))


def _walk(obj, steps, out, seen):
    import torch

    if isinstance(obj, torch.Tensor):
        out.append((steps, "tensor", obj.detach().cpu().numpy()))
    elif isinstance(obj, torch.Generator):
        out.append((steps, "generator", obj.get_state().numpy()))
    elif isinstance(obj, np.ndarray):
        out.append((steps, "ndarray", obj))
    elif isinstance(obj, np.generic):
        out.append((steps, "scalar", obj.item()))
    elif _is_scalar(obj):
        out.append((steps, "scalar", obj))
    elif id(obj) in seen:
        return
    elif isinstance(obj, tuple) and all(_is_scalar(v) for v in obj):
        out.append((steps, "tuple", list(obj)))
    elif isinstance(obj, (list, tuple)):
        seen.add(id(obj))
        for i, v in enumerate(obj):
            _walk(v, steps + [["item", i]], out, seen)
    elif isinstance(obj, dict):
        seen.add(id(obj))
        for k, v in obj.items():
            if isinstance(k, (str, int)) and not isinstance(k, bool):
                _walk(v, steps + [["item", k]], out, seen)
    elif type(obj).__module__.split(".")[0] == "evotorch" and hasattr(obj, "__dict__"):
        seen.add(id(obj))
        for name, v in vars(obj).items():
            if not any(s in name for s in _SKIP):
                _walk(v, steps + [["attr", name]], out, seen)
    # anything else (dtypes, devices, slices, sets, hooks, foreign objects) is a setting


def state_leaves(obj):
    """`[(steps, kind, value)]` for every number, string and tensor in an EvoTorch object."""
    out = []
    _walk(obj, [], out, set())
    return out


def _get(obj, step):
    kind, key = step
    if kind == "attr":
        return getattr(obj, key)
    return obj[key]


def restore_state(obj, leaves, path):
    """Write `leaves` (from `state_leaves`) into the matching attributes of `obj`."""
    import torch

    _make_population(obj, leaves)
    for steps, kind, value in leaves:
        where = ".".join(str(k) for _, k in steps)
        if kind not in ("tensor", "generator", "ndarray", "scalar", "tuple") or not steps:
            raise CheckpointError(f"{path}: unknown kind of state {kind!r} at {where!r}")
        try:
            parent = obj
            for step in steps[:-1]:
                parent = _get(parent, step)

            old = _get(parent, steps[-1]) if steps[-1][0] == "item" else getattr(parent, steps[-1][1], None)
        except (AttributeError, KeyError, IndexError, TypeError):
            raise CheckpointError(
                f"{path}: the checkpoint's state {where!r} has no place in this searcher "
                "(written by another algorithm or version)"
            ) from None
        if kind == "tensor":
            like = old if isinstance(old, torch.Tensor) else None
            new = torch.as_tensor(np.array(value))
            if like is not None:
                new = new.to(dtype=like.dtype, device=like.device)
        elif kind == "generator":
            if not isinstance(old, torch.Generator):
                raise CheckpointError(f"{path}: {where!r} is not a random generator in this searcher")
            old.set_state(torch.as_tensor(np.array(value, dtype=np.uint8)))
            continue
        elif kind == "tuple":
            new = tuple(value)
        else:
            new = np.array(value) if kind == "ndarray" else value
        kind_, key = steps[-1]
        if kind_ == "attr":
            if not isinstance(key, str) or key.startswith("__") or not hasattr(parent, key):
                raise CheckpointError(
                    f"{path}: the checkpoint's state {where!r} has no place in this searcher"
                )
            setattr(parent, key, new)
        elif isinstance(parent, tuple):
            if not (isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor)):
                raise CheckpointError(f"{path}: cannot restore {where!r} (inside a tuple)")
            old.copy_(new)
        else:
            parent[key] = new


def _make_population(searcher, leaves):
    """Distribution-based searchers create their population at the first step: give a fresh
    one an empty population of the saved size, for `restore_state` to fill in."""
    data = [v for steps, _, v in leaves if steps == [["attr", "_population"], ["attr", "_data"]]]
    if not data or getattr(searcher, "_population", True) is not None:
        return
    from evotorch import SolutionBatch

    searcher._population = SolutionBatch(searcher.problem, popsize=int(np.shape(data[0])[0]), empty=True)


# ------------------------------------------------------------------------------------------
# File format


def _checksum(meta_bytes, arrays):
    h = hashlib.sha256(meta_bytes)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write(path, meta, groups):
    """Write a checkpoint: `meta` (JSON-able dict) and `groups` `{name: leaves}`."""
    arrays, layout = {}, {}
    for group, leaves in groups.items():
        entries = []
        for steps, kind, value in leaves:
            if kind in ("tensor", "ndarray", "generator"):
                key = f"{group}/{len(entries)}"
                arrays[key] = np.asarray(value)
                entries.append([steps, kind, {"array": key}])
            else:
                entries.append([steps, kind, value])
        layout[group] = entries
    body = {**meta, "format": FORMAT, "version": VERSION, "layout": layout}
    body_bytes = json.dumps(body, sort_keys=True, allow_nan=True).encode()
    document = {"body": body, "sha256": _checksum(body_bytes, arrays)}
    arrays[_META] = np.frombuffer(json.dumps(document, allow_nan=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def read(path):
    """Read and verify a checkpoint; returns `(meta, {group: leaves})`."""
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: the checkpoint is empty (0 bytes); the file is damaged")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(
            f"{path}: not a readable keras-bioact checkpoint (truncated or corrupted?): {e}"
        ) from None
    if _META not in arrays:
        raise CheckpointError(f"{path}: not a keras-bioact evolution checkpoint (no {_META})")
    try:
        document = json.loads(arrays.pop(_META).tobytes().decode())
        body = document["body"]
        expected = document["sha256"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: the checkpoint's {_META} is damaged ({e})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a keras-bioact evolution checkpoint (format {body.get('format')!r})"
        )
    if body.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {body.get('version')!r}; this keras-bioact reads "
            f"version {VERSION} (start a new output directory)"
        )
    body_bytes = json.dumps(body, sort_keys=True, allow_nan=True).encode()
    if _checksum(body_bytes, arrays) != expected:
        raise CheckpointError(f"{path}: checksum mismatch: the checkpoint was modified or damaged")
    groups = {}
    for group, entries in body.pop("layout").items():
        groups[group] = [
            (steps, kind, arrays[value["array"]] if isinstance(value, dict) else value)
            for steps, kind, value in entries
        ]
    return body, groups


def rng_leaves():
    """The global generators' states (Python, NumPy legacy, torch) as leaves: read, for the
    record (the file format's `rng` group); `evolve` never draws from or restores them."""
    import random

    import torch

    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002
    return [
        (["python"], "tuple", [version, None, gauss]),
        (["python_state"], "ndarray", np.asarray(internal, dtype=np.int64)),
        (["numpy"], "tuple", [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])]),
        (["numpy_state"], "ndarray", np.asarray(np_state[1])),
        (["torch"], "ndarray", torch.get_rng_state().numpy()),
    ]
