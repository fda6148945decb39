"""`run_spec`: a search specification run end to end, by either engine (what `bioact search`
does), and `preflight`, the checks it makes before anything is written."""

from __future__ import annotations

import copy

__all__ = ["preflight", "run_spec"]

# run_spec's keywords that set a value of an [optuna] spec: {keyword: its key in [optuna]}
_OPTUNA_VALUES = {
    "study_name": "study",
    "storage": "storage",
    "n_trials": "n_trials",
    "workers": "workers",
    "timeout": "timeout",
}
_OPTUNA_ONLY = ("export", "create_only")
_EVOLUTION_ONLY = ("resume", "overwrite")


def run_spec(
    spec,
    *,
    workers=None,
    n_trials=None,
    storage=None,
    study_name=None,
    timeout=None,
    export=None,
    resume=False,
    overwrite=False,
    progress=True,
    allow_code=(),
    top=5,
    create_only=False,
    settings=None,
    log=print,
):
    """Run (or continue) the search of a specification, as `bioact search SPEC.toml` does.

    Args:
        spec: a TOML file (path) or a `SearchSpec` (from `load_spec` or `parse_spec`; it is
            not changed: the keywords apply to a copy).
        workers, n_trials, storage, study_name, timeout: `[optuna]` specs: override
            `optuna.workers` (worker processes on this machine), `optuna.n_trials` (finished
            trials wanted, over all workers and runs), `optuna.storage` (an Optuna storage URL;
            keep passwords out of it), `optuna.study` and `optuna.timeout` (seconds).
        export: `[optuna]` specs: the folder for `trials.csv`, `trials.json`, plots and
            TensorBoard HParams logs (default: `output.dir`, else none).
        resume, overwrite: `[evolution]` specs: continue from the checkpoint in the output
            folder, or start over although it holds one (without either, a checkpoint there is
            an error).
        progress: show a progress bar.
        allow_code: modules to import (this runs their code) so that the spec may name their
            model templates as `"module:function"`; a spec alone never imports code. Worker
            processes import them too.
        top: `[optuna]` specs: rows of the summary table.
        create_only: `[optuna]` specs: create the study in its storage and return (do this once
            before starting workers on other machines).
        settings: `{dotted key: value}` of `[evolution]` and `[output]` keys, checked against the
            schema (e.g. `{"evolution.popsize": 8, "output.dir": "runs/x"}`); an error names
            the key with the source `settings`.
        log: function the progress lines, the summary and the results are printed with.

    **`[optuna]` specs** (an Optuna study): the study is created in its storage (or continued:
    trials of dead workers are failed and their parameters re-queued) and trials run in this
    process (`workers=1`) or in `workers` worker processes (`python -P -m
    keras_bioact.search.optuna`, which import only installed code and get the storage URL on
    their standard input, never on their command line) until it has `n_trials` finished
    trials. Then the verdict: the best trial and the best baseline are retrained with the same
    `budget.verdict_seeds` fresh seeds and each run is scored once on the held-out test split
    (trials are selected on the validation split, carved out of the training split); the
    summary table and the verdict are printed and the results are exported (`verdict.json`
    among them). Returns a `SearchResult` (`study`, `best_trial`, `test_scores`, `test_error`,
    `export_dir`, `verdict`); `test_error` says why the verdict could not be computed
    (`bioact search` then exits 1).

    **`[evolution]` specs** (an EvoTorch evolution strategy over the model's activation
    parameters): the model's outer weights are trained once, then `evolution.generations`
    generations run, each writing a checkpoint, `history.csv` and TensorBoard logs to
    `output.dir`; the best solution is scored once on the test split (`summary.json`,
    `best_model.keras`), then the verdict compares the evolved activation with the best baseline
    network on fresh seeds (`verdict.json`). Returns the `EvolutionResult` (its `summary` holds
    the test scores, its `verdict` the verdict).

    **`[mixture]` specs** (a `MixtureActivation` per activation site, trained with the network
    by first-order alternation on the training and validation splits, shrunk to one candidate
    per site; `keras_bioact.search.mixture`): the chosen activation per layer is printed, the
    discretized model is retrained from `mixture.seeds` fresh initialisations and scored on the
    test split (with `mixture.baseline` under the same seeds), and `mixture_result.json` is
    written to `output.dir`. Returns the `MixtureResult` (`chosen`, `retrained`, `baseline`).

    Before anything is written, the spec and the keywords are checked, the data and a saved
    model are read and the output folder is tried (`preflight`). A spec, keyword, storage or
    checkpoint that cannot be used raises a `BioactError` (`SpecError`, `CheckpointError`,
    `WorkerError` for failed worker processes; `keras_bioact.errors`) naming the key or keyword.

    ```python
    from keras_bioact import search

    result = search.run_spec("search/quickstart.toml", n_trials=8, progress=False)
    result.best_trial.params, result.test_score
    layer = search.best_activation(result.study)     # a ready-to-use Keras layer
    evolved = search.run_spec("search/evolve_gamma.toml", settings={"output.dir": "runs/g"})
    ```
    """
    from keras_bioact.search.spec import SearchSpec, SpecError, load_spec, schema
    from keras_bioact.search.spec.checks import NAME
    from keras_bioact.search.templates import allow_code as allow

    source = spec.source if isinstance(spec, SearchSpec) else str(spec)
    for module in allow_code:
        try:
            allow(module)
        except ValueError as e:
            raise SpecError(source, "allow_code", str(e)) from None
    spec = copy.deepcopy(spec) if isinstance(spec, SearchSpec) else load_spec(spec)
    values = dict(study_name=study_name, storage=storage, n_trials=n_trials, workers=workers, timeout=timeout)
    flags = dict(export=export, create_only=create_only, resume=resume, overwrite=overwrite)
    given = [name for name, value in {**values, **flags}.items() if value not in (None, False)]
    other = {
        "optuna": _EVOLUTION_ONLY,
        "evolution": (*_OPTUNA_VALUES, *_OPTUNA_ONLY),
        "mixture": (*_OPTUNA_VALUES, *_OPTUNA_ONLY, *_EVOLUTION_ONLY),
    }[spec.engine]
    for name in given:
        if name in other:
            raise SpecError(spec.source, name, f"does not apply to an {spec.engine} spec")
    if resume and overwrite:
        raise SpecError(spec.source, "overwrite", "excludes resume")
    for key, value in (settings or {}).items():
        table = key.partition(".")[0]
        if table not in ("evolution", "output") or key.partition(".")[2] not in schema.TABLES[table]:
            raise SpecError("settings", key, "is not a key of the [evolution] or [output] table")
        if table != spec.engine and table != "output":
            raise SpecError("settings", key, f"does not apply to an {spec.engine} spec")
        spec.override(key, value, source="settings")
    for name, value in values.items():
        if value is None:
            continue
        reason = schema.check_value(name, schema.TABLES["optuna"][_OPTUNA_VALUES[name]], value)
        if not reason and name == "study_name" and not NAME.match(value):
            reason = f"use letters, digits, '_', '-', '.' only, got {value!r}"
        if reason:
            raise SpecError(spec.source, name, reason)
        setattr(spec, name, value)
    preflight(spec, export=export)
    if spec.engine == "mixture":
        from keras_bioact.search import mixture

        return mixture.run_mixture(spec, progress=progress, log=log)
    if spec.engine == "evolution":
        from keras_bioact.search.evolution import runner as evolution_runner

        result, summary = evolution_runner.run_evolution(
            spec, resume=resume, overwrite=overwrite, progress=progress, log=log
        )
        result.summary = summary
        return result
    from keras_bioact.search.optuna import runner as optuna_runner

    return optuna_runner.run_study(
        spec,
        export=export,
        top=top,
        progress=progress,
        create_only=create_only,
        allow_code=allow_code,
        storage_key="storage" if storage else "optuna.storage",
        log=log,
    )


def preflight(spec, export=None):
    """Read what a run of `spec` will read and try where it will write, before anything is
    written: the output folder (`export`, else `output.dir`) exists or can be created, the data
    loads into non-empty splits, and a saved model (`model.path`) loads with `safe_mode=True`
    and fits the data. Raises `SpecError` naming the key (`export` for the keyword)."""
    from keras_bioact.search import data, models
    from keras_bioact.search.spec import SpecError
    from keras_bioact.search.spec.checks import writable_dir

    directory = export or spec.output.get("dir")
    if directory:
        writable_dir(directory, "export" if export else "output.dir", spec.source)
    splits = data.load_splits(spec)
    if spec.model_path:
        try:
            models.check_model(models.load(spec.model_path), *data.shape_and_classes(splits), spec.model_path)
        except ValueError as e:
            raise SpecError(spec.source, "model.path", str(e).removeprefix("model.path: ")) from None
