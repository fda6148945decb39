"""Results of `keras_bioact.search.evolution.evolve`: `EvolutionResult`, `load_best`, and the
history.csv writer (used by `keras_bioact.search.evolution.loggers.CSVLogger`)."""

import csv
import dataclasses
import io
import json
import os

import numpy as np

from keras_bioact._io import atomic_write as _atomic_write
from keras_bioact.params import activation_parameters

__all__ = ["EvolutionResult", "load_best"]

# --------------------------------------------------------------------------------------------
# Result


@dataclasses.dataclass
class EvolutionResult:
    """Outcome of `evolve`.

    Attributes:
        best_fitness: best metric value seen (in the metric's own units).
        best_genes: the best genome (unconstrained space).
        best_parameters: `{path: array}` of natural activation-parameter values, e.g.
            `{"gamma_1/n": array([...]), ...}`; `apply(model)` writes them in.
        history: one dict per generation (`generation`, `best`, `mean`, `spread`,
            `best_so_far`, `evaluations`, `seconds`).
        config: the search settings.
        out_dir: where files were written (or `None`).
        summary: a run of a spec (`keras_bioact.search.run_spec`): what it wrote to
            `summary.json` (validation fitness, test accuracy, ...); else `None`.
        verdict: a finished run of a spec: the `keras_bioact.search.verdict.Verdict` of the
            evolved activation against the best baseline network (see
            `keras_bioact.search.evolution.verdict`), or `None`.
        baseline_scores: a run of a spec: `{baseline family: validation score}` of the baseline
            networks trained under the same budget (`evolution.baselines`), in the metric's
            units, as `best_fitness`; else `{}`.
    """

    best_fitness: float
    best_genes: np.ndarray
    best_parameters: dict
    history: list
    config: dict
    out_dir: str | None = None
    summary: dict | None = None
    verdict: object = None
    baseline_scores: dict = dataclasses.field(default_factory=dict)

    def __repr__(self):
        return (
            f"EvolutionResult(best_fitness={self.best_fitness:.6g}, generations={len(self.history)}, "
            f"parameters={{{', '.join(f'{k!r}: {summarise(v)}' for k, v in self.best_parameters.items())}}}, "
            f"out_dir={self.out_dir!r})"
        )

    def apply(self, model):
        """Write the best parameters into `model` (a model with the same layer names)."""
        _apply_parameters(model, self.best_parameters)

    def save(self, directory):
        """Write `best_parameters.npz` (arrays by `layer/param` path) and `best.json` (the same
        values as lists, `parameters`, and their `shapes`)."""
        os.makedirs(directory, exist_ok=True)
        npz = os.path.join(directory, "best_parameters.npz")
        _atomic_write(npz, _npz_bytes(self.best_parameters))
        meta = {
            "best_fitness": self.best_fitness,
            "generations": len(self.history),
            "parameters": {k: np.asarray(v).tolist() for k, v in self.best_parameters.items()},
            "shapes": {k: list(np.shape(v)) for k, v in self.best_parameters.items()},
            "config": self.config,
        }
        _atomic_write(os.path.join(directory, "best.json"), json.dumps(meta, indent=2, default=str).encode())
        return npz


def summarise(value, few=4):
    """The values of an evolved parameter in a line: all of them if at most `few`, else the
    mean, min and max (and the count)."""
    value = np.asarray(value, dtype="float64").ravel()
    if value.size <= few:
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return f"mean {value.mean():.4g}, min {value.min():.4g}, max {value.max():.4g} ({value.size} values)"


def result_from(genome, tracker, config, out_dir):
    """The `EvolutionResult` of a search: `tracker` (a `GenerationTracker`) holds the history and
    the best genes, `genome` (a `Genome`) maps them to natural parameter values."""
    natural = genome.natural(tracker.best_genes)
    arrays = {
        p.path: np.asarray(chunk, dtype="float32")
        for p, chunk in zip(genome.view.parameters, genome.view.split(natural), strict=True)
    }
    return EvolutionResult(
        best_fitness=float(tracker.best_fitness),
        best_genes=np.asarray(tracker.best_genes),
        best_parameters=arrays,
        history=list(tracker.history),
        config={k: (v if not callable(v) else getattr(v, "__name__", repr(v))) for k, v in config.items()},
        out_dir=out_dir,
    )


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _apply_parameters(model, arrays):
    by_path = {p.path: p for p in activation_parameters(model)}
    missing = [k for k in arrays if k not in by_path]
    if missing:
        raise ValueError(
            f"load_best: the model has no activation parameters {missing}; it has {sorted(by_path)}."
        )
    for path, value in arrays.items():
        p = by_path[path]
        value = np.asarray(value)
        if tuple(value.shape) != p.shape:
            raise ValueError(
                f"load_best: {path} has shape {p.shape} in the model, {value.shape} in the file."
            )
        p.variable.assign(p.clip(value).astype(p.variable.dtype))


def load_best(model, path):
    """Write the parameters saved by `EvolutionResult.save` (`best_parameters.npz`) into `model`."""
    if os.path.isdir(path):
        path = os.path.join(path, "best_parameters.npz")
    with np.load(path, allow_pickle=False) as data:
        _apply_parameters(model, {k: data[k] for k in data.files})
    return model


# --------------------------------------------------------------------------------------------
# history.csv


_CSV_FIELDS = ("generation", "best", "mean", "spread", "best_so_far", "evaluations", "seconds")


def _write_csv(path, history):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow(row)
    _atomic_write(path, buf.getvalue().encode())
