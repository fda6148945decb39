"""Old import paths of moved search modules: they import for one release, warn, and give the
new module itself; importing `keras_bioact.search` stays light."""

import importlib
import pathlib
import subprocess
import sys

import pytest

from keras_bioact.search._moved import MOVED

pytestmark = pytest.mark.single_backend


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_old_path_warns_and_gives_the_new_module(old, new, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)  # imported (and warned) once per process
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated.*import {new} instead"):
        module = importlib.import_module(old)
    fresh = importlib.import_module(new)
    assert module is fresh and module.__spec__.name == new  # the new module keeps its own spec
    public = getattr(fresh, "__all__", None) or [n for n in vars(fresh) if not n.startswith("_")]
    assert public and all(getattr(module, name) is getattr(fresh, name) for name in public)


def test_from_import_of_an_old_path(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras_bioact.search.checkpoint", raising=False)
    monkeypatch.delattr("keras_bioact.search.checkpoint", raising=False)
    with pytest.warns(DeprecationWarning, match="keras_bioact.search.evolution.checkpoint"):
        from keras_bioact.search.checkpoint import CheckpointError
    from keras_bioact.search.evolution.checkpoint import CheckpointError as new

    assert CheckpointError is new


def test_unknown_names_are_still_missing():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("keras_bioact.search.no_such_module")


def test_importing_search_stays_light():
    heavy = ("optuna", "keras", "evotorch", "torch", "tensorflow", "jax")
    code = f"import sys, keras_bioact.search; print(sorted(m for m in {heavy} if m in sys.modules))"
    root = pathlib.Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


# `keras_bioact.search.__all__` before the split into search.spec, search.optuna and search.evolution
PUBLIC = (
    "Activation BASELINES BRUSpace Budget Diverged EvolutionResult FAMILIES GammaSpace OBJECTIVES PRUNERS "
    "SAMPLERS SearchSpace SearchSpec SpaceError SpecError TEMPLATES TWO_ARG_MISSING TwoArgSpace "
    "best_activation best_activation_config allow_code best_trials cnn count_finished create_study "
    "default_storage direction_of evolve export_trials load_best load_spec load_study make_objective "
    "make_pruner make_sampler mlp open_storage parse_spec recover_dead_trials register_template "
    "resolve_template run sample save_plots trial_rows"
).split()


def test_the_public_names_of_search_keep_working():
    import keras_bioact.search as search
    from keras_bioact.search import evolution, optuna, spec

    assert set(PUBLIC) <= set(search.__all__)
    for name in PUBLIC:
        assert getattr(search, name) is not None, name
    assert search.run is optuna.workers.run and callable(search.run)  # the function, not a module
    assert search.SearchSpec is spec.SearchSpec and search.evolve is evolution.evolve
    # the old module keras_bioact.search.spec is now the spec package, with the same names
    for name in ("SearchSpec", "SpecDeprecationWarning", "SpecError", "load_spec", "parse_spec"):
        assert name in spec.__all__ and getattr(spec, name) is getattr(spec.reader, name)


def test_the_old_study_module_gives_all_its_names(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras_bioact.search.study", raising=False)
    with pytest.warns(DeprecationWarning, match="import keras_bioact.search.optuna instead"):
        from keras_bioact.search.study import count_finished, export_trials, run, save_plots, trial_rows
    from keras_bioact.search.optuna import export, workers

    assert (run, count_finished) == (workers.run, workers.count_finished)
    assert export_trials is export.export_trials and (save_plots, trial_rows) == (
        export.save_plots,
        export.trial_rows,
    )
