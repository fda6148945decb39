"""Checkpoints of `evolve` (private): refuse to guess when opening an output directory, check
that a resumed run has the same settings and start model, and save / restore a search's
state in the `checkpoint.npz` format of `keras_bioact.search.checkpoint`.

The state of a search is the searcher's tensors, the problem's own random generator, the
history and the best genome so far; restoring it makes a resumed run continue exactly as the
uninterrupted run would have. The file's `rng` group records the global generators' states as
they were when it was written (kept for the format); they are never restored, because
`evolve` draws nothing from the global generators.
"""

import json
import os

import keras
import numpy as np

from keras_bioact.search.evolution import checkpoint as _ckpt
from keras_bioact.search.evolution.checkpoint import CheckpointError
from keras_bioact.search.evolution.runtime import _weights_fingerprint

RESUME_KEYS = (
    "target",
    "layers",
    "granularity",
    "algorithm",
    "popsize",
    "metric",
    "mode",
    "seed",
    "stdev_init",
)


def fingerprint_config(config):
    """The settings as plain JSON data (callables by name), as stored in a checkpoint."""
    plain = {k: (getattr(v, "__name__", repr(v)) if callable(v) else v) for k, v in config.items()}
    return json.loads(json.dumps(plain, default=repr))


def open_checkpoint(out_dir, path, resume, overwrite):
    """The checkpoint to resume from (`(meta, groups)`), or None to start; refuses to guess."""
    if out_dir is None:
        return None
    legacy = os.path.join(out_dir, _ckpt.LEGACY_NAME)
    exists = os.path.exists(path)
    if resume:
        if not exists:
            extra = (
                f" ({legacy} is a keras-bioact 0.1 pickle checkpoint, which is never loaded because "
                "unpickling can run code: start a new output directory)"
                if os.path.exists(legacy)
                else ""
            )
            raise CheckpointError(f"evolve: resume=True, but there is no checkpoint {path}{extra}.")
        return _ckpt.read(path)
    if exists and not overwrite:
        raise CheckpointError(
            f"evolve: {path} exists (an earlier run); pass resume=True (--resume) to continue it or "
            "overwrite=True (--overwrite) to start over."
        )
    return None


def check_resume(meta, config, model, path):
    """Refuse to resume with other settings or another start model than the checkpoint's."""
    saved = meta["config"]
    now = fingerprint_config(config)
    changed = [k for k in RESUME_KEYS if saved.get(k) != now.get(k)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ValueError(f"evolve: cannot resume {path}: the settings changed ({detail}).")
    if meta["generation"] < 1:
        return
    if _weights_fingerprint(model) != meta["fingerprint"]:
        raise ValueError(
            f"evolve: cannot resume {path}: the model's weights differ from those of the interrupted run "
            "(rebuild or reload the same starting model)."
        )


def save(path, searcher, problem, tracker, config, fingerprint):
    """Write the search's state after `tracker.generation` generations (atomically)."""
    best = tracker.best_genes
    groups = {
        "searcher": _ckpt.state_leaves(searcher),
        "rng": _ckpt.rng_leaves(),
        "best_genes": [] if best is None else [(["best_genes"], "ndarray", np.asarray(best))],
        "problem_generator": [(["generator"], "ndarray", problem.generator.get_state().numpy())],
    }
    meta = {
        "generation": int(tracker.generation),
        "history": tracker.history,
        "best_fitness": None if tracker.best_fitness is None else float(tracker.best_fitness),
        "config": fingerprint_config(config),
        "fingerprint": fingerprint,
        "keras_backend": keras.backend.backend(),
    }
    _ckpt.write(path, meta, groups)


def restore(state, searcher, problem, path):
    """Write a checkpoint's searcher and generator state into a fresh searcher and problem;
    returns the tracker's part, `{"generation", "history", "best_fitness", "best_genes"}`."""
    import torch

    meta, groups = state
    _ckpt.restore_state(searcher, groups["searcher"], path)
    if groups.get("problem_generator"):
        saved = np.asarray(groups["problem_generator"][0][2], dtype=np.uint8)
        problem.generator.set_state(torch.as_tensor(saved))
    best = groups.get("best_genes")
    return {
        "generation": int(meta["generation"]),
        "history": [dict(row) for row in meta["history"]],
        "best_fitness": meta["best_fitness"],
        "best_genes": np.asarray(best[0][2]) if best else None,
    }
