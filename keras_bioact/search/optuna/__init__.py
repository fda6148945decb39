"""The Optuna engine of the activation search: an `[optuna]` spec is an Optuna study.

* `objective`: `make_objective` (sample an activation, train, score), `objective_from_spec`;
* `study`: samplers, pruners, `create_study` / `load_study`, `open_study(spec)`;
* `storage`: `open_storage` (SQLite, journal, RDB; hostile files refused, passwords hidden);
* `workers`: the trial loop `run`, `recover_dead_trials`, `count_finished`, the worker
  processes (`run_workers`; `python -P -m keras_bioact.search.optuna` is one worker);
* `holdout`: the verdict (best trial vs best baseline, retrained with fresh seeds, scored on
  the test split), `study_verdict`, `test_scores`;
* `export`: the best activation, trial rows, CSV/JSON, plots, HParams logs, the summary table;
* `runner`: `run_study(spec)` and `show_study` (what `bioact search` and `bioact show` do),
  `SearchResult`.

This package imports the spec package and the core search modules, never the EvoTorch engine
(`keras_bioact.search.evolution`); Optuna and Keras are imported when used.
"""

from keras_bioact.search.optuna.export import (
    best_activation,
    best_activation_config,
    best_trial,
    best_trials,
    export_results,
    export_trials,
    save_plots,
    summary,
    trial_rows,
)
from keras_bioact.search.optuna.holdout import best_baseline_trial, study_verdict, test_scores
from keras_bioact.search.optuna.objective import Diverged, make_objective, objective_from_spec
from keras_bioact.search.optuna.runner import SearchResult, run_study, show_study
from keras_bioact.search.optuna.storage import (
    DEFAULT_HEARTBEAT,
    StorageError,
    default_storage,
    display_url,
    open_storage,
)
from keras_bioact.search.optuna.study import (
    PRUNERS,
    SAMPLERS,
    create_study,
    load_study,
    make_pruner,
    make_sampler,
    open_study,
    pruner_from_spec,
    sampler_from_spec,
)
from keras_bioact.search.optuna.workers import (
    ORPHAN_GRACE,
    WorkerError,
    count_finished,
    recover_dead_trials,
    run,
    run_workers,
)

__all__ = [
    "DEFAULT_HEARTBEAT",
    "ORPHAN_GRACE",
    "PRUNERS",
    "SAMPLERS",
    "Diverged",
    "SearchResult",
    "StorageError",
    "WorkerError",
    "best_activation",
    "best_activation_config",
    "best_baseline_trial",
    "best_trial",
    "best_trials",
    "count_finished",
    "create_study",
    "default_storage",
    "display_url",
    "export_results",
    "export_trials",
    "load_study",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "objective_from_spec",
    "open_storage",
    "open_study",
    "pruner_from_spec",
    "recover_dead_trials",
    "run",
    "run_study",
    "run_workers",
    "sampler_from_spec",
    "save_plots",
    "show_study",
    "study_verdict",
    "summary",
    "test_scores",
    "trial_rows",
]
