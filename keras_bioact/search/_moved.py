"""Old import paths of search modules that moved: each keeps working for one release.

Importing an old path (`MOVED`'s keys) warns `DeprecationWarning` naming the new path and gives
the new module itself, so `old.X is new.X`; `sys.modules` then holds it under both names.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# {old dotted name: new dotted name}; an old path is removed one release after its move.
MOVED = {
    "keras_bioact.search.checkpoint": "keras_bioact.search.evolution.checkpoint",
    "keras_bioact.search.evaluator": "keras_bioact.search.evolution.fitness",
    "keras_bioact.search.evolution_loggers": "keras_bioact.search.evolution.loggers",
    "keras_bioact.search.evolution_result": "keras_bioact.search.evolution.result",
    # back in the shared core: the Optuna engine trains batches of trials with it too
    "keras_bioact.search.evolution.population": "keras_bioact.search.population",
    "keras_bioact.search.holdout": "keras_bioact.search.optuna.holdout",
    "keras_bioact.search.objective": "keras_bioact.search.optuna.objective",
    "keras_bioact.search.run_evolution": "keras_bioact.search.evolution.runner",
    "keras_bioact.search.saved_model": "keras_bioact.search.models",
    "keras_bioact.search.schema": "keras_bioact.search.spec.schema",
    "keras_bioact.search.storage": "keras_bioact.search.optuna.storage",
    # the names of the old module now live in optuna.study, .workers and .export: the package has them all
    "keras_bioact.search.study": "keras_bioact.search.optuna",
}


class MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A `sys.meta_path` finder and loader of the old paths in `MOVED` (and of nothing else)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} is deprecated and will be removed in the next release; import {new} instead.",
            DeprecationWarning,
            stacklevel=2,  # the import statement (warnings skips importlib's own frames)
        )
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # the import system sets module.__spec__ = spec next
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # the new module keeps its own spec


def install():
    """Put `MovedFinder` first on `sys.meta_path` (once)."""
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())
