"""Evolution checkpoints as data: one `.npz` file that can never run code when it is read.

A checkpoint is a NumPy `.npz` archive (a zip of `.npy` files), written atomically. It holds:

- `meta.json`: a UTF-8 JSON document (as a `uint8` array) with the format name and version,
  the generation, the history, the search settings, the model fingerprint, the layout (which
  state path each value or array belongs to) and a SHA-256 checksum over everything else;
- one array per numeric piece of state: the searcher's tensors (distribution parameters,
  population, optimizer state), the random generators' states and the best genome.

Reading never constructs an object from the file, never unpickles, and reads in two steps:

1. `read_meta` reads `meta.json` only: at most `MAX_META_BYTES`, nested at most `MAX_DEPTH`
   deep, with the format name and version checked.
2. `read_state` matches the layout against `reference`, the state leaves (`state_leaves`) of
   freshly built objects: the file must hold exactly the fresh objects' paths (a missing or an
   extra path is an error), each with the fresh leaf's kind, and each array's `.npy` header
   must declare the fresh leaf's shape and dtype. An array's data is read only after its header
   passed, so memory use is bounded by the fresh state, never by sizes written in the file.
   Then the checksum is verified.

`restore_state` then checks every value (tensors finite, settings equal to the fresh object's,
counters and flags of their type) and writes them into the fresh object, walking only the paths
that object itself produced; a path read from the file is never followed.

The checksum detects accidents (a damaged, truncated or half-written file), not forgery: it is
not keyed, and whoever can write the file can recompute it. A forged file can therefore only put
allowed, checked numbers into allowed places (the searcher's own tensors, its step counter and
flags, the history, the best fitness and genome); it cannot reach any other object, change a
setting, or make the reader allocate more than the fresh state needs.

A truncated, corrupted, foreign, oversized, forged-out-of-shape or legacy (pickle) file raises
`CheckpointError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import numpy as np

from keras_bioact._io import atomic_write
from keras_bioact.errors import BioactError

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "LEGACY_NAME",
    "VERSION",
    "CheckpointError",
    "read_meta",
    "read_state",
    "restore_state",
    "state_leaves",
    "write",
]

CHECKPOINT_NAME = "checkpoint.npz"
LEGACY_NAME = "checkpoint.pkl"  # keras-bioact 0.1 (pickle): refused, never read
FORMAT = "keras-bioact/evolution-checkpoint"
VERSION = 2
_META = "meta.json"
MAX_META_BYTES = 64 * 2**20  # meta.json: ~200 bytes a generation, so ~300,000 generations
MAX_DEPTH = 16  # nesting of meta.json (a genuine one: 8 levels, more only in algorithm_options)
# Searcher attributes that are caches, back references or settings rebuilt from the spec.
# Hooks (`_before_step_hook`, `_log_hook`, ...) hold the loggers a run attaches, not state.
_SKIP = ("_problem", "_first_step_datetime", "LazyReporter", "__exclude", "DISTRIBUTION_", "_hook")


class CheckpointError(BioactError):
    """An evolution checkpoint that cannot be used; the message names the file (and is cut to
    1,000 characters, since it may quote the file)."""

    def __init__(self, message):
        super().__init__(message if len(message) <= 1000 else message[:1000] + " ...")


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


def _key(steps):
    """`steps` (from a file or from `state_leaves`) as a hashable path, or None if malformed.
    A step is `["attr", name]` or `["item", key]`; the top-level groups (`rng`, `best_genes`,
    `problem_generator`) name their leaves with one plain string."""
    if not isinstance(steps, list) or not steps:
        return None
    if len(steps) == 1 and isinstance(steps[0], str):
        return (steps[0],)
    key = []
    for step in steps:
        if not (isinstance(step, list | tuple) and len(step) == 2 and step[0] in ("attr", "item")):
            return None
        if not isinstance(step[1], str | int) or isinstance(step[1], bool):
            return None
        key.append((step[0], step[1]))
    return tuple(key)


def _where(steps):
    return ".".join(str(s[1]) if isinstance(s, list | tuple) else str(s) for s in steps)


def _attrs(*names):
    return tuple(("attr", n) for n in names)


def _filled_later(key, fresh):
    """`(shape, dtype)` of the tensor EvoTorch puts at `key`, a scalar placeholder in a fresh
    searcher, at its first step, or None: CMA-ES's evolution paths `p_c` and `p_sigma` (0.0
    until the first update; like `m`) and the record of the indices a GA's or Cosyne's
    population was sliced with (one per member)."""
    if key in (_attrs("p_c"), _attrs("p_sigma")) and _attrs("m") in fresh:
        m = fresh[_attrs("m")][1]
        return m.shape, m.dtype
    if key == _attrs("_population", "_slice") and _attrs("_population", "_data") in fresh:
        return fresh[_attrs("_population", "_data")][1].shape[:1], np.dtype(np.int64)
    return None


# Scalars a run changes (all others are settings, rebuilt from the spec and checked equal):
# name -> the check of the saved value.
_RUN_SCALARS = {
    "_steps_count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "_first_iter": lambda v: isinstance(v, bool),
    "_first_generation": lambda v: isinstance(v, bool),
    "_mean_eval": lambda v: v is None or (isinstance(v, float) and np.isfinite(v)),
}


def _same(a, b):
    return type(a) is type(b) and (a == b or (isinstance(a, float) and np.isnan(a) and np.isnan(b)))


def _check_value(steps, fresh, kind, value, path):
    """Refuse a value that the searcher cannot have had at `steps` (a leaf of the fresh one)."""
    where, name = _where(steps), steps[-1][1]
    if kind in ("tensor", "ndarray", "generator"):
        # a population's fitnesses are NaN where a candidate's fitness was not finite
        if value.dtype.kind == "f" and name != "_evdata" and not np.isfinite(value).all():
            raise CheckpointError(f"{path}: the checkpoint's {where!r} is not finite")
    elif kind == "scalar" and steps[-1][0] == "attr" and name in _RUN_SCALARS:
        if not _RUN_SCALARS[name](value):
            raise CheckpointError(f"{path}: the checkpoint's {where!r} = {value!r} is not legal")
    elif not (_same(fresh, value) if kind == "scalar" else list(fresh) == value):
        raise CheckpointError(
            f"{path}: the checkpoint's {where!r} is {value!r}, this searcher's is {fresh!r}: a setting, "
            "rebuilt from the search's settings and never taken from the file (resume with the same "
            "settings and algorithm_options)"
        )


def _get(obj, step):
    kind, key = step
    return getattr(obj, key) if kind == "attr" else obj[key]


def restore_state(obj, reference, saved, path):
    """Write `saved` (`{path: (kind, value)}` from `read_state`) into `obj`, whose own state
    leaves are `reference` (`state_leaves(obj)`, the allow-list): every value is checked
    before any is written, and only `reference`'s paths are walked."""
    import torch

    for steps, _, fresh in reference:
        _check_value(steps, fresh, *saved[_key(steps)], path)
    for steps, _, fresh in reference:
        kind, value = saved[_key(steps)]
        if kind == "tuple" or (kind == "scalar" and _same(fresh, value)):
            continue  # a setting (checked equal) or a counter that did not change
        parent = obj
        for step in steps[:-1]:
            parent = _get(parent, step)
        old = _get(parent, steps[-1])
        if kind == "generator":
            try:
                old.set_state(torch.as_tensor(np.array(value, dtype=np.uint8)))
            except RuntimeError as e:
                raise CheckpointError(f"{path}: {_where(steps)!r} is not a generator state ({e})") from None
            continue
        if kind == "tensor":
            new = torch.as_tensor(np.array(value))
            if isinstance(old, torch.Tensor):
                new = new.to(dtype=old.dtype, device=old.device)
        else:
            new = np.array(value) if kind == "ndarray" else value
        if steps[-1][0] == "attr":
            setattr(parent, steps[-1][1], new)
        elif isinstance(parent, tuple):
            old.copy_(new)  # a tensor inside a tuple (shape and dtype checked)
        else:
            parent[steps[-1][1]] = new


def make_population(searcher):
    """Give a distribution-based searcher, which creates its population at its first step, the
    empty population it would create (`popsize` members from its own settings, never from a
    file), so that its state leaves include the population's."""
    if getattr(searcher, "_population", True) is not None:
        return
    from evotorch import SolutionBatch

    searcher._population = SolutionBatch(
        searcher.problem, popsize=searcher._popsize, device=searcher._distribution.device, empty=True
    )


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


def _npy_header(f):
    """`(shape, fortran_order, dtype, header_size)` of the `.npy` stream `f` (bounded header)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f".npy format version {version}")
    return shape, fortran, dtype, f.tell()


def _read_array(zf, name, shape, dtype):
    """The array `name` of the open zip `zf`, if its header declares `shape` and `dtype`."""
    info = zf.getinfo(name + ".npy")
    with zf.open(info) as f:
        got_shape, fortran, got_dtype, offset = _npy_header(f)
        if got_shape != tuple(shape) or got_dtype != dtype:
            raise CheckpointError(
                f"array {name!r} has shape {list(got_shape)} and dtype {got_dtype}; this searcher's has "
                f"shape {list(shape)} and dtype {dtype}"
            )
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if info.file_size != offset + nbytes:
            raise CheckpointError(
                f"array {name!r} is {info.file_size} bytes, its header says {offset + nbytes}"
            )
        data = f.read(nbytes)
        if len(data) != nbytes or f.read(1):
            raise CheckpointError(f"array {name!r} does not match its size")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _depth(value):
    """How deeply a JSON value nests (iteratively: no recursion on untrusted input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict | list):
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _unreadable(path, error):
    return CheckpointError(
        f"{path}: not a readable keras-bioact checkpoint (truncated or corrupted?): "
        f"{type(error).__name__}: {error}"
    )


def read_meta(path):
    """Step 1: read and check a checkpoint's `meta.json` (no array is read).

    Returns `(meta, checksum)`: the JSON body (with `"layout"`, the state path of every value
    and array) and the checksum `read_state` verifies."""
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: the checkpoint is empty (0 bytes); the file is damaged")
    try:
        with zipfile.ZipFile(path) as zf:
            if _META + ".npy" not in zf.NameToInfo:
                raise CheckpointError(f"{path}: not a keras-bioact evolution checkpoint (no {_META})")
            with zf.open(_META + ".npy") as f:
                shape, _, dtype, offset = _npy_header(f)
                if dtype != np.uint8 or len(shape) != 1:
                    raise CheckpointError(
                        f"{path}: the checkpoint's {_META} is damaged ({dtype}{list(shape)})"
                    )
                if shape[0] > MAX_META_BYTES:
                    raise CheckpointError(
                        f"{path}: the checkpoint's {_META} is {shape[0]} bytes, above the limit of "
                        f"{MAX_META_BYTES} bytes (checkpoint.MAX_META_BYTES)"
                    )
                text = f.read(shape[0])
    except CheckpointError:
        raise
    except Exception as e:  # whatever the file's bytes make zipfile or NumPy raise
        raise _unreadable(path, e) from None
    try:
        document = json.loads(text.decode())
        if _depth(document) > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} deep")
        body, checksum = document["body"], document["sha256"]
    except Exception as e:  # JSON, UTF-8, too deep (RecursionError), not a document (Key/TypeError)
        raise CheckpointError(
            f"{path}: the checkpoint's {_META} is damaged ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        format_ = body.get("format") if isinstance(body, dict) else None
        raise CheckpointError(f"{path}: not a keras-bioact evolution checkpoint (format {format_!r})")
    if body.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {body.get('version')!r}; this keras-bioact reads "
            f"version {VERSION} (start a new output directory)"
        )
    if not isinstance(checksum, str) or not isinstance(body.get("layout"), dict):
        raise CheckpointError(f"{path}: the checkpoint's {_META} is damaged (no layout or checksum)")
    return body, checksum


def read_state(path, meta, checksum, reference):
    """Step 2: read the state that `meta["layout"]` (from `read_meta`) lays out, but only where
    it fills exactly `reference` (`{group: leaves}` of freshly built objects, from
    `state_leaves`): same paths, same kinds, arrays of the same shapes and dtypes (checked in
    each array's header before its data is read). Verifies the checksum.

    Returns `{group: {path: (kind, value)}}` with `path` as `_key` makes it."""
    layout = meta["layout"]
    if set(layout) != set(reference):
        raise CheckpointError(
            f"{path}: the checkpoint's state groups {sorted(layout)} are not {sorted(reference)} "
            "(written by another algorithm or version)"
        )
    saved, expected = {}, {}  # expected: {array name: (shape, dtype)}
    for group, leaves in reference.items():
        fresh = {_key(steps): (kind, value) for steps, kind, value in leaves}
        entries = layout[group]
        saved[group] = got = {}
        for entry in entries if isinstance(entries, list) else [None]:
            if not (isinstance(entry, list) and len(entry) == 3):
                raise CheckpointError(f"{path}: the checkpoint's layout of {group!r} is damaged")
            steps, kind, value = entry
            key = _key(steps)
            if key not in fresh or key in got:
                where = _where(steps) if key else repr(steps)
                raise CheckpointError(
                    f"{path}: the checkpoint's state {where!r} has no place in this searcher (a "
                    "restore fills only the paths of a freshly built one, each once)"
                )
            fresh_kind, fresh_value = fresh[key]
            spec = None
            if fresh_kind in ("tensor", "ndarray", "generator") and kind == fresh_kind:
                spec = fresh_value.shape, fresh_value.dtype
            elif fresh_kind in ("scalar", "tuple") and kind == "tensor":
                spec = _filled_later(key, fresh)
            elif kind == fresh_kind == "scalar" and _is_scalar(value):
                got[key] = (kind, value)
                continue
            elif kind == fresh_kind == "tuple" and isinstance(value, list) and all(map(_is_scalar, value)):
                got[key] = (kind, value)
                continue
            name = value.get("array") if isinstance(value, dict) and len(value) == 1 else None
            if spec is None or not isinstance(name, str) or name in expected or name == _META:
                raise CheckpointError(
                    f"{path}: the checkpoint's {_where(steps)!r} is a {kind!r}, this searcher's is a "
                    f"{fresh_kind!r} (written by another algorithm or version?)"
                )
            expected[name] = spec
            got[key] = (kind, name)
        missing = set(fresh) - set(got)
        if missing:
            raise CheckpointError(
                f"{path}: the checkpoint lacks {len(missing)} of this searcher's state paths, e.g. "
                f"{_where(min(missing, key=str))!r} (written by another algorithm or version?)"
            )
    try:
        with zipfile.ZipFile(path) as zf:
            extra = set(zf.namelist()) - {n + ".npy" for n in [*expected, _META]}
            if extra:
                raise CheckpointError(f"extra arrays {sorted(extra)[:5]} that the layout does not name")
            arrays = {
                name: _read_array(zf, name, shape, np.dtype(dtype))
                for name, (shape, dtype) in expected.items()
            }
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except Exception as e:  # whatever the file's bytes make zipfile or NumPy raise
        raise _unreadable(path, e) from None
    body_bytes = json.dumps(meta, sort_keys=True, allow_nan=True).encode()
    if _checksum(body_bytes, arrays) != checksum:
        raise CheckpointError(f"{path}: checksum mismatch: the checkpoint was modified or damaged")
    return {
        group: {
            key: (kind, arrays[v] if kind in ("tensor", "ndarray", "generator") else v)
            for key, (kind, v) in got.items()
        }
        for group, got in saved.items()
    }


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
