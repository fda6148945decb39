"""Search specifications (TOML): one reader and one schema for both engines.

```toml
[optuna]                      # the engine: an Optuna study (or [evolution]: EvoTorch)
study = "quickstart"
n_trials = 16
[optuna.sampler]
name = "tpe"

[data]
name = "digits"
validation_fraction = 0.2     # validation is carved out of the training split, seeded
[model]
template = "mlp"              # or path = "my_model.keras"
hidden = [32, 32]
[budget]
epochs = 6
[space]
families = ["relu", "gamma", "bru"]
```

Every key is declared once in `keras_bioact.search.schema` (type, default, legal range);
`docs/specs.md` lists them. Every unknown key, out-of-range value or unknown name raises
`SpecError` naming the file and the dotted key, before anything is imported, loaded or
trained. Strings are never evaluated and a spec never imports code. `SearchSpec.preflight`
then reads the data and the saved model and tries the output folder, before anything is written.

Protocol: trials (and evolution's fitness) are scored on the validation split, carved out of
the data set's training split with `data.seed`. The search never sees the test split; when it
ends (and in `bioact show`), the best trial is scored once on the test split.
"""

from __future__ import annotations

import copy
import math
import pathlib
import re
import warnings
from dataclasses import dataclass, field

from keras_bioact.search import schema
from keras_bioact.search import space as space_lib
from keras_bioact.search.objective import Budget, direction_of

__all__ = ["SearchSpec", "SpecDeprecationWarning", "SpecError", "load_spec", "parse_spec"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_TOP = ("data", "model", "budget", "output", "space", "optuna", "evolution")


class SpecError(ValueError):
    """An invalid search specification; the message names the file and the dotted key."""

    def __init__(self, source, key, message):
        self.source, self.key = source, key
        super().__init__(f"{source}: {key}: {message}")


class SpecDeprecationWarning(FutureWarning):
    """A key of an earlier spec format, translated to its new place."""


@dataclass
class SearchSpec:
    """A validated specification (see `docs/specs.md`)."""

    engine: str = "optuna"
    study_name: str = "search"
    storage: str = ""
    n_trials: int = 20
    timeout: float | None = None
    workers: int = 1
    data: dict = field(default_factory=lambda: {"name": "digits"})
    template: str = "mlp"
    template_options: dict = field(default_factory=dict)
    model_path: str | None = None
    budget: Budget = field(default_factory=Budget)
    metric: str = "val_accuracy"
    direction: str = "maximize"
    extra: tuple = ()
    sampler: dict = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict = field(default_factory=lambda: {"name": "median"})
    space: space_lib.SearchSpace = field(default_factory=space_lib.SearchSpace)
    evolution: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    source: str = "<spec>"
    raw: dict = field(default_factory=dict)

    @property
    def directions(self):
        return [self.direction] + [direction_of(e) for e in self.extra]

    @property
    def objective_names(self):
        return [self.metric] + list(self.extra)

    def override(self, dotted, value, source="command line"):
        """Set `table.key` (checked against the schema, e.g. from a command-line flag)."""
        table, _, key = dotted.rpartition(".")
        reason = schema.check_value(dotted, schema.TABLES[table][key], value)
        if reason:
            raise SpecError(source, dotted, reason)
        target = {"evolution": self.evolution, "output": self.output}[table]
        target[key] = value

    def make_sampler(self, worker_index=0):
        from keras_bioact.search.study import make_sampler

        options = dict(self.sampler)
        name = options.pop("name")
        seed = options.pop("seed", None)
        if seed is not None:  # workers must not propose identical trials
            seed = (int(seed) + int(worker_index)) % 2**32
        if name == "cmaes" and "population_size" in options:
            options["popsize"] = options.pop("population_size")  # CmaEsSampler's name for it
        return self._optuna("optuna.sampler", self.sampler, lambda: make_sampler(name, seed=seed, **options))

    def make_pruner(self):
        from keras_bioact.search.study import make_pruner

        options = dict(self.pruner)
        name = options.pop("name")
        return self._optuna("optuna.pruner", self.pruner, lambda: make_pruner(name, **options))

    def _optuna(self, table, given, build):
        """`build()`; Optuna's refusal is a `SpecError` naming the key it mentions (else the
        table), never a storage failure."""
        try:
            return build()
        except (TypeError, ValueError) as e:
            named = [k for k in given if k != "name" and k.lower() in str(e).lower()]
            key = f"{table}.{named[0]}" if named else table
            raise SpecError(self.source, key, f"refused by Optuna: {e}") from None

    def load_splits(self):
        """`{"train", "val", "test"}` -> `(x, y)`: validation carved out of the training split."""
        import numpy as np

        from keras_bioact import datasets

        name = self.data["name"]
        opts = {
            k: v
            for k, v in self.data.items()
            if k == "path" or (name == "digits" and k in ("test_fraction", "seed"))
        }
        data_key = "data.path" if "path" in self.data else "data.name"
        try:
            (x, y), test = datasets.load(name, **opts)
        except (OSError, ValueError) as e:  # not installed, unreadable, damaged
            raise SpecError(self.source, data_key, f"cannot load the data set: {e}") from None
        n = len(x)
        if n < 2 or not len(test[0]):
            raise SpecError(
                self.source,
                "data.test_fraction" if "test_fraction" in self.data else data_key,
                f"gives {n} training and {len(test[0])} test samples; a search needs at least 2 "
                "training samples (one is held out for validation) and 1 test sample",
            )
        order = np.random.default_rng(self.data.get("seed", 0)).permutation(n)
        n_val = max(1, int(round(n * self.data.get("validation_fraction", 0.2))))
        if n_val >= n:
            raise SpecError(
                self.source,
                "data.validation_fraction",
                f"leaves no training sample of the {n} in {name}'s training split; legal for this "
                f"data: (0, {math.floor((n - 1) / n * 1e6) / 1e6}]",
            )
        val, train = order[:n_val], order[n_val:]
        splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test}
        for split in splits:
            limit = self.data.get(f"max_{split}")
            if limit:
                splits[split] = tuple(a[:limit] for a in splits[split])
        return splits

    def preflight(self, export=None):
        """Read what the run will read and try where it will write, before anything is written
        (`bioact search` calls this before it opens the storage): the output folder (`export`,
        i.e. `--export`, else `output.dir`) exists or can be created, the data loads into
        non-empty splits, and a saved model (`model.path`) loads with `safe_mode=True` and fits
        the data. Raises `SpecError` naming the key."""
        from keras_bioact.search._spec_checks import writable_dir

        directory = export or self.output.get("dir")
        if directory:
            writable_dir(directory, "--export" if export else "output.dir", self.source)
        splits = self.load_splits()
        if self.model_path:
            from keras_bioact.search.saved_model import check_model, load

            try:
                check_model(load(self.model_path), *shape_and_classes(splits), self.model_path)
            except ValueError as e:
                raise SpecError(self.source, "model.path", str(e).removeprefix("model.path: ")) from None

    def load_data(self):
        """`((x_train, y_train), (x_val, y_val))` and `(input_shape, num_classes)`; the test
        split is not loaded here (see `load_splits`)."""
        splits = self.load_splits()
        return (splits["train"], splits["val"]), shape_and_classes(splits)

    def model_builder(self, input_shape, num_classes):
        """`activation -> keras.Model`: the one model builder of both engines (the template,
        or the saved model with its activations converted to the activation's family)."""
        if self.model_path:
            from keras_bioact.search.saved_model import converted_builder

            return converted_builder(self.model_path, input_shape, num_classes)
        from keras_bioact.search.templates import resolve_template

        template = resolve_template(self.template)
        options = dict(self.template_options)
        return lambda activation: template(
            activation, input_shape=input_shape, num_classes=num_classes, **options
        )

    def build_objective(self, data=None):
        """The Optuna objective of this specification (loads the data unless given)."""
        from keras_bioact.search.objective import make_objective

        if data is None:
            data, (input_shape, num_classes) = self.load_data()
        else:
            import numpy as np

            input_shape = tuple(np.asarray(data[0][0]).shape[1:])
            num_classes = int(max(np.max(data[0][1]), np.max(data[1][1]))) + 1
        return make_objective(
            self.model_builder(input_shape, num_classes),
            data,
            space=self.space,
            budget=self.budget,
            metric=self.metric,
            objectives=self.extra,
            prune=self.pruner.get("name", "none") != "none",
        )


def shape_and_classes(splits):
    """`(input_shape, num_classes)` of a `load_splits` result."""
    import numpy as np

    num_classes = int(max(np.max(y) for _, y in splits.values())) + 1
    return tuple(np.asarray(splits["train"][0]).shape[1:]), num_classes


# --------------------------------------------------------------------------------------------
# reading


def load_spec(path):
    """Read and validate a TOML specification file; raises `SpecError` (naming the file and
    the key) on any problem."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from keras_bioact.datasets import regular_file

    path = pathlib.Path(path)
    try:
        regular_file(path, schema.MAX_SPEC_BYTES)
        text = path.read_bytes()
    except OSError as e:
        raise SpecError(str(path), "<file>", f"cannot read the specification ({e.strerror})") from None
    except ValueError as e:
        raise SpecError(str(path), "<file>", f"not read: {e}") from None
    try:
        raw = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(str(path), "<toml>", f"not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        limit = schema.MAX_DEPTH
        raise SpecError(str(path), "<toml>", f"nested too deeply (at most {limit} levels)") from None
    return parse_spec(raw, source=str(path))


def parse_spec(raw, source="<spec>"):
    """Validate a specification given as a dict (parsed TOML); returns a `SearchSpec`."""
    from keras_bioact.search import _spec_checks as checks

    if not isinstance(raw, dict):
        raise SpecError(source, "<top>", "a specification must be a TOML table")
    bad = schema.bad_value(raw, "")
    if bad:
        raise SpecError(source, *bad)
    raw = _migrate(copy.deepcopy(raw), source)
    stored = copy.deepcopy(raw)
    for k in raw:
        if k not in _TOP:
            raise SpecError(source, k, f"unknown table; legal tables: {', '.join(_TOP)}")
        if not isinstance(raw[k], dict):
            raise SpecError(source, k, f"must be a table, got {type(raw[k]).__name__}")
    engines = [e for e in schema.ENGINES if e in raw]
    if len(engines) != 1:
        raise SpecError(
            source,
            "<top>",
            "a spec needs exactly one engine table: [optuna] (an Optuna study) or [evolution] "
            f"(an EvoTorch evolution), got {engines or 'neither'}; see docs/specs.md",
        )
    engine = engines[0]
    tables = {}
    for table in ("data", "budget", "output", engine):
        tables[table] = _check_table(raw.get(table, {}), table, source)
    if engine == "optuna":
        for sub in ("sampler", "pruner"):
            if sub in tables["optuna"]:
                tables[f"optuna.{sub}"] = _check_table(tables["optuna"][sub], f"optuna.{sub}", source)
    spec = SearchSpec(engine=engine, source=str(source), raw=stored)
    checks.data(spec, tables["data"], source)
    checks.model(spec, dict(raw.get("model", {})), source)
    spec.budget = Budget(**tables["budget"])
    spec.output = dict(tables["output"])
    if engine == "optuna":
        _check_budget(spec, source)
        checks.optuna(spec, tables, source)
        try:
            spec.space = space_lib.SearchSpace.from_dict(raw.get("space", {}))
        except space_lib.SpaceError as e:
            raise SpecError(source, e.key, str(e).split(": ", 1)[1]) from None
        checks.optuna_model(spec, source)
    else:
        if "space" in raw:
            raise SpecError(
                source, "space", "is the Optuna search space; evolution evolves `evolution.target`"
            )
        checks.evolution(spec, tables["evolution"], source)
        spec.output.setdefault("dir", f"runs/{_stem(source, 'evolve')}")
        spec.output.setdefault("tensorboard", True)
    return spec


def _check_budget(spec, source):
    if spec.budget.epochs < 1:
        raise SpecError(source, "budget.epochs", f"must be >= 1 for optuna trials, got {spec.budget.epochs}")


def _stem(source, fallback):
    name = pathlib.Path(str(source)).stem if not str(source).startswith("<") else ""
    return name if name and _NAME.match(name) else fallback


def _check_table(table, name, source):
    """Check `table`'s keys and values against the schema; returns a copy."""
    if not isinstance(table, dict):
        raise SpecError(source, name, f"must be a table, got {type(table).__name__}")
    keys = schema.TABLES[name]
    for k, v in table.items():
        if k not in keys:
            raise SpecError(source, f"{name}.{k}", f"unknown key; legal keys: {', '.join(keys)}")
        reason = schema.check_value(f"{name}.{k}", keys[k], v)
        if reason:
            raise SpecError(source, f"{name}.{k}", reason)
    return dict(table)


def _deprecated(source, old, new):
    warnings.warn(
        f"{source}: {old} is deprecated; it is now {new} (see docs/specs.md)",
        SpecDeprecationWarning,
        stacklevel=4,
    )


def _migrate(raw, source):
    """Translate keys of earlier spec formats (with a deprecation warning), or fail naming the
    new key where no mechanical translation exists."""
    moves = {"study": "optuna", "objective": "optuna", "sampler": "optuna.sampler", "pruner": "optuna.pruner"}
    old_tables = [t for t in moves if t in raw]
    if old_tables and "optuna" in raw:
        raise SpecError(
            source, old_tables[0], f"[{old_tables[0]}] is the earlier form of [optuna]; use one of them"
        )
    if old_tables:
        optuna = {}
        for t in old_tables:
            table = raw.pop(t)
            if not isinstance(table, dict):
                raise SpecError(source, t, f"must be a table, got {type(table).__name__}")
            if t in ("sampler", "pruner"):
                optuna[t] = table
                _deprecated(source, f"[{t}]", f"[optuna.{t}]")
                continue
            for k, v in table.items():
                optuna["study" if (t, k) == ("study", "name") else k] = v
            names = ", ".join(f"{t}.{k}" for k in table)
            _deprecated(source, f"[{t}] ({names})", "[optuna] (study.name is optuna.study)")
        raw["optuna"] = optuna
    data, model = raw.get("data"), raw.get("model")
    if isinstance(data, dict) and "limit" in data:
        _deprecated(source, "data.limit", "data.max_train")
        limit = data.pop("limit")
        if limit:
            data.setdefault("max_train", limit)
    if isinstance(model, dict):
        for old, new in schema.LEGACY.items():
            table, _, key = old.partition(".")
            if table != "model" or key not in model:
                continue
            if new is None:
                raise SpecError(
                    source, old, f"is no longer a key; the activation is set by {schema.LEGACY_HINT}"
                )
            new_table, new_key = new.split(".")
            budget = raw.setdefault(new_table, {})
            if isinstance(budget, dict) and new_key in budget:
                raise SpecError(source, old, f"is the earlier name of {new}; give only {new}")
            _deprecated(source, old, new)
            budget[new_key] = model.pop(key)
    return raw
