"""An `[optuna]` spec end to end (`run_study`, what `bioact search` and `run_spec` do) and a
study's results (`show_study`, what `bioact show` does): `SearchResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_bioact.search.optuna import export as export_lib
from keras_bioact.search.optuna import holdout, workers
from keras_bioact.search.optuna.storage import StorageError, display_url, open_storage, redact
from keras_bioact.search.optuna.study import load_study, open_study

__all__ = ["SearchResult", "run_study", "show_study"]

COMPILING = "compiling the first trial..."


@dataclass(repr=False)
class SearchResult:
    """What `run_spec` gives for an `[optuna]` spec (and `show_study` for a stored study).

    Attributes:
        study: the `optuna.Study` (in its storage; `keras_bioact.search.best_activation(study)`
            gives the best activation as a Keras layer).
        best_trial: its best trial (first Pareto trial of a multi-objective study), or None.
        test_scores: `{trial number: {"metric", "value", "scores", "seeds", "validation",
            "n_test", "arm"}}` of the trials the verdict scored on the held-out test split
            (`value`: the mean over its seeds).
        verdict: the `keras_bioact.search.verdict.Verdict` (best trial vs best baseline,
            retrained with `budget.verdict_seeds` fresh seeds, scored on the test split), or
            None (`verdict_seeds = 0`, multi-objective, no complete trial).
        test_error: why the verdict could not be computed, or None.
        export_dir: the folder the trials, plots and HParams logs were written to, or None.
    """

    study: object
    best_trial: object = None
    test_scores: dict = field(default_factory=dict)
    test_error: str | None = None
    export_dir: str | None = None
    verdict: object = None

    @property
    def test_score(self):
        """The best trial's mean value on the test split (over the verdict's seeds), or None."""
        record = self.test_scores.get(getattr(self.best_trial, "number", None))
        return None if record is None else record["value"]

    def __repr__(self):
        parts = [f"study={self.study.study_name!r}", f"finished={workers.count_finished(self.study)}"]
        if self.best_trial is not None:
            names = self.study.user_attrs.get("objective_names") or ["value"]
            values = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, self.best_trial.values, strict=False))
            parts.append(f"best=trial {self.best_trial.number} ({values})")
        record = self.test_scores.get(getattr(self.best_trial, "number", None))
        if record is not None:
            parts.append(f"{record['metric']}={record['value']:.4g}")
        if self.verdict is not None:
            parts.append(f"verdict={self.verdict.outcome!r}")
        if self.test_error:
            parts.append(f"test_error={self.test_error!r}")
        if self.export_dir:
            parts.append(f"export_dir={str(self.export_dir)!r}")
        return f"SearchResult({', '.join(parts)})"


def _result(study, test_error=None, export_dir=None):
    try:
        best = export_lib.best_trial(study)
    except ValueError:  # no complete trial yet
        best = None
    return SearchResult(
        study, best, holdout.test_scores(study), test_error, export_dir, holdout.stored_verdict(study)
    )


def run_study(
    spec,
    *,
    export=None,
    top=5,
    progress=True,
    create_only=False,
    allow_code=(),
    storage_key="optuna.storage",
    log=print,
):
    """Run (or continue) the study of a validated `[optuna]` spec until it has `spec.n_trials`
    finished trials, in this process (`spec.workers == 1`) or in `spec.workers` worker
    processes; then compute the verdict (the best trial and the best baseline retrained with
    `budget.verdict_seeds` fresh seeds and scored on the test split; see
    `keras_bioact.search.optuna.holdout`), print the summary (`top` rows, the verdict) and
    write the results to `export` (default: `output.dir`; `verdict.json` among them). Returns a
    `SearchResult` (`test_error` says why the verdict could not be computed, if so).
    `create_only`: create the study and return. Storage errors are `SpecError`s naming
    `storage_key`."""
    from tqdm.auto import tqdm

    from keras_bioact.search.optuna.batch import batch_of

    batch_of(spec)  # a batch larger than the (overridden) trial budget: refused before anything runs
    study = open_study(spec, 0, storage_key)
    if create_only:
        log(f"study {spec.study_name!r} is ready in {display_url(spec.storage)}")
        return _result(study)
    recovered = workers.recover_dead_trials(study)
    if recovered:
        log(f"marked {len(recovered)} trial(s) of dead workers as FAIL and re-queued them: {recovered}")
    done = workers.count_finished(study)
    log(
        f"study {spec.study_name!r} in {display_url(spec.storage)}: {done}/{spec.n_trials} trials finished; "
        f"{spec.workers} worker(s)"
    )
    if done < spec.n_trials:
        bar = tqdm(
            total=spec.n_trials,
            initial=done,
            desc=spec.study_name,
            unit="trial",
            disable=not progress,
            dynamic_ncols=True,
        )

        bar.set_postfix_str(COMPILING)  # until a trial finishes: the first one compiles the model

        def on_trial(st, trial=None):
            bar.n = workers.count_finished(st)
            if trial is not None or bar.n > done:  # worker processes: polled, no trial given
                bar.set_postfix_str(_postfix(st, trial))
            bar.refresh()

        failed_before = _stale(study)
        try:
            if spec.workers == 1:
                from keras_bioact.search.optuna.batch import run_trials

                run_trials(spec, study, on_trial=on_trial, log=log)
            else:
                workers.run_workers(spec, study, allow_code, on_poll=on_trial, log=log)
        except KeyboardInterrupt:
            bar.close()
            failed = sorted(_stale(study) - failed_before)
            raise KeyboardInterrupt(
                f"interrupted: {workers.count_finished(study)}/{spec.n_trials} trials finished and saved"
                + (f"; running trial(s) {failed} failed and re-queued" if failed else "")
                + "; run the same command again to continue"
            ) from None
        finally:
            bar.n = workers.count_finished(study)
            bar.close()
    else:
        log(
            f"nothing to do: the study already has {done} finished trials; to add trials, re-run "
            f"with a larger --n-trials (e.g. --n-trials {spec.n_trials + 16})"
        )
    if spec.prescreen is not None:
        import math

        from keras_bioact.search.optuna.prescreen import report

        rho, n = report(study)
        shown = "n/a (fewer than 3)" if n < 3 else "n/a (constant)" if math.isnan(rho) else f"{rho:.2f}"
        log(
            f"pre-screen: Spearman rho {shown} between predicted and trained {spec.metric} on {n} "
            "candidates it did not see (each predicted before it was trained)"
        )
    _, test_error = holdout.score_best(spec, study, log=log if progress else None)
    export_lib.summary(study, top, spec, log=log)
    directory = export or spec.output.get("dir")
    if directory:
        export_lib.export_results(study, directory, log=log)
    return _result(study, test_error, directory)


def _stale(study):
    """Numbers of the trials failed as interrupted or dead (see `workers.recover_dead_trials`)."""
    return {t.number for t in study.get_trials(deepcopy=False) if t.user_attrs.get("stale")}


def _postfix(study, trial):
    try:
        best = study.best_value if len(study.directions) == 1 else None
    except ValueError:
        best = None
    last = f"last={trial.state.name.lower()}" if trial is not None else ""
    return " ".join(p for p in (last, f"best={best:.4f}" if best is not None else "") if p)


def show_study(
    study_name, storage, *, top=10, export=None, test=True, recompute=False, allow_code=(), log=print
):
    """The results of the study `study_name` in `storage` (a URL), as `bioact show` prints them:
    the verdict stored in the study, computed (retraining the arms, with the spec stored in the
    study, whose templates may need the `allow_code` modules) only when it is missing or stale
    (other arms or seeds than the stored one's) or `recompute` is true, and never when `test`
    is false; the summary table (`top` rows), and the export to `export`. Returns a
    `SearchResult`; `StorageError` if the storage or the study cannot be opened (password
    hidden)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shown = display_url(storage)
    try:
        study = load_study(study_name, open_storage(storage, create=False))
    except StorageError:
        raise
    except KeyError:
        raise StorageError(f"no study {study_name!r} in {shown}") from None
    except Exception as e:
        raise StorageError(
            f"cannot open storage {shown!r}: {type(e).__name__}: {redact(e, storage)}"
        ) from None
    spec = _stored_spec(study, allow_code, log)
    test_error = None
    if spec is not None and test:
        _, test_error = holdout.score_best(spec, study, log=log, recompute=recompute)
    export_lib.summary(study, top, spec, log=log)
    if export:
        export_lib.export_results(study, export, log=log)
    return _result(study, test_error, export)


def _stored_spec(study, allow_code, log):
    """The spec the study was created with (stored as data), re-validated; None if absent."""
    from keras_bioact.search.spec import SpecError, parse_spec
    from keras_bioact.search.templates import allow_code as allow

    stored = study.user_attrs.get("spec")
    if not isinstance(stored, dict) or not isinstance(stored.get("raw"), dict):
        return None
    try:
        for module in allow_code:
            allow(module)
        return parse_spec(stored["raw"], source=f"{stored.get('source', '<spec>')} (stored in the study)")
    except (SpecError, ValueError) as e:
        log(f"not computing the verdict: {e}")
        return None
