"""TOML spec files for `bioact evolve` (see `search/evolve_*.toml`).

A spec has four tables; every key is optional unless marked:

```toml
[data]
name = "digits"              # keras_bioact.datasets.load(name): "digits" | "fashion_mnist"
validation_fraction = 0.25   # part of the training split on which fitness is measured
seed = 0                     # seed of that split
limit = 0                    # keep only the first `limit` training images (0: all)

[model]
path = ""                    # a saved .keras model to evolve, or else a built-in MLP:
activation = "gamma"         # "gamma" | "bru" | "twoarg"
hidden = [32]                # hidden widths
activation_options = {}      # keyword arguments of GammaActivation / BRU / TwoArgDense
                             # (shared_axes = "none" stands for None: one parameter per neuron)
inner_hidden = [16, 16]      # twoarg: hidden widths of the shared inner MLP g
pretrain_epochs = 20         # gradient training of the outer weights before evolving, with
pretrain_learning_rate = 0.003   # the evolved activation parameters held fixed
pretrain_batch_size = 64
seed = 0

[evolution]                  # keyword arguments of keras_bioact.search.evolution.evolve
target = "gamma"             # "gamma" | "bru" | "inner" | "all"
algorithm = "snes"           # "snes" | "xnes" | "cmaes" | "pgpe" | "ga" | "cosyne"
popsize = 32
generations = 30
metric = "accuracy"          # "accuracy" | "crossentropy" | "mse"
mode = "frozen"              # "frozen" | "baldwinian" | "lamarckian"
...

[output]
dir = "runs/evolve"          # checkpoint, history.csv, tensorboard/, best_parameters.npz,
                             # best.json, start_model.keras, best_model.keras
```

`load_spec` checks every table and key up front and raises `SpecError` (a `ValueError`)
naming the file and the key.
"""

import os

__all__ = ["SpecError", "load_spec", "DEFAULTS"]


class SpecError(ValueError):
    """A spec file is malformed; the message names the file and the key."""


DEFAULTS = {
    "data": {"name": "digits", "validation_fraction": 0.25, "seed": 0, "limit": 0},
    "model": {
        "path": "",
        "activation": "gamma",
        "hidden": [32],
        "activation_options": {},
        "inner_hidden": [16, 16],
        "pretrain_epochs": 20,
        "pretrain_learning_rate": 0.003,
        "pretrain_batch_size": 64,
        "seed": 0,
    },
    "evolution": {
        "target": "all",
        "layers": None,
        "granularity": "element",
        "algorithm": "snes",
        "popsize": 32,
        "generations": 30,
        "metric": "accuracy",
        "from_logits": None,
        "mode": "frozen",
        "train_epochs": 1,
        "train_batch_size": 32,
        "learning_rate": 0.05,
        "stdev_init": 0.5,
        "algorithm_options": {},
        "seed": 0,
        "num_actors": 0,
        "vectorized": "auto",
        "eval_batch_size": None,
        "population_chunk": None,
        "memory_budget": None,
    },
    "output": {"dir": "runs/evolve", "tensorboard": True},
}

_NUMBER = (int, float)
_TYPES = {
    ("data", "name"): str,
    ("data", "validation_fraction"): _NUMBER,
    ("data", "seed"): int,
    ("data", "limit"): int,
    ("model", "path"): str,
    ("model", "activation"): str,
    ("model", "hidden"): list,
    ("model", "activation_options"): dict,
    ("model", "inner_hidden"): list,
    ("model", "pretrain_epochs"): int,
    ("model", "pretrain_learning_rate"): _NUMBER,
    ("model", "pretrain_batch_size"): int,
    ("model", "seed"): int,
    ("evolution", "target"): str,
    ("evolution", "layers"): list,
    ("evolution", "granularity"): str,
    ("evolution", "algorithm"): str,
    ("evolution", "popsize"): int,
    ("evolution", "generations"): int,
    ("evolution", "metric"): str,
    ("evolution", "from_logits"): bool,
    ("evolution", "mode"): str,
    ("evolution", "train_epochs"): int,
    ("evolution", "train_batch_size"): int,
    ("evolution", "learning_rate"): _NUMBER,
    ("evolution", "stdev_init"): _NUMBER,
    ("evolution", "algorithm_options"): dict,
    ("evolution", "seed"): int,
    ("evolution", "num_actors"): int,
    ("evolution", "vectorized"): (bool, str),
    ("evolution", "eval_batch_size"): int,
    ("evolution", "population_chunk"): int,
    ("evolution", "memory_budget"): int,
    ("output", "dir"): str,
    ("output", "tensorboard"): bool,
}
_CHOICES = {
    ("model", "activation"): ("gamma", "bru", "twoarg"),
    ("evolution", "target"): ("all", "gamma", "bru", "inner"),
    ("evolution", "granularity"): ("element", "parameter"),
    ("evolution", "algorithm"): ("snes", "xnes", "cmaes", "pgpe", "ga", "cosyne"),
    ("evolution", "metric"): ("accuracy", "crossentropy", "mse"),
    ("evolution", "mode"): ("frozen", "baldwinian", "lamarckian"),
    ("evolution", "vectorized"): (True, False, "auto"),
}
_POSITIVE = {
    ("evolution", "popsize"): 2,
    ("evolution", "generations"): 1,
    ("evolution", "num_actors"): 0,
    ("evolution", "train_epochs"): 1,
    ("evolution", "train_batch_size"): 1,
    ("evolution", "eval_batch_size"): 1,
    ("evolution", "population_chunk"): 1,
    ("evolution", "memory_budget"): 1,
    ("model", "pretrain_epochs"): 0,
    ("model", "pretrain_batch_size"): 1,
    ("data", "limit"): 0,
}


def _read_toml(path):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as error:
            raise SpecError(f"{path}: reading TOML on Python 3.10 needs `pip install tomli`.") from error
    if not os.path.isfile(path):
        raise SpecError(f"{path}: spec file not found.")
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as error:
            raise SpecError(f"{path}: not valid TOML: {error}") from error


def load_spec(path):
    """Read and validate a spec; returns `{table: {key: value}}` with defaults filled in."""
    raw = _read_toml(path)
    unknown = [t for t in raw if t not in DEFAULTS]
    if unknown:
        raise SpecError(f"{path}: unknown table(s) {unknown}; expected {list(DEFAULTS)}.")
    spec = {}
    for table, defaults in DEFAULTS.items():
        given = raw.get(table, {})
        if not isinstance(given, dict):
            raise SpecError(f"{path}: [{table}] must be a table.")
        bad = [k for k in given if k not in defaults]
        if bad:
            raise SpecError(
                f"{path}: unknown key(s) {bad} in [{table}]; expected some of {sorted(defaults)}."
            )
        spec[table] = {**{k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}, **given}
        for key, value in given.items():
            _check(path, table, key, value)
    fraction = spec["data"]["validation_fraction"]
    if not 0.0 < float(fraction) < 1.0:
        raise SpecError(f"{path}: [data] validation_fraction must be in (0, 1), got {fraction}.")
    if not float(spec["evolution"]["stdev_init"]) > 0:
        raise SpecError(f"{path}: [evolution] stdev_init must be > 0, got {spec['evolution']['stdev_init']}.")
    if spec["evolution"]["mode"] == "lamarckian" and spec["evolution"]["num_actors"]:
        raise SpecError(f"{path}: [evolution] mode = 'lamarckian' cannot use num_actors > 0.")
    _check_sources(path, spec)
    _check_options(path, spec)
    spec["_path"] = os.path.abspath(path)
    return spec


# Upper bounds of budgets nobody means (a typo such as 1e12 would run until killed).
_MAXIMA = {
    ("evolution", "generations"): 1_000_000,
    ("evolution", "popsize"): 1_000_000,
    ("evolution", "train_epochs"): 100_000,
    ("evolution", "train_batch_size"): 1 << 20,
    ("evolution", "eval_batch_size"): 1 << 20,
    ("evolution", "num_actors"): 1024,
    ("model", "pretrain_epochs"): 100_000,
    ("model", "pretrain_batch_size"): 1 << 20,
}


def _check_sources(path, spec):
    """The data set and the model file exist and are what they claim, before anything runs."""
    import zipfile

    name = spec["data"]["name"]
    if name not in ("digits", "fashion_mnist", "fashion-mnist") and not name.startswith("idx:"):
        raise SpecError(f"{path}: [data] name must be digits, fashion_mnist or idx:DIR, got {name!r}.")
    if name.startswith("idx:"):
        from keras_bioact.datasets import _IDX_NAMES, _find

        directory = name[4:]
        if not os.path.isdir(directory):
            raise SpecError(f"{path}: [data] name: {directory!r} is not a directory of IDX files.")
        missing = [
            n[0] for k, n in _IDX_NAMES.items() if _find(__import__("pathlib").Path(directory), k) is None
        ]
        if missing:
            raise SpecError(
                f"{path}: [data] name: {directory!r} lacks {', '.join(missing)} (optionally .gz)."
            )
    model_path = spec["model"]["path"]
    if model_path:
        try:
            with zipfile.ZipFile(model_path) as z:
                is_keras = "config.json" in z.namelist()
        except (OSError, zipfile.BadZipFile):
            is_keras = False
        if not is_keras:
            raise SpecError(
                f"{path}: [model] path: {model_path!r} is not a readable .keras model file "
                "(a zip archive with config.json, as written by model.save)."
            )


def _check_options(path, spec):
    """`activation_options` and `algorithm_options` are tried on the real classes (no training)."""
    model = spec["model"]
    options = dict(model["activation_options"])
    if options.get("shared_axes") == "none":
        options["shared_axes"] = None
    if not model["path"] and options:
        from keras_bioact import layers as bl

        cls = {"gamma": bl.GammaActivation, "bru": bl.BRU, "twoarg": getattr(bl, "TwoArgDense", None)}
        cls = cls[model["activation"]]
        try:
            if model["activation"] == "twoarg":
                cls(4, **options)
            else:
                cls(**options)
        except (TypeError, ValueError) as error:
            raise SpecError(f"{path}: [model] activation_options: {error}") from None
    ev = spec["evolution"]
    for (table, key), hi in _MAXIMA.items():
        value = spec[table][key]
        if value is not None and value > hi:
            raise SpecError(f"{path}: [{table}] {key} must be <= {hi:,}, got {value!r}.")
    if ev["algorithm_options"]:
        import torch
        from evotorch import Problem

        from keras_bioact.search.evolution import _make_searcher

        problem = Problem(
            "max", lambda x: x.sum(), solution_length=2, initial_bounds=(-1, 1), dtype=torch.float32
        )
        try:
            _make_searcher(
                ev["algorithm"],
                problem,
                int(ev["popsize"]),
                float(ev["stdev_init"]),
                [0.0, 0.0],
                ev["algorithm_options"],
            )
        except (TypeError, ValueError) as error:
            raise SpecError(
                f"{path}: [evolution] algorithm_options for {ev['algorithm']!r}: {error}"
            ) from None


def _check(path, table, key, value):
    where = f"{path}: [{table}] {key}"
    expected = _TYPES[(table, key)]
    ok = isinstance(value, expected)
    if expected is int or expected == _NUMBER:
        ok = ok and not isinstance(value, bool)
    if not ok:
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise SpecError(f"{where} must be {names}, got {value!r}.")
    choices = _CHOICES.get((table, key))
    if choices is not None and value not in choices:
        raise SpecError(f"{where} must be one of {choices}, got {value!r}.")
    low = _POSITIVE.get((table, key))
    if low is not None and value < low:
        raise SpecError(f"{where} must be >= {low}, got {value!r}.")
    if key in ("hidden", "inner_hidden") and (
        not value or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in value)
    ):
        raise SpecError(f"{where} must be a non-empty list of positive integers, got {value!r}.")


# --------------------------------------------------------------------------------------------
# Running a spec


def load_data(spec):
    """`(train, val, test)` pairs for a spec's [data] table."""
    import numpy as np

    from keras_bioact import datasets

    data = spec["data"]
    (x_train, y_train), test = datasets.load(data["name"])
    if data["limit"]:
        x_train, y_train = x_train[: data["limit"]], y_train[: data["limit"]]
    rng = np.random.default_rng(data["seed"])
    order = rng.permutation(len(x_train))
    n_val = max(1, int(round(float(data["validation_fraction"]) * len(x_train))))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return (x_train[train_idx], y_train[train_idx]), (x_train[val_idx], y_train[val_idx]), test


def build_model(model_spec, input_shape, n_classes):
    """The built-in MLP of a spec: Flatten -> [hidden unit layers] -> Dense(n_classes) logits."""
    import keras

    from keras_bioact import layers as bl

    keras.utils.set_random_seed(model_spec["seed"])
    activation = model_spec["activation"]
    options = dict(model_spec["activation_options"])
    if options.get("shared_axes") == "none":  # TOML has no null: "none" = one parameter per neuron
        options["shared_axes"] = None
    inputs = keras.Input(tuple(input_shape))
    h = keras.layers.Flatten()(inputs)
    inner = None
    if activation == "twoarg":
        if not hasattr(bl, "TwoArgDense"):
            raise SpecError(
                "[model] activation = 'twoarg' needs the two-argument layers "
                "(keras_bioact.layers.TwoArgDense, InnerNonlinearity), which this installation lacks."
            )
        inner = bl.InnerNonlinearity(hidden_units=tuple(model_spec["inner_hidden"]), name="inner_g")
    for i, width in enumerate(model_spec["hidden"]):
        if activation == "twoarg":
            h = bl.TwoArgDense(width, inner=inner, name=f"twoarg_{i}", **options)(h)
            continue
        h = keras.layers.Dense(width, name=f"dense_{i}")(h)
        layer = bl.GammaActivation if activation == "gamma" else bl.BRU
        try:
            h = layer(name=f"{activation}_{i}", **options)(h)
        except TypeError as error:
            raise SpecError(f"[model] activation_options: {error}") from error
    outputs = keras.layers.Dense(n_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=f"mlp_{activation}")


def pretrain(model, train, val, model_spec, evolution_spec, progress=False):
    """Train the outer weights once by gradient, the evolved activation parameters held fixed."""
    import keras

    from keras_bioact.search.evolution import select_parameters

    if model_spec["pretrain_epochs"] <= 0:
        return
    held = select_parameters(model, evolution_spec["target"], evolution_spec["layers"])
    flags = [p.variable.trainable for p in held]
    for p in held:
        p.variable.trainable = False
    try:
        model.compile(
            optimizer=keras.optimizers.Adam(model_spec["pretrain_learning_rate"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(
            train[0],
            train[1],
            validation_data=val,
            epochs=model_spec["pretrain_epochs"],
            batch_size=model_spec["pretrain_batch_size"],
            verbose=2 if progress else 0,
        )
    finally:
        for p, flag in zip(held, flags, strict=True):
            p.variable.trainable = flag


def accuracy(model, x, y, batch_size=512):
    import numpy as np
    from keras import ops

    logits = ops.convert_to_numpy(model.predict(x, batch_size=batch_size, verbose=0))
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def run_spec(spec, resume=False, progress=True, stop_after=None, log=print, overwrite=False):
    """Run a validated spec end to end; returns `(EvolutionResult, summary dict)`.

    `resume` continues the checkpoint in the output directory (an error if there is none);
    without `resume` or `overwrite`, an existing checkpoint is an error. Both are checked, and
    the checkpoint is read and verified, before any data is loaded or any model is trained.
    """
    import json

    import keras

    from keras_bioact.search.checkpoint import atomic_write as _atomic_write
    from keras_bioact.search.evolution import CHECKPOINT_NAME, _open_checkpoint, evolve

    out_dir = spec["output"]["dir"]
    if not os.path.isabs(out_dir):
        out_dir = os.path.abspath(out_dir)
    _open_checkpoint(out_dir, os.path.join(out_dir, CHECKPOINT_NAME), resume, overwrite)
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, ".write-test")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise SpecError(
            f"{spec['_path']}: output.dir: cannot write to {out_dir!r}: {e.strerror or e}"
        ) from None
    train, val, test = load_data(spec)
    start_path = os.path.join(out_dir, "start_model.keras")
    if spec["model"]["path"]:
        model = keras.saving.load_model(spec["model"]["path"], compile=False, safe_mode=True)
    elif resume and os.path.exists(start_path):
        model = keras.saving.load_model(start_path, compile=False, safe_mode=True)
    else:
        n_classes = int(max(train[1].max(), test[1].max())) + 1
        model = build_model(spec["model"], train[0].shape[1:], n_classes)
        pretrain(model, train, val, spec["model"], spec["evolution"], progress=progress)
        tmp = start_path + ".tmp.keras"
        model.save(tmp)
        os.replace(tmp, start_path)
    start_acc = accuracy(model, test[0], test[1])
    ev = dict(spec["evolution"])
    result = evolve(
        model,
        val,
        train_data=train if ev["mode"] != "frozen" else None,
        out_dir=out_dir,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        tensorboard=spec["output"]["tensorboard"],
        stop_after=stop_after,
        **ev,
    )
    summary = {
        "spec": spec["_path"],
        "out_dir": out_dir,
        "generations": len(result.history),
        "best_val_fitness": result.best_fitness,
        "start_test_accuracy": start_acc,
    }
    if len(result.history) >= ev["generations"]:
        summary["best_test_accuracy"] = accuracy(model, test[0], test[1])
        model.save(os.path.join(out_dir, "best_model.keras"))
        _atomic_write(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2).encode())
    log(json.dumps(summary, indent=2))
    return result, summary
