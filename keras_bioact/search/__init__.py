"""Activation search: Optuna studies here, EvoTorch evolution in `keras_bioact.search.evolution`
(`evolve`, `EvolutionResult` and `load_best` are also importable from here).

Spaces are data (`SearchSpace`, serialisable to TOML/JSON), a model builder turns an
`Activation` into a Keras model, `make_objective` trains and scores it, and the study helpers
create/resume studies on an embedded SQLite file (default) or any Optuna RDB URL, run workers,
recover trials of killed workers, and export results.

```python
from keras_bioact import search

spec = search.load_spec("search/quickstart.toml")
study = search.create_study(spec.study_name, spec.storage, spec.directions,
                            spec.make_sampler(), spec.make_pruner())
search.run(study, spec.build_objective(), n_trials=spec.n_trials)
layer = search.best_activation(study)          # a ready-to-use Keras layer
```

Importing this package does not import Optuna, Keras or EvoTorch; they are loaded when used.
Modules that moved keep their old import paths for one release (`_moved.MOVED`).
"""

from keras_bioact.search import _moved
from keras_bioact.search.activation import TWO_ARG_MISSING, Activation
from keras_bioact.search.objective import OBJECTIVES, Budget, Diverged, direction_of, make_objective
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
from keras_bioact.search.spec import SearchSpec, SpecError, load_spec, parse_spec
from keras_bioact.search.study import (
    PRUNERS,
    SAMPLERS,
    best_activation,
    best_activation_config,
    best_trials,
    count_finished,
    create_study,
    default_storage,
    export_trials,
    load_study,
    make_pruner,
    make_sampler,
    open_storage,
    recover_dead_trials,
    run,
    save_plots,
    trial_rows,
)
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
    "open_storage",
    "parse_spec",
    "recover_dead_trials",
    "register_template",
    "resolve_template",
    "run",
    "sample",
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
