"""Checkpoints of `evolve` (private): refuse to guess when opening an output directory, check
that a resumed run has the same settings and start model, and save / restore a search's
state in the `checkpoint.npz` format of `keras_bioact.search.evolution.checkpoint`.

The state of a search is the searcher's tensors, the problem's own random generator, the
history and the best genome so far; restoring it makes a resumed run continue exactly as the
uninterrupted run would have. The file's `rng` group records the global generators' states as
they were when it was written (kept for the format); they are never restored, because
`evolve` draws nothing from the global generators.

A checkpoint fills only the state of a freshly built searcher and problem (see
`keras_bioact.search.evolution.checkpoint`), and its numbers must be ones the run can have written:
`check_meta` refuses a generation, history or best fitness that the `GenerationTracker` cannot
have produced, `restore` a checkpoint beyond the configured generations, a step counter other
than the generation and a best genome of another length or not finite.
"""

import json
import math
import os
import re

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
    "algorithm_options",
)
HISTORY_KEYS = ("generation", "best", "mean", "spread", "best_so_far", "evaluations", "seconds")
_META_KEYS = {"format", "version", "layout", "generation", "history", "best_fitness", "config"}
_META_KEYS |= {"fingerprint", "keras_backend"}


def fingerprint_config(config):
    """The settings as plain JSON data (callables by name), as stored in a checkpoint."""
    plain = {k: (getattr(v, "__name__", repr(v)) if callable(v) else v) for k, v in config.items()}
    return json.loads(json.dumps(plain, default=repr))


def open_checkpoint(out_dir, path, resume, overwrite):
    """The checkpoint to resume from (`(meta, checksum)`, its `meta.json` read and checked, its
    arrays not yet read: `restore` reads them), or None to start; refuses to guess."""
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
        meta, checksum = _ckpt.read_meta(path)
        check_meta(meta, path)
        return meta, checksum
    if exists and not overwrite:
        raise CheckpointError(
            f"evolve: {path} exists (an earlier run); pass resume=True (--resume) to continue it or "
            "overwrite=True (--overwrite) to start over."
        )
    return None


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_row(row, generation, path):
    """Refuse a history row that `GenerationTracker.after_step` cannot have written."""
    where = f"{path}: the checkpoint's history[{generation}]"
    if not isinstance(row, dict) or set(row) != set(HISTORY_KEYS):
        raise CheckpointError(f"{where} must have exactly the keys {HISTORY_KEYS}")
    if not all(_is_number(row[k]) for k in HISTORY_KEYS):
        raise CheckpointError(f"{where} must hold numbers, got {row!r}")
    if row["generation"] != generation or not _is_int(row["generation"]):
        raise CheckpointError(f"{where}.generation must be {generation}, got {row['generation']!r}")
    if not _is_int(row["evaluations"]) or row["evaluations"] < 0:
        raise CheckpointError(f"{where}.evaluations must be an integer >= 0, got {row['evaluations']!r}")
    if not (math.isfinite(row["seconds"]) and row["seconds"] >= 0):
        raise CheckpointError(f"{where}.seconds must be a finite number >= 0, got {row['seconds']!r}")
    # mean and spread are NaN (and best is not finite) only in a generation without a finite fitness
    if math.isfinite(row["mean"]):
        legal = math.isfinite(row["best"]) and math.isfinite(row["spread"]) and row["spread"] >= 0
    else:
        legal = math.isnan(row["mean"]) and math.isnan(row["spread"]) and not math.isfinite(row["best"])
    if not legal:
        raise CheckpointError(
            f"{where}: best, mean and spread must be finite (spread >= 0), or mean and spread NaN and best "
            f"not finite (a generation without a finite fitness); got {row!r}"
        )


def check_meta(meta, path):
    """Refuse a checkpoint whose generation, history, best fitness, settings or fingerprint the
    run cannot have written (before any of them is used)."""
    if set(meta) != _META_KEYS:
        raise CheckpointError(f"{path}: the checkpoint's keys {sorted(meta)} are not {sorted(_META_KEYS)}")
    generation, history, best = meta["generation"], meta["history"], meta["best_fitness"]
    if not _is_int(generation) or generation < 1:
        raise CheckpointError(
            f"{path}: the checkpoint's generation must be an integer >= 1, got {generation!r}"
        )
    if not isinstance(history, list) or len(history) != generation:
        raise CheckpointError(
            f"{path}: the checkpoint's history must have one row per generation ({generation})"
        )
    for i, row in enumerate(history, 1):
        _check_row(row, i, path)
    # the tracker keeps a non-finite best only while no generation has had a finite fitness
    searching = all(math.isnan(row["mean"]) for row in history)
    last = history[-1]["best_so_far"]
    legal = _is_number(best) and (math.isfinite(best) or searching)
    if not (legal and (best == last or (math.isnan(best) and math.isnan(last)))):
        raise CheckpointError(
            f"{path}: the checkpoint's best_fitness must be a finite number equal to the last history "
            f"row's best_so_far ({last!r}), got {best!r}"
        )
    if not isinstance(meta["config"], dict) or not isinstance(meta["keras_backend"], str):
        raise CheckpointError(f"{path}: the checkpoint's config or keras_backend is damaged")
    if not (isinstance(meta["fingerprint"], str) and re.fullmatch("[0-9a-f]{64}", meta["fingerprint"])):
        raise CheckpointError(f"{path}: the checkpoint's fingerprint must be a SHA-256 hex digest")


def check_resume(meta, config, model, path):
    """Refuse to resume with other settings or another start model than the checkpoint's."""
    saved = meta["config"]
    now = fingerprint_config(config)
    changed = [k for k in RESUME_KEYS if saved.get(k) != now.get(k)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise CheckpointError(f"evolve: cannot resume {path}: the settings changed ({detail}).")
    if _weights_fingerprint(model) != meta["fingerprint"]:
        raise CheckpointError(
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


def restore(state, searcher, problem, path, generations):
    """Write a checkpoint's searcher and generator state into a fresh searcher and problem;
    returns the tracker's part, `{"generation", "history", "best_fitness", "best_genes"}`.

    The fresh searcher (with the population it would create, `make_population`) and problem
    are the allow-list: the file must fill exactly their state paths, with their shapes and
    dtypes; nothing else is read or written."""
    import torch

    meta, checksum = state
    generation = meta["generation"]
    if generation > generations:
        raise CheckpointError(
            f"{path}: the checkpoint is at generation {generation}, beyond generations={generations} "
            f"(resume with generations >= {generation})"
        )
    _ckpt.make_population(searcher)
    reference = {
        "searcher": _ckpt.state_leaves(searcher),
        "rng": _ckpt.rng_leaves(),
        "best_genes": [(["best_genes"], "ndarray", np.zeros(problem.solution_length))],
        "problem_generator": [(["generator"], "ndarray", problem.generator.get_state().numpy())],
    }
    saved = _ckpt.read_state(path, meta, checksum, reference)
    steps = saved["searcher"].get((("attr", "_steps_count"),), (None, generation))[1]
    if steps != generation:
        raise CheckpointError(
            f"{path}: the checkpoint's '_steps_count' is {steps!r}, its generation {generation}"
        )
    best = saved["best_genes"][("best_genes",)][1]
    if not np.isfinite(best).all():
        raise CheckpointError(f"{path}: the checkpoint's best_genes are not finite")
    _ckpt.restore_state(searcher, reference["searcher"], saved["searcher"], path)
    state = saved["problem_generator"][("generator",)][1]
    try:
        problem.generator.set_state(torch.as_tensor(np.array(state)))
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: the checkpoint's problem generator state is not legal ({e})"
        ) from None
    return {
        "generation": generation,
        "history": [dict(row) for row in meta["history"]],
        "best_fitness": meta["best_fitness"],
        "best_genes": np.array(best),
    }
