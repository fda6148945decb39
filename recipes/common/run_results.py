"""One JSON file per finished recipe run, so long experiments survive sessions.

A recipe run is one (recipe, setting, variant, seed): `setting` names what the variants are
compared on (for example `fashion_mnist-mlp6`). Its result lives at
`ROOT/<recipe>/<setting>/<variant>/seed<k>.json` (names made file-system safe by `safe_name`),
written atomically (temporary file + `os.replace`) when the run finishes. A recipe given
`--results ROOT` asks `RunStore.existing` first and skips the runs already there, so a later
session continues a grid instead of starting it over. An existing file whose recorded protocol
(`config`) differs from the one asked for is an error, never silently reused, and so is a new seed
of a (setting, variant) whose stored seeds were made with another protocol: a grid never mixes
protocols. A key the recipe added to its protocol later (missing from an older file) counts as a
different value; such older files stay readable by `load_run` and `recipes/report.py`.

Results are data: they are read with `json` only, never imported, unpickled or evaluated.
"""

import json
import math
import os
import pathlib
import re
import sys
import time

from keras_bioact._io import atomic_write

__all__ = ["SCHEMA", "RunStore", "backend_versions", "load_run", "safe_name", "write_json_atomic"]

SCHEMA = "keras_bioact.run/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._,+=-]")


def safe_name(text):
    """A file-name-safe form of a variant or setting name (`eru:3-1` -> `eru_3-1`)."""
    text = str(text)
    if not text:
        raise ValueError("safe_name: the name must be a non-empty string.")
    return _UNSAFE.sub("_", text)


def _clean(obj):
    """JSON-ready copy: NumPy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _clean(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def write_json_atomic(path, obj):
    """Write `obj` as JSON to `path` atomically (`keras_bioact._io.atomic_write`): readers see
    the old file or the whole new one."""
    path = pathlib.Path(path)
    return pathlib.Path(atomic_write(path, json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n"))


def load_run(path):
    """Read one run file (JSON only) and check its schema; returns the dict."""
    path = pathlib.Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"run file {path}: not valid JSON ({e}).") from e
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"run file {path}: `schema` must be {SCHEMA!r}, got {data.get('schema')!r}.")
    for key in ("recipe", "setting", "variant", "seed", "config", "metrics"):
        if key not in data:
            raise ValueError(f"run file {path}: missing the field {key!r}.")
    return data


def backend_versions():
    """Versions of keras, numpy and whichever backend libraries are already imported."""
    out = {"python": sys.version.split()[0]}
    for name in ("keras", "numpy", "jax", "jaxlib", "tensorflow", "torch"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = str(getattr(module, "__version__", "?"))
    return out


class RunStore:
    """Per-run JSON files of one recipe under `root` (see the module docstring).

    Args:
        root: results directory (for example `recipes/results`).
        recipe: recipe name, the first directory level.
        config: the protocol every run shares (epochs, learning rate, data limits, ...); stored in
            each file and compared with the file's on `existing`.
    """

    def __init__(self, root, recipe, config):
        if not isinstance(config, dict):
            raise TypeError(f"RunStore: `config` must be a dict, got {type(config).__name__}.")
        self.root = pathlib.Path(root)
        self.recipe = safe_name(recipe)
        self.config = _clean(config)

    def path(self, setting, variant, seed):
        return self.root / self.recipe / safe_name(setting) / safe_name(variant) / f"seed{int(seed)}.json"

    def existing(self, setting, variant, seed):
        """The stored run dict, or None when the run has not finished yet.

        Raises ValueError when this run's file, or the file of any other seed of the same (setting,
        variant), was made with a protocol other than this store's `config`.
        """
        path = self.path(setting, variant, seed)
        found = None
        for other in sorted(path.parent.glob("seed*.json")):
            data = load_run(other)
            stored = data["config"]
            diff = {k: (stored.get(k), v) for k, v in self.config.items() if stored.get(k) != v}
            if diff:
                raise ValueError(
                    f"run file {other} was made with a different protocol {diff} (stored, asked); "
                    "use another --results directory or delete the file."
                )
            if other == path:
                found = data
        return found

    def save(self, setting, variant, seed, *, metrics, curves, extra=None, wall_time_s=None, started=None):
        """Write one finished run; returns the path.

        `metrics`: final numbers (`test_accuracy`, `test_error`, ...); `curves`: per-epoch lists;
        `extra`: anything else the recipe keeps (robustness tables, radii, architecture).
        """
        now = time.time()
        data = {
            "schema": SCHEMA,
            "recipe": self.recipe,
            "setting": str(setting),
            "variant": str(variant),
            "seed": int(seed),
            "config": self.config,
            "metrics": metrics,
            "curves": curves,
            "wall_time_s": wall_time_s if wall_time_s is not None else (now - started if started else None),
            "environment": {
                "keras_backend": os.environ.get("KERAS_BACKEND") or _keras_backend(),
                "versions": backend_versions(),
                "argv": list(sys.argv),
                "cpu_count": os.cpu_count(),
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            },
        }
        data.update(extra or {})
        return write_json_atomic(self.path(setting, variant, seed), data)


def _keras_backend():
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else None
