"""Declarative search specifications (TOML), validated before any training.

```toml
[study]                       # required
name = "quickstart"           # required; the Optuna study name
storage = "sqlite:///quickstart.db"   # optional; default sqlite:///<name>.db (working directory)
n_trials = 12                 # total finished trials wanted (over all workers and re-runs)
timeout = 600                 # optional, seconds per invocation
workers = 1                   # worker processes on this machine

[data]
name = "digits"               # keras_bioact.datasets.load(name): digits | fashion_mnist | idx:DIR
validation_fraction = 0.2     # validation is carved out of the training split (seeded by `seed`)
seed = 0                      # seed of the train/validation split (and of digits' test split)
max_val = 500                 # optional: use at most this many validation samples

[model]
template = "mlp"              # mlp | cnn | "package.module:function"
hidden = [32, 32]             # every other key is an option of the template

[budget]                      # keras_bioact.search.Budget
epochs = 4
batch_size = 64
learning_rate = 0.003

[objective]
metric = "val_accuracy"       # a Keras log key; direction inferred (loss/error: minimise)
extra = []                    # multi-objective: any of "params", "fit_time", "step_time"

[sampler]
name = "tpe"                  # tpe | cmaes | random | nsga2 (default nsga2 when extra is set)
seed = 0

[pruner]
name = "median"               # median | hyperband | none

[space]                       # keras_bioact.search.SearchSpace
families = ["relu", "gamma", "bru"]
[space.gamma]
n = [1.0, 20.0]
```

Protocol: trials are trained on the training split and scored on the validation split,
which is carved out of the data set's training split with `data.seed`. The search never sees
the test split; when a search ends (and in `bioact show`) the best trial is retrained once,
with its own seed, and scored on the test split (`keras_bioact.search.holdout`).

Every unknown key, out-of-range value or unknown name raises `SpecError` naming the file and
the key, before any data is loaded or any model is trained. Strings are never evaluated.
"""

from __future__ import annotations

import math
import pathlib
import re
from dataclasses import dataclass, field

from keras_bioact.search import space as space_lib
from keras_bioact.search.objective import OBJECTIVES, Budget, direction_of
from keras_bioact.search.study import PRUNERS, SAMPLERS, default_storage
from keras_bioact.search.templates import resolve_template, template_options

__all__ = ["SearchSpec", "SpecError", "load_spec", "parse_spec"]

_SECTIONS = {
    "study": {"name", "storage", "n_trials", "timeout", "workers"},
    "data": {
        "name",
        "max_train",
        "max_val",
        "max_test",
        "validation_fraction",
        "test_fraction",
        "seed",
        "path",
    },
    "model": None,  # template + template options (checked against the template's signature)
    "budget": {"epochs", "batch_size", "learning_rate", "seed", "jit_compile"},
    "objective": {"metric", "direction", "extra"},
    "sampler": {"name", "seed", "n_startup_trials", "population_size"},
    "pruner": {"name", "n_startup_trials", "n_warmup_steps", "min_resource", "reduction_factor"},
    "space": None,  # checked by SearchSpace.from_dict
}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# What `make_objective`'s models log: the objective metric must be one of these.
METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
MAX_TRIALS = 1_000_000


class SpecError(ValueError):
    """An invalid search specification; the message names the file and the key."""

    def __init__(self, source, key, message):
        self.source, self.key = source, key
        super().__init__(f"{source}: {key}: {message}")


@dataclass
class SearchSpec:
    """A validated specification (see the module docstring for the TOML form)."""

    study_name: str
    storage: str
    n_trials: int = 20
    timeout: float | None = None
    workers: int = 1
    data: dict = field(default_factory=lambda: {"name": "digits"})
    template: str = "mlp"
    template_options: dict = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    metric: str = "val_accuracy"
    direction: str = "maximize"
    extra: tuple = ()
    sampler: dict = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict = field(default_factory=lambda: {"name": "median"})
    space: space_lib.SearchSpace = field(default_factory=space_lib.SearchSpace)
    source: str = "<spec>"
    raw: dict = field(default_factory=dict)

    @property
    def directions(self):
        return [self.direction] + [direction_of(e) for e in self.extra]

    @property
    def objective_names(self):
        return [self.metric] + list(self.extra)

    def make_sampler(self, worker_index=0):
        from keras_bioact.search.study import make_sampler

        options = dict(self.sampler)
        name = options.pop("name")
        seed = options.pop("seed", None)
        if seed is not None:
            seed = int(seed) + int(worker_index)  # workers must not propose identical trials
        return make_sampler(name, seed=seed, **options)

    def make_pruner(self):
        from keras_bioact.search.study import make_pruner

        options = dict(self.pruner)
        return make_pruner(options.pop("name"), **options)

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
        (x, y), test = datasets.load(name, **opts)
        order = np.random.default_rng(self.data.get("seed", 0)).permutation(len(x))
        n_val = max(1, int(round(len(x) * self.data.get("validation_fraction", 0.2))))
        val, train = order[:n_val], order[n_val:]
        splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test}
        for split in splits:
            limit = self.data.get(f"max_{split}")
            if limit:
                splits[split] = tuple(a[:limit] for a in splits[split])
        return splits

    def load_data(self):
        """`((x_train, y_train), (x_val, y_val))` and `(input_shape, num_classes)`; the test
        split is not loaded here (see `load_splits`)."""
        splits = self.load_splits()
        return (splits["train"], splits["val"]), _shape_and_classes(splits)

    def build_objective(self, data=None):
        """The Optuna objective of this specification (loads the data unless given)."""
        import functools

        from keras_bioact.search.objective import make_objective

        if data is None:
            data, (input_shape, num_classes) = self.load_data()
        else:
            import numpy as np

            input_shape = tuple(np.asarray(data[0][0]).shape[1:])
            num_classes = int(max(np.max(data[0][1]), np.max(data[1][1]))) + 1
        template = resolve_template(self.template)
        build = functools.partial(
            template, input_shape=input_shape, num_classes=num_classes, **self.template_options
        )
        prune = self.pruner.get("name", "none") != "none"
        return make_objective(
            lambda act: build(act),
            data,
            space=self.space,
            budget=self.budget,
            metric=self.metric,
            objectives=self.extra,
            prune=prune,
        )


def _shape_and_classes(splits):
    import numpy as np

    num_classes = int(max(np.max(y) for _, y in splits.values())) + 1
    return tuple(np.asarray(splits["train"][0]).shape[1:]), num_classes


def _int(value, source, key, lo=1, hi=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi:,}]"
        raise SpecError(source, key, f"must be an integer {rng}, got {value!r}")
    return value


def _str(value, source, key):
    if not isinstance(value, str) or not value:
        raise SpecError(source, key, f"must be a non-empty string, got {value!r}")
    return value


def _check(table, allowed, source, section):
    if not isinstance(table, dict):
        raise SpecError(source, section, f"must be a table, got {type(table).__name__}")
    for k in table:
        if allowed is not None and k not in allowed:
            raise SpecError(
                source, f"{section}.{k}", f"unknown key; legal keys: {', '.join(sorted(allowed))}"
            )


def parse_spec(raw, source="<spec>"):
    """Validate a specification given as a dict (parsed TOML); returns a `SearchSpec`."""
    if not isinstance(raw, dict):
        raise SpecError(source, "<top>", "a specification must be a TOML table")
    if "evolution" in raw:
        raise SpecError(
            source, "evolution", "this is an EvoTorch evolution spec; run it with `bioact evolve`"
        )
    for k in raw:
        if k not in _SECTIONS:
            raise SpecError(source, k, f"unknown section; legal sections: {', '.join(_SECTIONS)}")
        _check(raw[k], _SECTIONS[k], source, k)
    if "study" not in raw or "name" not in raw["study"]:
        raise SpecError(source, "study.name", "is required")
    st = raw["study"]
    name = _str(st["name"], source, "study.name")
    if not _NAME.match(name):
        raise SpecError(source, "study.name", f"use letters, digits, '_', '-', '.' only, got {name!r}")
    storage = _str(st.get("storage", default_storage(name)), source, "study.storage")
    n_trials = _int(st.get("n_trials", 20), source, "study.n_trials", 1, MAX_TRIALS)
    workers = _int(st.get("workers", 1), source, "study.workers", 1, 64)
    timeout = st.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise SpecError(source, "study.timeout", f"must be a number of seconds > 0, got {timeout!r}")

    data = dict(raw.get("data", {"name": "digits"}))
    dname = _str(data.get("name", "digits"), source, "data.name")
    if dname not in ("digits", "fashion_mnist", "fashion-mnist") and not dname.startswith("idx:"):
        raise SpecError(
            source, "data.name", f"unknown data set {dname!r}; use digits, fashion_mnist or idx:DIR"
        )
    data["name"] = dname
    for k in ("max_train", "max_val", "max_test"):
        if k in data:
            _int(data[k], source, f"data.{k}")
    if "validation_fraction" in data:
        vf = data["validation_fraction"]
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 < vf < 1:
            raise SpecError(source, "data.validation_fraction", f"must be in (0, 1), got {vf!r}")
    if "test_fraction" in data:
        tf = data["test_fraction"]
        if dname != "digits":
            raise SpecError(source, "data.test_fraction", "only applies to the digits data set")
        if isinstance(tf, bool) or not isinstance(tf, (int, float)) or not 0 < tf < 1:
            raise SpecError(source, "data.test_fraction", f"must be in (0, 1), got {tf!r}")
    if "seed" in data:
        _int(data["seed"], source, "data.seed", lo=0)
    if "path" in data:
        if dname not in ("fashion_mnist", "fashion-mnist"):
            raise SpecError(source, "data.path", "only applies to fashion_mnist")
        _check_idx_dir(_str(data["path"], source, "data.path"), source, "data.path")
    if dname.startswith("idx:"):
        _check_idx_dir(dname[4:], source, "data.name")

    model = dict(raw.get("model", {}))
    template = _str(model.pop("template", "mlp"), source, "model.template")
    try:
        fn = resolve_template(template)
    except ValueError as e:
        raise SpecError(source, "model.template", str(e)) from None
    allowed = template_options(fn)
    if allowed is not None:
        for k in model:
            if k not in allowed:
                raise SpecError(
                    source,
                    f"model.{k}",
                    f"unknown option of template {template!r}; legal: {', '.join(allowed) or '(none)'}",
                )
    for k in ("hidden", "filters", "dense"):
        if k in model:
            v = model[k]
            if (
                not isinstance(v, list)
                or not v
                or not all(isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in v)
            ):
                if not (k == "dense" and v == []):
                    raise SpecError(source, f"model.{k}", f"must be a list of integers >= 1, got {v!r}")
    if "dropout" in model and (
        isinstance(model["dropout"], bool)
        or not isinstance(model["dropout"], (int, float))
        or not 0 <= model["dropout"] < 1
    ):
        raise SpecError(source, "model.dropout", f"must be in [0, 1), got {model['dropout']!r}")

    b = dict(raw.get("budget", {}))
    budget = Budget(**b)
    try:
        budget.validate("budget")
    except space_lib.SpaceError as e:
        raise SpecError(source, e.key, str(e).split(": ", 1)[1]) from None

    obj = raw.get("objective", {})
    metric = _str(obj.get("metric", "val_accuracy"), source, "objective.metric")
    if metric not in METRICS:
        raise SpecError(
            source,
            "objective.metric",
            f"{metric!r} is not logged by the search's models; legal: {', '.join(METRICS)}",
        )
    direction = obj.get("direction", direction_of(metric))
    if direction not in ("maximize", "minimize"):
        raise SpecError(source, "objective.direction", f"must be 'maximize' or 'minimize', got {direction!r}")
    extra = obj.get("extra", [])
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, list):
        raise SpecError(source, "objective.extra", f"must be a list, got {extra!r}")
    for e in extra:
        if e not in OBJECTIVES:
            raise SpecError(
                source, "objective.extra", f"unknown objective {e!r}; legal: {', '.join(OBJECTIVES)}"
            )

    sampler = dict(raw.get("sampler", {}))
    sampler.setdefault("name", "nsga2" if extra else "tpe")
    if sampler["name"] not in SAMPLERS:
        raise SpecError(
            source, "sampler.name", f"unknown sampler {sampler['name']!r}; legal: {', '.join(SAMPLERS)}"
        )
    if sampler["name"] == "cmaes" and extra:
        raise SpecError(
            source, "sampler.name", "cmaes is single-objective; use nsga2 or tpe with objective.extra"
        )
    if "seed" in sampler:
        _int(sampler["seed"], source, "sampler.seed", lo=0)
    if "n_startup_trials" in sampler:
        if sampler["name"] not in ("tpe", "cmaes"):
            raise SpecError(source, "sampler.n_startup_trials", "only applies to tpe and cmaes")
        _int(sampler["n_startup_trials"], source, "sampler.n_startup_trials", lo=0)
    if "population_size" in sampler:
        if sampler["name"] not in ("nsga2", "cmaes"):
            raise SpecError(source, "sampler.population_size", "only applies to nsga2 and cmaes")
        _int(sampler["population_size"], source, "sampler.population_size", lo=2)
    if "n_startup_trials" in sampler and sampler["name"] == "cmaes":
        sampler["n_startup_trials"] = sampler["n_startup_trials"]

    pruner = dict(raw.get("pruner", {}))
    pruner.setdefault("name", "none" if extra else "median")
    if pruner["name"] not in PRUNERS:
        raise SpecError(
            source, "pruner.name", f"unknown pruner {pruner['name']!r}; legal: {', '.join(PRUNERS)}"
        )
    if extra and pruner["name"] != "none":
        raise SpecError(
            source, "pruner.name", "pruning is single-objective only; use 'none' with objective.extra"
        )
    legal = {
        "median": {"n_startup_trials", "n_warmup_steps"},
        "hyperband": {"min_resource", "reduction_factor"},
        "none": set(),
    }[pruner["name"]]
    for k in pruner:
        if k != "name":
            if k not in legal:
                raise SpecError(source, f"pruner.{k}", f"does not apply to the {pruner['name']} pruner")
            _int(pruner[k], source, f"pruner.{k}", lo=0 if k != "reduction_factor" else 2)

    try:
        space = space_lib.SearchSpace.from_dict(raw.get("space", {}))
    except space_lib.SpaceError as e:
        raise SpecError(source, e.key, str(e).split(": ", 1)[1]) from None
    if template == "cnn" and "two_arg" in space.families and not _has_two_arg_conv():
        raise SpecError(
            source, "space.families", "two_arg with the cnn template needs keras_bioact.layers.TwoArgConv2D"
        )

    return SearchSpec(
        study_name=name,
        storage=storage,
        n_trials=n_trials,
        timeout=timeout,
        workers=workers,
        data=data,
        template=template,
        template_options=model,
        budget=budget,
        metric=metric,
        direction=direction,
        extra=tuple(extra),
        sampler=sampler,
        pruner=pruner,
        space=space,
        source=str(source),
        raw=raw,
    )


def _check_idx_dir(directory, source, key):
    """An MNIST-format directory with its four files, checked before anything is created."""
    from keras_bioact.datasets import _IDX_NAMES, _find

    path = pathlib.Path(directory)
    if not path.is_dir():
        raise SpecError(source, key, f"{directory!r} is not a directory of IDX files")
    missing = [names[0] for k, names in _IDX_NAMES.items() if _find(path, k) is None]
    if missing:
        raise SpecError(source, key, f"{directory!r} lacks {', '.join(missing)} (optionally .gz)")


def _has_two_arg_conv():
    try:
        from keras_bioact.layers import TwoArgConv2D  # noqa: F401
    except ImportError:
        return False
    return True


def load_spec(path):
    """Read and validate a TOML specification file; raises `SpecError` (naming the file and
    the key) on any problem."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = pathlib.Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise SpecError(str(path), "<file>", f"cannot read the specification ({e.strerror})") from None
    try:
        raw = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(str(path), "<toml>", f"not valid TOML: {e}") from None
    return parse_spec(raw, source=str(path))
