"""Optuna studies of a search: samplers, pruners, creating and loading a study (also from a
`SearchSpec`: `sampler_from_spec`, `pruner_from_spec`, `open_study`)."""

from __future__ import annotations

import copy

from keras_bioact.search.optuna.storage import StorageError, display_url, open_storage, redact
from keras_bioact.search.spec.model import SpecError
from keras_bioact.search.spec.schema import PRUNERS, SAMPLERS

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "create_study",
    "enqueue_first",
    "first_trials",
    "load_study",
    "make_pruner",
    "make_sampler",
    "open_study",
    "pruner_from_spec",
    "sampler_from_spec",
    "stored_spec",
]


def make_sampler(name="tpe", seed=None, **options):
    """`tpe` (default), `cmaes`, `random` or `nsga2` (multi-objective)."""
    import optuna

    name = name.lower()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **options)
    if name == "cmaes":
        options.setdefault("warn_independent_sampling", False)
        return optuna.samplers.CmaEsSampler(seed=seed, **options)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **options)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **options)
    raise ValueError(f"unknown sampler {name!r}; legal: {', '.join(SAMPLERS)}")


def make_pruner(name="median", **options):
    """`median` (default), `hyperband`, `wilcoxon` (for repeated trials: each seed or fold is a
    step) or `none`."""
    import optuna

    name = (name or "none").lower()
    if name == "median":
        return optuna.pruners.MedianPruner(**options)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**options)
    if name == "wilcoxon":
        import warnings

        with warnings.catch_warnings():  # "experimental" since Optuna 3.6; chosen on purpose here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(**options)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; legal: {', '.join(PRUNERS)}")


def create_study(study_name, storage, directions=("maximize",), sampler=None, pruner=None, metric_names=None):
    """Create the study, or load it when it exists with the same directions. `metric_names`
    (one per direction, e.g. `["val_accuracy"]`) name the objectives in Optuna's own views
    (`study.metric_names`, optuna-dashboard) and in the exports.

    Call this ONCE before starting workers: concurrent creation of a fresh SQLite study races
    ("table studies already exists"). Workers then call `load_study`.
    """
    import optuna

    storage = open_storage(storage) if isinstance(storage, str) else storage
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        directions=list(directions),
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    have = [d.name.lower() for d in study.directions]
    if have != [d.lower() for d in directions]:
        raise ValueError(
            f"study {study_name!r} exists with directions {have}, but the specification asks for "
            f"{list(directions)}; use another study name"
        )
    if metric_names is not None and list(metric_names) != study.metric_names:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(metric_names))
    return study


def load_study(study_name, storage, sampler=None, pruner=None):
    import optuna

    storage = open_storage(storage) if isinstance(storage, str) else storage
    return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)


def sampler_from_spec(spec, worker_index=0):
    """The sampler of `spec`'s `[optuna.sampler]`; worker `worker_index` gets the seed
    `seed + worker_index`, so that workers do not propose identical trials."""
    options = dict(spec.sampler)
    name = options.pop("name")
    seed = options.pop("seed", None)
    if seed is not None:
        seed = (int(seed) + int(worker_index)) % 2**32
    if name == "cmaes" and "population_size" in options:
        options["popsize"] = options.pop("population_size")  # CmaEsSampler's name for it
    return _refused_by_optuna(spec, "optuna.sampler", spec.sampler, make_sampler, name, seed=seed, **options)


def pruner_from_spec(spec):
    """The pruner of `spec`'s `[optuna.pruner]`."""
    options = dict(spec.pruner)
    name = options.pop("name")
    return _refused_by_optuna(spec, "optuna.pruner", spec.pruner, make_pruner, name, **options)


def _refused_by_optuna(spec, table, given, make, *args, **kwargs):
    """`make(*args, **kwargs)`; Optuna's refusal is a `SpecError` naming the key of `given` (the
    spec's table) that it mentions (else the table), never a storage failure."""
    try:
        return make(*args, **kwargs)
    except (TypeError, ValueError) as e:
        named = [k for k in given if k != "name" and k.lower() in str(e).lower()]
        key = f"{table}.{named[0]}" if named else table
        raise SpecError(spec.source, key, f"refused by Optuna: {e}") from None


def open_study(spec, worker_index=0, key="optuna.storage"):
    """The study of an `[optuna]` spec: created (or loaded if it exists with the same
    directions) with the spec's objective names and the spec itself stored as data
    (`stored_spec`), or, for worker `worker_index` >= 1, loaded with that worker's sampler.
    A storage that cannot be used is a `SpecError` naming `key` (password hidden)."""
    try:
        if worker_index:
            return load_study(
                spec.study_name, spec.storage, sampler_from_spec(spec, worker_index), pruner_from_spec(spec)
            )
        study = create_study(
            spec.study_name,
            spec.storage,
            spec.directions,
            sampler_from_spec(spec),
            pruner_from_spec(spec),
            metric_names=spec.objective_names,
        )
        study.set_user_attr("objective_names", spec.objective_names)
        enqueue_first(study, spec)
        # the validated spec, as data, so that `bioact show` can score the best trial on test
        study.set_user_attr("spec", stored_spec(spec))
        return study
    except SpecError:
        raise
    except StorageError as e:  # a refused file or URL; the message names it, password hidden
        raise SpecError(spec.source, key, str(e)) from None
    except Exception as e:  # any other storage failure (a server that went away, say)
        shown, reason = display_url(spec.storage), redact(e, spec.storage)
        raise SpecError(
            spec.source, key, f"cannot open storage {shown!r}: {type(e).__name__}: {reason}"
        ) from None


def first_trials(spec):
    """The parameters of the trials a study of `spec` starts with: each baseline family
    (`[space] baselines`; only the family fixed, so a searched learning rate is sampled as for any
    trial), then the tables of `[space] enqueue`."""
    return [{"family": name} for name in spec.baselines] + [dict(p) for p in spec.enqueue]


def enqueue_first(study, spec):
    """Enqueue `first_trials(spec)` once per study: when it is created, never again on a resumed
    run or by another process (the study's user attribute `enqueued` records that it was done).
    A study that has trials but no such attribute (made before warm starts existed) gets none.
    Returns the parameters enqueued now."""
    if "enqueued" in study.user_attrs:
        return []
    params = first_trials(spec) if not study.get_trials(deepcopy=False) else []
    for p in params:
        study.enqueue_trial(p, skip_if_exists=True)
    study.set_user_attr("enqueued", params)
    return params


def stored_spec(spec):
    """The `spec` user attribute of a study: the spec as data, its storage URL without password."""
    raw = copy.deepcopy(spec.raw)
    if isinstance(raw.get("optuna", {}).get("storage"), str):
        raw["optuna"]["storage"] = display_url(raw["optuna"]["storage"])
    return {"source": spec.source, "raw": raw}
