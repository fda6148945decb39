import os

import numpy as np

from keras_bioact.callbacks.hparams_logger import HParamsLogger

__all__ = ["EvolutionTensorBoardLogger"]


class EvolutionTensorBoardLogger:
    """TensorBoard logs of an evolutionary activation search, one call per generation.

    `log_generation(g, fitness, ...)` writes, in the run `log_dir/<run_name>`, the scalars
    `fitness/best`, `fitness/mean`, `fitness/median`, `fitness/worst`, `fitness/std` at step `g`
    and a histogram `fitness` of the population (plus histograms `population/<name>` of any
    per-individual values you pass); with `hparams`, it also writes the generation as an
    HParams session `log_dir/generation_<g>` (e.g. the best solution's activation parameters,
    see `keras_bioact.callbacks.hparams_logger.parameter_hparams`) with metrics
    `fitness/best` and `fitness/mean`, so the HParams dashboard compares generations.

    ```python
    tb = EvolutionTensorBoardLogger("logs/evolve", maximize=True)
    for g in range(generations):
        ...                                             # evaluate the population
        tb.log_generation(g, fitness, hparams=parameter_hparams(view, best_vector))
    tb.close()
    ```
    No TensorFlow needed. A resumed run appends a new event file to the same run directory and
    skips generation sessions already on disk.

    Args:
        log_dir: root directory of the search's TensorBoard logs.
        maximize: whether larger fitness is better (decides "best" and "worst"). Default True.
        run_name: run directory of the per-generation scalars. Default `"evolution"`.
    """

    def __init__(self, log_dir, maximize=True, run_name="evolution"):
        self.log_dir = os.fspath(log_dir)
        self.maximize = bool(maximize)
        self.run_name = str(run_name)
        self.hparams = HParamsLogger(self.log_dir)
        self._writer = None

    def log_generation(self, generation, fitness, hparams=None, population=None, scalars=None):
        """Write one generation.

        Args:
            generation: generation index (the step).
            fitness: fitness of every evaluated individual (non-finite values count as failed and
                are left out of the statistics; `fitness/failed` counts them).
            hparams: optional `{name: value}` written as the generation's HParams session.
            population: optional `{name: per-individual values}` written as histograms.
            scalars: optional extra `{tag: value}` scalars for this generation (e.g. `sigma`).

        Returns:
            The scalar statistics written, `{tag: value}`.
        """
        from keras_bioact.callbacks.summary_writer import SummaryWriter

        fitness = np.asarray(fitness, dtype="float64").reshape(-1)
        ok = fitness[np.isfinite(fitness)]
        stats = {"fitness/failed": float(fitness.size - ok.size)}
        if ok.size:
            best, worst = (ok.max(), ok.min()) if self.maximize else (ok.min(), ok.max())
            stats.update(
                {
                    "fitness/best": float(best),
                    "fitness/mean": float(ok.mean()),
                    "fitness/median": float(np.median(ok)),
                    "fitness/worst": float(worst),
                    "fitness/std": float(ok.std()),
                }
            )
        stats.update({str(k): float(v) for k, v in (scalars or {}).items()})
        histograms = {"fitness": ok} if ok.size else {}
        histograms.update({f"population/{k}": np.asarray(v) for k, v in (population or {}).items()})
        if self._writer is None:
            self._writer = SummaryWriter(
                os.path.join(self.log_dir, self.run_name), filename_suffix=".evolution"
            )
        self._writer.write(int(generation), scalars=stats, histograms=histograms)
        self._writer.flush()
        if hparams is not None:
            metrics = {k: stats[k] for k in ("fitness/best", "fitness/mean") if k in stats}
            self.hparams.log_session(
                f"generation_{int(generation):05d}",
                {"generation": int(generation), **hparams},
                metrics,
                status="success" if ok.size else "failure",
                step=int(generation),
            )
        return stats

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
