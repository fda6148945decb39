"""The checks of a specification that go beyond one key's type and range.

Each function fills part of a `SearchSpec` from its tables (already checked against
`keras_bioact.search.spec.schema`) and raises `SpecError` naming the file and the dotted key. No
function here imports Keras, Optuna or a backend, except `algorithm_options`, which is tried on
the real EvoTorch class when given.
"""

from __future__ import annotations

import os
import pathlib
import re
import tempfile

from keras_bioact import families
from keras_bioact.search import space as space_lib
from keras_bioact.search.metrics import OBJECTIVES, direction_of
from keras_bioact.search.spec import schema
from keras_bioact.search.spec.model import SpecError

DATASETS = ("digits", "fashion_mnist", "fashion-mnist")
NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def default_storage(study_name):
    """The embedded default: an SQLite file `<study_name>.db` in the working directory."""
    return f"sqlite:///{study_name}.db"


def stem(source, fallback):
    """The spec file's name without `.toml` (a study or output name), else `fallback`."""
    name = pathlib.Path(str(source)).stem if not str(source).startswith("<") else ""
    return name if name and NAME.match(name) else fallback


def data(spec, table, source):
    table.setdefault("name", "digits")
    name = table["name"]
    if name not in DATASETS and not name.startswith("idx:"):
        raise SpecError(
            source, "data.name", f"unknown data set {name!r}; use digits, fashion_mnist or idx:DIR"
        )
    if "test_fraction" in table and name != "digits":
        raise SpecError(source, "data.test_fraction", "only applies to the digits data set")
    if "path" in table:
        if name not in ("fashion_mnist", "fashion-mnist"):
            raise SpecError(source, "data.path", "only applies to fashion_mnist")
        _idx_dir(table["path"], source, "data.path")
    if name.startswith("idx:"):
        _idx_dir(name[4:], source, "data.name")
    spec.data = table


def _idx_dir(directory, source, key):
    """An MNIST-format directory with its four files, checked before anything is created."""
    from keras_bioact.datasets import IDX_NAMES, find_idx

    path = pathlib.Path(directory)
    if not path.is_dir():
        raise SpecError(source, key, f"{directory!r} is not a directory of IDX files")
    files = {names[0]: find_idx(path, k) for k, names in IDX_NAMES.items()}
    missing = [name for name, file in files.items() if file is None]
    if missing:
        raise SpecError(source, key, f"{directory!r} lacks {', '.join(missing)} (optionally .gz)")
    for file in files.values():
        _regular_file(file, source, key)


def _regular_file(path, source, key):
    """A regular file of at most `datasets.MAX_FILE_BYTES`, checked before it is opened."""
    from keras_bioact.datasets import regular_file

    try:
        regular_file(path)
    except OSError as e:
        raise SpecError(source, key, f"cannot read {str(path)!r}: {e.strerror or e}") from None
    except ValueError as e:
        raise SpecError(source, key, str(e)) from None


def model(spec, table, source):
    from keras_bioact.search.templates import resolve_template, template_options

    keys = schema.TABLES["model"]
    if "path" in table:
        path = table.pop("path")
        reason = schema.check_value("model.path", keys["path"], path)
        if reason:
            raise SpecError(source, "model.path", reason)
        if table:
            raise SpecError(
                source, f"model.{next(iter(table))}", "does not apply with model.path (a saved model)"
            )
        _keras_file(path, source)
        spec.model_path = path
        return
    template = table.pop("template", "mlp")
    reason = schema.check_value("model.template", keys["template"], template)
    if reason:
        raise SpecError(source, "model.template", reason)
    try:
        fn = resolve_template(template)
    except ValueError as e:
        raise SpecError(source, "model.template", str(e)) from None
    allowed = template_options(fn)
    for k, v in table.items():
        if allowed is not None and k not in allowed:
            raise SpecError(
                source,
                f"model.{k}",
                f"unknown option of template {template!r}; legal: {', '.join(allowed) or '(none)'}",
            )
        if k in keys and k not in ("path", "template"):
            reason = schema.check_value(f"model.{k}", keys[k], v)
            if reason and not (k == "dense" and v == []):
                raise SpecError(source, f"model.{k}", reason)
    spec.template, spec.template_options = template, table


def _keras_file(path, source):
    """A zip archive with config.json, of at most `MAX_FILE_BYTES` packed and unpacked (the
    sizes zipfile reads at most). Whether Keras loads it is `keras_bioact.search.preflight`'s check."""
    import zipfile

    from keras_bioact.datasets import MAX_FILE_BYTES

    _regular_file(path, source, "model.path")
    try:
        with zipfile.ZipFile(path) as z:
            ok = "config.json" in z.namelist()
            unpacked = sum(info.file_size for info in z.infolist())
    except (OSError, zipfile.BadZipFile):
        ok = False
    if ok and unpacked > MAX_FILE_BYTES:
        limit = f"over the limit of {MAX_FILE_BYTES:,}"
        raise SpecError(source, "model.path", f"{path!r} unpacks to {unpacked:,} bytes, {limit}")
    if not ok:
        raise SpecError(
            source,
            "model.path",
            f"{path!r} is not a readable .keras model file (a zip archive with config.json, as "
            "written by model.save)",
        )


def optuna(spec, tables, source):
    opt = tables["optuna"]
    name = opt.get("study", stem(source, ""))
    if not name:
        raise SpecError(source, "optuna.study", "is required (no spec file name to default to)")
    if not NAME.match(name):
        raise SpecError(source, "optuna.study", f"use letters, digits, '_', '-', '.' only, got {name!r}")
    spec.study_name = name
    spec.storage = opt.get("storage", default_storage(name))
    spec.n_trials = opt.get("n_trials", 20)
    spec.timeout = opt.get("timeout")
    spec.workers = opt.get("workers", 1)
    spec.batch = opt.get("batch")
    if spec.batch is not None and spec.batch > spec.n_trials:
        raise SpecError(
            source,
            "optuna.batch",
            f"must be at most the trial budget optuna.n_trials = {spec.n_trials}, got {spec.batch}",
        )
    spec.metric = opt.get("metric", "val_accuracy")
    spec.direction = opt.get("direction") or direction_of(spec.metric)
    extra = opt.get("extra", [])
    for e in extra:
        if e not in OBJECTIVES:
            raise SpecError(
                source, "optuna.extra", f"unknown objective {e!r}; legal: {', '.join(OBJECTIVES)}"
            )
    spec.extra = tuple(extra)
    timed = [e for e in extra if e in ("fit_time", "step_time")]
    if timed and (spec.batch or 1) > 1:
        raise SpecError(
            source,
            "optuna.batch",
            f"must be 1 with the timing objective {timed[0]!r}: trials trained together have no "
            "time of their own",
        )

    sampler = dict(tables.get("optuna.sampler", {}))
    sampler.setdefault("name", "nsga2" if extra else "tpe")
    if sampler["name"] == "cmaes" and extra:
        raise SpecError(
            source, "optuna.sampler.name", "cmaes is single-objective; use nsga2 or tpe with optuna.extra"
        )
    for k, legal in (("n_startup_trials", ("tpe", "cmaes")), ("population_size", ("nsga2", "cmaes"))):
        if k in sampler and sampler["name"] not in legal:
            raise SpecError(source, f"optuna.sampler.{k}", f"only applies to {' and '.join(legal)}")
    spec.sampler = sampler

    pruner = dict(tables.get("optuna.pruner", {}))
    repeated = spec.budget.repeats > 1 or "folds" in spec.data
    pruner.setdefault("name", "none" if extra else ("wilcoxon" if repeated else "median"))
    if extra and pruner["name"] != "none":
        raise SpecError(
            source, "optuna.pruner.name", "pruning is single-objective only; use 'none' with optuna.extra"
        )
    legal = {
        "median": {"n_startup_trials", "n_warmup_steps"},
        "hyperband": {"min_resource", "reduction_factor"},
        "wilcoxon": {"p_threshold", "n_startup_steps"},
        "none": set(),
    }[pruner["name"]]
    for k in pruner:
        if k != "name" and k not in legal:
            raise SpecError(source, f"optuna.pruner.{k}", f"does not apply to the {pruner['name']} pruner")
    if pruner["name"] == "wilcoxon" and not repeated:
        raise SpecError(
            source,
            "optuna.pruner.name",
            "wilcoxon compares the seeds or folds of trials: it needs budget.repeats > 1 or data.folds",
        )
    spec.pruner = pruner


def baselines(spec, names, source):
    """`[space] baselines` (None: not given): registered baseline families, added to the searched
    families."""
    legal = families.baseline_names()
    if names is None:  # not given: relu, gelu, swish; none with a saved model
        names = [] if spec.model_path else list(schema.BASELINES)
    if names and spec.model_path:
        raise SpecError(
            source,
            "space.baselines",
            "a saved model (model.path) is searched by converting its activations to parametric "
            "families; baselines are built from a template: use [] with model.path",
        )
    if not isinstance(names, list):
        raise SpecError(source, "space.baselines", f"must be a list of family names, got {names!r}")
    for i, name in enumerate(names):
        if name not in legal:
            raise SpecError(
                source,
                f"space.baselines[{i}]" if not isinstance(name, str) else "space.baselines",
                f"{name!r} is not a baseline family; legal: {', '.join(legal)}",
            )
    names = list(dict.fromkeys(names))
    spec.baselines = tuple(names)
    spec.space.families = list(spec.space.families) + [n for n in names if n not in spec.space.families]


def prescreen(spec, table, source):
    """`[space] prescreen = {propose = P, train = T}` (None: not given): integers with
    1 <= T <= P <= MAX_PROPOSE, and a space whose searched families are `composed` alone (the
    baselines aside)."""
    if table is None:
        spec.prescreen = None
        return
    key = "space.prescreen"
    if not isinstance(table, dict):
        raise SpecError(source, key, f"must be a table such as {{propose = 1000, train = 20}}, got {table!r}")
    for k in table:
        if k not in ("propose", "train"):
            raise SpecError(source, f"{key}.{k}", "unknown key; legal keys: propose, train")
    for k in ("propose", "train"):
        v = table.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_PROPOSE:
            raise SpecError(source, f"{key}.{k}", f"must be an integer in [1, {MAX_PROPOSE}], got {v!r}")
    if table["train"] > table["propose"]:
        raise SpecError(
            source,
            f"{key}.train",
            f"must be at most {key}.propose = {table['propose']} (the top `train` of the proposals "
            f"are trained), got {table['train']}",
        )
    searched = [f for f in spec.space.families if f not in spec.baselines]
    if searched != ["composed"]:
        raise SpecError(
            source,
            key,
            'ranks composed expressions: needs space.families = ["composed"] (baselines aside), '
            f"got {searched}",
        )
    spec.prescreen = {"propose": table["propose"], "train": table["train"]}


MAX_PROPOSE = 100_000  # proposals of one pre-screen round
MAX_SITES = 1024  # per-site parameters (`bru_r{i}`) checked in an enqueued table


class _EnqueueCheck:
    """A stand-in Optuna trial that answers the space's questions with an enqueued table's values
    (checked against the question's range or choices) and records what was asked."""

    def __init__(self, params, key, source):
        self.params, self.key, self.source, self.asked = params, key, source, set()

    def _given(self, name, fallback, check):
        self.asked.add(name)
        if name not in self.params:
            return fallback
        value = self.params[name]
        reason = check(value)
        if reason:
            raise SpecError(self.source, f"{self.key}.{name}", reason)
        return value

    def suggest_float(self, name, low, high, *, step=None, log=False):
        def check(v):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high
            return None if ok else f"must be a number in [{low!r}, {high!r}] (the space's range), got {v!r}"

        return float(self._given(name, low, check))

    def suggest_int(self, name, low, high, *, step=1, log=False):
        def check(v):
            ok = isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
            return None if ok else f"must be an integer in [{low}, {high}] (the space's range), got {v!r}"

        return self._given(name, low, check)

    def suggest_categorical(self, name, choices):
        def check(v):
            ok = any(v == c and type(v) is type(c) for c in choices)
            return None if ok else f"must be one of {', '.join(repr(c) for c in choices)}, got {v!r}"

        return self._given(name, choices[0], check)


def enqueue(spec, tables, source):
    """`[space] enqueue`: trial parameters put first (after the baselines), each table checked
    against the space (family, parameter names, ranges and choices) before anything runs."""
    if not isinstance(tables, list):
        raise SpecError(source, "space.enqueue", f"must be a list of tables, got {tables!r}")
    out = []
    for i, params in enumerate(tables):
        key = f"space.enqueue[{i}]"
        if not isinstance(params, dict):
            raise SpecError(source, key, f"must be a table of trial parameters, got {params!r}")
        family = params.get("family")
        if family not in spec.space.families:
            raise SpecError(
                source,
                f"{key}.family",
                f"must be one of the searched families {', '.join(spec.space.families)}, got {family!r}",
            )
        trial = _EnqueueCheck(params, key, source)
        trial.asked.add("family")
        space_lib.suggest_learning_rate(spec.space, trial, spec.budget.learning_rate)
        config = {"family": family}
        fam = families.get_family(family)
        if fam.sample is not None:
            config.update(fam.sample(spec.space.subspace(family), trial))
        if fam.suggest_site is not None:
            for site in range(MAX_SITES):
                if set(params) <= trial.asked:
                    break
                space_lib.suggest_site(spec.space, trial, family, site)
        unknown = [k for k in params if k not in trial.asked]
        if unknown:
            legal = sorted(trial.asked - {"family"})
            raise SpecError(
                source,
                f"{key}.{unknown[0]}",
                f"is not a parameter of the {family} trials of this space; legal: "
                f"family{', ' if legal else ''}{', '.join(legal)}",
            )
        out.append(dict(params))
    spec.enqueue = tuple(out)


def optuna_model(spec, source):
    """Families the model can take: a saved model's activations convert to parametric ones."""
    if spec.model_path:
        from keras_bioact.search.models import convertible

        legal = convertible()
        bad = [f for f in spec.space.families if f not in legal]
        if bad:
            raise SpecError(
                source,
                "space.families",
                f"{', '.join(bad)}: a saved model (model.path) is searched by converting its "
                f"activations, which is possible to {', '.join(legal)}",
            )
    if spec.template == "cnn" and "two_arg" in spec.space.families:
        try:
            from keras_bioact.layers import TwoArgConv2D  # noqa: F401
        except ImportError:
            raise SpecError(
                source,
                "space.families",
                "two_arg with the cnn template needs keras_bioact.layers.TwoArgConv2D",
            ) from None


def _target_family(target):
    """The family whose parameters an evolution `target` selects ("all": gamma)."""
    if target == "all":
        return "gamma"
    return next(f.name for f in families.families_with("target") if f.target == target)


EXPRESSION_TARGET = "expression"
# [evolution] keys an expression evolution reads (the others are the parameter evolution's).
EXPRESSION_KEYS = ("target", "popsize", "generations", "seed", "stdev_init", "algorithm_options")


def expression_evolution(spec, ev, space, source):
    """`[evolution] target = "expression"`: the composed expressions of `[space.composed]`
    evolved by a genetic algorithm (`keras_bioact.search.evolution.expressions`)."""
    for k in ev:
        if k not in EXPRESSION_KEYS:
            raise SpecError(
                source, f"evolution.{k}",
                f"does not apply to an expression evolution (keys: {', '.join(EXPRESSION_KEYS)})",
            )
    if spec.model_path:
        raise SpecError(
            source, "model.path", "an expression evolution builds the template with each expression"
        )
    options = ev.get("algorithm_options") or {}
    for k in options:
        if k not in ("mutation_stdev", "eta", "tournament_size", "elitist"):
            raise SpecError(
                source, f"evolution.algorithm_options.{k}",
                "legal for an expression evolution: mutation_stdev, eta, tournament_size, elitist",
            )
    space = dict(space)
    families_ = space.pop("families", ["composed"])
    if list(families_) != ["composed"]:
        raise SpecError(
            source, "space.families", f'an expression evolution searches ["composed"], got {families_!r}'
        )
    for k in space:
        if k != "composed":
            raise SpecError(source, f"space.{k}", "an expression evolution reads [space.composed] only")
    try:
        spec.space = space_lib.SearchSpace.from_dict({"families": ["composed"], **space})
    except space_lib.SpaceError as e:
        raise SpecError(source, e.key, str(e).split(": ", 1)[1]) from None
    spec.evolution = {k: schema.TABLES["evolution"][k].default for k in EXPRESSION_KEYS}
    spec.evolution["algorithm_options"] = {}
    spec.evolution.update(ev)


def evolution(spec, ev, source):
    target = ev.get("target", "all")
    targets = families.target_names()
    if target not in targets:
        raise SpecError(source, "evolution.target", f"must be one of {', '.join(targets)}, got {target!r}")
    if ev.get("mode") == "lamarckian" and ev.get("num_actors"):
        raise SpecError(source, "evolution.mode", "'lamarckian' cannot use num_actors > 0")
    activation = ev.pop("activation", None)
    if activation is not None and spec.model_path:
        raise SpecError(source, "evolution.activation", "does not apply with model.path (a saved model)")
    if activation is None:
        activation = {"family": _target_family(target)}
    if ev.get("start") == "model" and not spec.model_path:
        raise SpecError(
            source,
            "evolution.start",
            "'model' starts from a saved model's activation parameters: it needs model.path",
        )
    names = ev.get("baselines")
    if names is None:
        names = [] if spec.model_path else list(schema.BASELINES)
    if names and spec.model_path:
        raise SpecError(
            source, "evolution.baselines", "baselines are built from a template; use [] with model.path"
        )
    legal = families.baseline_names()
    for name in names:
        if name not in legal:
            raise SpecError(
                source, "evolution.baselines", f"{name!r} is not a baseline family; legal: {', '.join(legal)}"
            )
    ev["baselines"] = list(dict.fromkeys(names))
    spec.evolution = {
        k: (dict(key.default) if isinstance(key.default, dict) else key.default)
        for k, key in schema.TABLES["evolution"].items()
        if k != "activation"
    }
    spec.evolution.update(ev)
    spec.evolution["activation"] = _activation(activation, source)
    if ev.get("algorithm_options"):
        _algorithm_options(spec.evolution, source)


def _activation(config, source):
    """An `Activation` configuration, checked against its family's search space."""
    key = "evolution.activation"
    config = dict(config)
    family = config.get("family")
    names = families.family_names()
    if family not in names:
        raise SpecError(source, f"{key}.family", f"must be one of {', '.join(names)}, got {family!r}")
    sub = space_lib.SearchSpace().subspace(family)
    fields = sub.to_dict() if sub is not None else {}
    for k, v in config.items():
        if k == "family":
            continue
        if k not in fields:
            legal = ", ".join(["family", *fields]) if fields else "family"
            raise SpecError(source, f"{key}.{k}", f"unknown key for the {family} family; legal: {legal}")
        default = fields[k]
        is_range = (
            isinstance(default, list) and len(default) == 2 and all(isinstance(x, float) for x in default)
        )
        per_site = families.get_family(family).site_key == k
        values = v if (per_site and isinstance(v, list)) else [v]
        for value in values:
            probe = [value, value] if is_range else ([value] if isinstance(default, list) else value)
            try:
                type(sub).from_dict({k: probe}, f"{key}")
            except space_lib.SpaceError as e:
                raise SpecError(source, e.key, str(e).split(": ", 1)[1].replace("low ", "")) from None
    return config


def _algorithm_options(ev, source):
    """`algorithm_options` tried on the real EvoTorch class (no training)."""
    import torch
    from evotorch import Problem

    from keras_bioact.search.evolution.problem import make_searcher

    problem = Problem(
        "max", lambda x: x.sum(), solution_length=2, initial_bounds=(-1, 1), dtype=torch.float32
    )
    try:
        make_searcher(
            ev["algorithm"],
            problem,
            int(ev["popsize"]),
            float(ev["stdev_init"]),
            [0.0, 0.0],
            ev["algorithm_options"],
        )
    except (TypeError, ValueError) as error:
        raise SpecError(
            source, "evolution.algorithm_options", f"not accepted by {ev['algorithm']!r}: {error}"
        ) from None


def mixture(spec, table, source):
    """The `[mixture]` table: candidate names of `keras_bioact.mixture_candidates` (read from
    the NumPy references, so that no backend is imported), a warm start and a baseline among
    them, and a shrinking that starts before the last epoch."""
    from keras_bioact.reference import MIXTURE_CANDIDATES

    if spec.model_path:
        raise SpecError(source, "model.path", "does not apply to a mixture spec; use a model template")
    legal = tuple(MIXTURE_CANDIDATES)
    config = {
        k: (list(key.default) if isinstance(key.default, list) else key.default)
        for k, key in schema.TABLES["mixture"].items()
    }
    config.update(table)
    candidates = config["candidates"]
    if not candidates:
        raise SpecError(
            source, "mixture.candidates", f"must name at least one candidate of: {', '.join(legal)}"
        )
    for name in candidates:
        if name not in legal:
            raise SpecError(
                source, "mixture.candidates", f"unknown candidate {name!r}; legal: {', '.join(legal)}"
            )
    if len(set(candidates)) != len(candidates):
        raise SpecError(source, "mixture.candidates", f"repeats a name: {candidates}")
    if config["warm_start"] != "none" and config["warm_start"] not in candidates:
        raise SpecError(
            source,
            "mixture.warm_start",
            f"must be 'none' or one of the candidates {candidates}, got {config['warm_start']!r}",
        )
    if config["baseline"] != "none" and config["baseline"] not in legal:
        raise SpecError(
            source,
            "mixture.baseline",
            f"must be 'none' or one of {', '.join(legal)}, got {config['baseline']!r}",
        )
    if config["shrink_start"] >= config["epochs"]:
        raise SpecError(
            source,
            "mixture.shrink_start",
            f"must be < mixture.epochs ({config['epochs']}), got {config['shrink_start']}",
        )
    spec.mixture = config


def writable_dir(directory, key, source):
    """`directory` is a folder, or can be created as one: its nearest existing ancestor is a
    folder in which a probe folder can be made (and is removed at once). Nothing is left
    behind; `SpecError` naming `key` otherwise."""
    path = os.path.abspath(directory)
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        reason = "exists" if existing == path else f"cannot be created: {existing!r} exists"
        raise SpecError(source, key, f"{path!r} {reason} and is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".bioact-probe-", dir=existing))
    except OSError as e:
        raise SpecError(source, key, f"cannot write to {existing!r}: {e.strerror or e}") from None


def output_dir(spec):
    """The absolute output directory of an evolution spec, checked to be writable."""
    out_dir = os.path.abspath(spec.output["dir"])
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, ".write-test")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise SpecError(
            spec.source, "output.dir", f"cannot write to {out_dir!r}: {e.strerror or e}"
        ) from None
    return out_dir
