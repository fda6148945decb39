"""Activation search: one specification format (`load_spec`, `parse_spec`: a `SearchSpec`), two
engines, one entry point (`run_spec`).

* `keras_bioact.search.spec`: the specification (schema, reader, checks), plain data;
* `keras_bioact.search.optuna`: the Optuna engine (objective, studies, storages, workers,
  held-out scores, exports); its helpers are also importable from here;
* `keras_bioact.search.evolution`: the EvoTorch engine (`evolve`, `EvolutionResult` and
  `load_best` are also importable from here);
* shared by both: `activation` (`Activation`), `space` (`SearchSpace`), `templates`, `data`
  (the splits), `models` (the model builder), `metrics`.

```python
from keras_bioact import search

result = search.run_spec("search/quickstart.toml")   # what `bioact search` does
layer = search.best_activation(result.study)          # a ready-to-use Keras layer
```

Step by step, with your own objective:

```python
spec = search.load_spec("search/quickstart.toml")
study = search.create_study(spec.study_name, spec.storage, spec.directions,
                            search.sampler_from_spec(spec), search.pruner_from_spec(spec))
search.run(study, search.objective_from_spec(spec), n_trials=spec.n_trials)
```

Importing this package does not import Optuna, Keras or EvoTorch; they are loaded when used.
Modules that moved keep their old import paths for one release (`_moved.MOVED`).
"""

from keras_bioact.search import _moved
from keras_bioact.search.activation import TWO_ARG_MISSING, Activation
from keras_bioact.search.metrics import OBJECTIVES, direction_of
from keras_bioact.search.optuna import (
    PRUNERS,
    SAMPLERS,
    Diverged,
    SearchResult,
    best_activation,
    best_activation_config,
    best_trials,
    count_finished,
    create_study,
    default_storage,
    export_trials,
    load_study,
    make_objective,
    make_pruner,
    make_sampler,
    objective_from_spec,
    open_storage,
    pruner_from_spec,
    recover_dead_trials,
    run,
    sampler_from_spec,
    save_plots,
    trial_rows,
)
from keras_bioact.search.runner import preflight, run_spec
from keras_bioact.search.space import (
    BASELINES,
    FAMILIES,
    BRUSpace,
    GammaSpace,
    SearchSpace,
    SpaceError,
    TwoArgSpace,
    sample,
)
from keras_bioact.search.spec import Budget, SearchSpec, SpecError, load_spec, parse_spec
from keras_bioact.search.templates import TEMPLATES, allow_code, cnn, mlp, register_template, resolve_template

__all__ = [
    "Activation",
    "BASELINES",
    "BRUSpace",
    "Budget",
    "Diverged",
    "EvolutionResult",
    "FAMILIES",
    "GammaSpace",
    "OBJECTIVES",
    "PRUNERS",
    "SAMPLERS",
    "SearchResult",
    "SearchSpace",
    "SearchSpec",
    "SpaceError",
    "SpecError",
    "TEMPLATES",
    "TWO_ARG_MISSING",
    "TwoArgSpace",
    "best_activation",
    "best_activation_config",
    "allow_code",
    "best_trials",
    "cnn",
    "count_finished",
    "create_study",
    "default_storage",
    "direction_of",
    "evolve",
    "export_trials",
    "load_best",
    "load_spec",
    "load_study",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "mlp",
    "objective_from_spec",
    "open_storage",
    "parse_spec",
    "preflight",
    "pruner_from_spec",
    "recover_dead_trials",
    "register_template",
    "resolve_template",
    "run",
    "run_spec",
    "sample",
    "sampler_from_spec",
    "save_plots",
    "trial_rows",
]

_moved.install()

_EVOLUTION = ("EvolutionResult", "evolve", "load_best")


def __getattr__(name):
    # The EvoTorch engine (and with it Keras) is imported on first use of its names.
    if name in _EVOLUTION:
        from keras_bioact.search import evolution

        return getattr(evolution, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
