"""The one schema of search specifications, for both engines.

A specification is a TOML file with shared tables (`[data]`, `[model]`, `[budget]`,
`[output]`), the Optuna search space `[space]`, and exactly one engine table: `[optuna]`
(an Optuna study), `[evolution]` (an EvoTorch evolution strategy) or `[mixture]` (the
gradient-trained mixture cell per layer, `keras_bioact.search.mixture`). This module declares every
key once (type, default, legal range, meaning); `keras_bioact.search.spec.reader` checks a spec
against it, and `docs/specs.md` is generated from it (`python -m keras_bioact.search.spec`).

Nothing here imports Keras, Optuna, EvoTorch or a backend: a spec is checked in well under a
second, before anything is imported or trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ENGINES", "LEGACY", "TABLES", "Key", "bad_value", "check_value", "markdown"]

ENGINES = ("optuna", "evolution", "mixture")


@dataclass(frozen=True)
class Key:
    """One key of a table: `kind` is one of int, number, str, bool, list[int], table, choice."""

    kind: str
    default: object
    doc: str
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False
    choices: tuple | None = None
    engine: str | None = None  # only meaningful with this engine

    def describe_range(self):
        if self.choices is not None:
            return ", ".join(_show(c) for c in self.choices)
        if self.lo is None and self.hi is None:
            return ""
        left = "(" if self.open_lo else "["
        right = ")" if self.open_hi or self.hi is None else "]"
        lo = "-inf" if self.lo is None else _show(self.lo)
        hi = "inf" if self.hi is None else _show(self.hi)
        return f"{left}{lo}, {hi}{right}"


def _show(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1e4:
        return f"{int(v):,}"
    if isinstance(v, int) and abs(v) >= 1e4:
        return f"{v:,}"
    return repr(v)


BIG = 1 << 20
MAX_VERDICT_SEEDS = 1000
SEED_MAX = 2**32 - 1  # every seed: NumPy's legacy generator (Keras, Optuna) takes no more
MAX_DEPTH = 16  # tables and lists nested deeper than this are refused (no key needs more than 4)
MAX_SPEC_BYTES = 1 << 20  # the largest spec file read
ALGORITHMS = ("snes", "xnes", "cmaes", "pgpe", "ga", "cosyne")
SAMPLERS = ("tpe", "cmaes", "random", "nsga2")
PRUNERS = ("median", "hyperband", "wilcoxon", "none")
BASELINES = ("relu", "gelu", "swish")  # the default tuned baselines of a study
STARTS = ("init", "model")
OPTUNA_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")

TABLES = {
    "data": {
        "name": Key(
            "str",
            "digits",
            "data set: `digits` (scikit-learn 8x8), `fashion_mnist` (Debian's "
            "dataset-fashion-mnist) or `idx:DIR` (a directory of MNIST-format IDX files)",
        ),
        "path": Key("str", None, "fashion_mnist only: the directory of its IDX files"),
        "validation_fraction": Key(
            "number",
            0.2,
            "part of the training split held out for validation (what the search optimises)",
            0,
            1,
            True,
            True,
        ),
        "seed": Key("int", 0, "seed of the train/validation split (and of digits' test split)", 0, SEED_MAX),
        "test_fraction": Key(
            "number", 0.25, "digits only: part of the data set kept as the test split", 0, 1, True, True
        ),
        "max_train": Key("int", None, "use at most this many training samples", 1),
        "max_val": Key("int", None, "use at most this many validation samples", 1),
        "max_test": Key("int", None, "use at most this many test samples", 1),
        "folds": Key(
            "int",
            None,
            "optuna: score each trial by k-fold cross-validation on the training split (the "
            "mean over folds) instead of on the validation split; not with `budget.repeats`",
            2,
            1000,
        ),
    },
    "model": {
        "template": Key(
            "str",
            "mlp",
            "a registered model template: `mlp`, `cnn`, or one added with "
            "`keras_bioact.search.register_template` (a spec never imports code)",
        ),
        "path": Key(
            "str",
            None,
            "a saved `.keras` model to search instead of a template (read with "
            "`safe_mode=True`); optuna converts its activations with `keras_bioact.convert`",
        ),
        "hidden": Key("list[int]", [64, 64], "mlp: widths of the hidden layers", 1),
        "dropout": Key("number", 0.0, "mlp, cnn, transformer: dropout rate", 0, 1, False, True),
        "filters": Key("list[int]", [16, 32], "cnn: channels of the conv blocks", 1),
        "kernel_size": Key("int", 3, "cnn: kernel size", 1, 64),
        "dense": Key("list[int]", [64], "cnn: widths of the hidden Dense blocks after the convs", 1),
        "patch": Key("int", 2, "transformer: patch side (divides the image's height and width)", 1, 1024),
        "blocks": Key("int", 2, "transformer: number of blocks", 1, 64),
        "width": Key("int", 32, "transformer: token width (divisible by `heads`)", 1, 8192),
        "heads": Key("int", 2, "transformer: attention heads", 1, 256),
        "mlp_ratio": Key(
            "number",
            2,
            "transformer: plain feed-forward hidden width / `width` (the parameter budget)",
            0,
            64,
            True,
        ),
        "feed_forward": Key(
            "choice",
            "activation",
            "transformer: the feed-forward block: the searched family's (`two_arg`: TwoArgFeedForward), "
            "or a GLU baseline",
            choices=("activation", "reglu", "geglu", "swiglu"),
        ),
    },
    "budget": {
        "epochs": Key(
            "int",
            5,
            "optuna: epochs of each trial; evolution: epochs of gradient training "
            "of the outer weights before evolving (0: none)",
            0,
            100_000,
        ),
        "batch_size": Key("int", 64, "batch size of that training", 1, BIG),
        "learning_rate": Key("number", 1e-3, "Adam learning rate of that training", 0, 10, True),
        "seed": Key(
            "int", 0, "model seed; optuna trial `k` trains with `seed + k` (modulo 2**32)", 0, SEED_MAX
        ),
        "jit_compile": Key("choice", "auto", "passed to `model.compile`", choices=("auto", True, False)),
        "verdict_seeds": Key(
            "int",
            5,
            "the verdict: when the search ends, the best activation and the best baseline are each "
            "retrained with this many fresh seeds (`seed + 1000000 + i`) and scored once on the test "
            "split; 0 turns the verdict off (no retraining, no test score); 1 is refused (no interval)",
            0,
            MAX_VERDICT_SEEDS,
        ),
        "repeats": Key(
            "int",
            1,
            "optuna: train each trial this many times (repeat `j` of trial `k`: seed `seed + k + "
            "100003 j`, modulo 2**32); its value is the mean, the per-seed values are the trial's "
            "`scores`; evolution: not used",
            1,
            1000,
        ),
    },
    "output": {
        "dir": Key(
            "str",
            None,
            "optuna: export trials.csv/json, plots and HParams logs here at the end "
            "(none: no export); evolution: checkpoint, history.csv, TensorBoard logs and the "
            "best model (default `runs/<spec file name>`)",
        ),
        "tensorboard": Key("bool", True, "evolution: write TensorBoard scalars and histograms"),
    },
    "optuna": {
        "study": Key("str", None, "study name (letters, digits, `_-.`; default: the spec file name)"),
        "storage": Key(
            "str",
            None,
            "Optuna storage URL (default `sqlite:///<study>.db` in the working "
            "directory); PostgreSQL/MySQL URLs let several machines share the study",
        ),
        "n_trials": Key("int", 20, "finished trials wanted, over all workers and re-runs", 1, 1_000_000),
        "timeout": Key("number", None, "stop starting trials after this many seconds", 0, None, True),
        "workers": Key("int", 1, "worker processes on this machine", 1, 64),
        "batch": Key(
            "int",
            None,
            "trials asked and trained together as one vectorised population (JAX, PyTorch); "
            "at most `n_trials`; default 8 (at most `n_trials`) on JAX and PyTorch, 1 on "
            "TensorFlow, which trains them one by one",
            1,
            1024,
        ),
        "metric": Key(
            "choice",
            "val_accuracy",
            "the Keras log key optimised (after the last epoch)",
            choices=OPTUNA_METRICS,
        ),
        "direction": Key(
            "choice",
            None,
            "default: inferred from the metric (losses minimise)",
            choices=("maximize", "minimize"),
        ),
        "extra": Key(
            "list[str]",
            [],
            "further objectives of a multi-objective study: `params`, `fit_time`, `step_time`",
        ),
        "sampler": Key("table", {"name": "tpe"}, "see [optuna.sampler]"),
        "pruner": Key("table", {"name": "median"}, "see [optuna.pruner]"),
    },
    "optuna.sampler": {
        "name": Key("choice", "tpe", "Optuna sampler (default nsga2 with `extra`)", choices=SAMPLERS),
        "seed": Key("int", None, "sampler seed (worker `i` uses `seed + i`, modulo 2**32)", 0, SEED_MAX),
        "n_startup_trials": Key("int", None, "tpe, cmaes: random trials before modelling", 0),
        "population_size": Key("int", None, "nsga2, cmaes: population size", 2),
    },
    "optuna.pruner": {
        "name": Key(
            "choice",
            "median",
            "Optuna pruner (default `wilcoxon` with `budget.repeats` > 1 or `data.folds`, `none` "
            "with `extra`); with repeats or folds every pruner sees one step per seed or fold",
            choices=PRUNERS,
        ),
        "n_startup_trials": Key("int", None, "median: trials before pruning starts", 0),
        "n_warmup_steps": Key("int", None, "median: epochs before a trial can be pruned", 0),
        "min_resource": Key("int", None, "hyperband: minimum epochs", 0),
        "reduction_factor": Key("int", None, "hyperband: reduction factor", 2),
        "p_threshold": Key("number", None, "wilcoxon: prune below this p-value (Optuna's default 0.1)", 0, 1),
        "n_startup_steps": Key(
            "int", None, "wilcoxon: seeds or folds before a trial can be pruned (Optuna's default 2)", 0
        ),
    },
    "evolution": {
        "target": Key(
            "str",
            "all",
            "parameters evolved: `all`, `inner` (the shared g of two-argument "
            "units) or a family's parameters (`gamma`, `bru`, ...); `expression`: the "
            "composed expressions of `[space.composed]` (genetic algorithm, each candidate trained)",
        ),
        "activation": Key(
            "table",
            None,
            "templates only: the activation the model is built with, e.g. "
            '`{family = "gamma", regime = "heterogeneous", init = "paper"}` (default: '
            "the target's family)",
        ),
        "layers": Key("list[str]", None, "evolve only these layers (names)"),
        "granularity": Key(
            "choice",
            "element",
            "one gene per neuron (`element`) or per parameter array (`parameter`)",
            choices=("element", "parameter"),
        ),
        "start": Key(
            "choice",
            "init",
            "the centre of the search distribution: `init` (the start network's activation "
            "parameters as built: the template's `evolution.activation`, or a saved model as "
            "saved) or `model` (needs `model.path`: the saved model's parameters; plain Keras "
            "activations are first converted to the target's family with `keras_bioact.convert`, "
            "imitating the trained ones)",
            choices=STARTS,
        ),
        "baselines": Key(
            "list[str]",
            list(BASELINES),
            "baseline families trained once each under `[budget]` like the start network (same "
            "template and seed) and scored on the validation split (`[]`: none; templates only, "
            "default none with `model.path`)",
        ),
        "algorithm": Key("choice", "snes", "EvoTorch algorithm", choices=ALGORITHMS),
        "algorithm_options": Key("table", {}, "keyword arguments of the EvoTorch algorithm"),
        "popsize": Key("int", 32, "population size", 2, 1_000_000),
        "generations": Key("int", 30, "generations", 1, 1_000_000),
        "metric": Key(
            "choice",
            "accuracy",
            "fitness on the validation split",
            choices=("accuracy", "crossentropy", "mse"),
        ),
        "from_logits": Key("bool", None, "crossentropy: default true unless the model ends in softmax"),
        "mode": Key(
            "choice",
            "frozen",
            "`frozen` (outer weights fixed), `baldwinian` (each candidate "
            "learns briefly, learning discarded) or `lamarckian` (learning kept)",
            choices=("frozen", "baldwinian", "lamarckian"),
        ),
        "train_epochs": Key(
            "int", 1, "baldwinian/lamarckian: epochs of each candidate's learning", 1, 100_000
        ),
        "train_batch_size": Key("int", 32, "baldwinian/lamarckian: batch size", 1, BIG),
        "learning_rate": Key("number", 0.05, "baldwinian/lamarckian: SGD learning rate", 0, 10, True),
        "stdev_init": Key("number", 0.5, "initial search spread (unconstrained space)", 0, None, True),
        "seed": Key("int", 0, "seed of the evolution", 0, SEED_MAX),
        "num_actors": Key("int", 0, "Ray actors (0: evaluate in this process)", 0, 1024),
        "vectorized": Key(
            "choice", "auto", "evaluate the population in one compiled call", choices=("auto", True, False)
        ),
        "eval_batch_size": Key("int", None, "batch size of fitness evaluation", 1, BIG),
        "population_chunk": Key("int", None, "baldwinian: candidates trained together", 1),
        "memory_budget": Key("int", None, "baldwinian: bytes for one chunk (sets population_chunk)", 1),
    },
}

MIXTURE_DEFAULT_CANDIDATES = ["identity", "relu", "gelu", "silu", "elu", "tanh", "softplus", "sigmoid"]
TABLES["mixture"] = {
    "candidates": Key(
        "list[str]",
        MIXTURE_DEFAULT_CANDIDATES,
        "the candidate activations of every site's mixture (no repeats), from: identity, relu, gelu, "
        "silu, elu, tanh, sigmoid, softplus, mish, leaky_relu, softsign, gamma, eru, oru",
    ),
    "warm_start": Key(
        "str", "gelu", "the candidate that starts with weight `warm_weight` (`none`: uniform start)"
    ),
    "warm_weight": Key("number", 0.9, "initial weight of the warm-start candidate", 0, 1, True, True),
    "temperature": Key("number", 1.0, "softmax temperature of the mixture weights", 0.01, 100),
    "epochs": Key("int", 10, "epochs of the search (alternating weight and architecture steps)", 1, 100_000),
    "shrink_start": Key(
        "int",
        0,
        "epochs before shrinking starts; then each site keeps linearly fewer candidates, one "
        "after the last epoch (must be < `epochs`)",
        0,
        100_000,
    ),
    "arch_learning_rate": Key("number", 0.01, "Adam learning rate of the mixture logits", 0, 10, True),
    "seeds": Key(
        "int",
        3,
        "retrainings of the discretized model (and of the baseline) from fresh initialisations, "
        "seeds `budget.seed + 1 + i`, `budget.epochs` epochs each, scored on the test split",
        1,
        1000,
    ),
    "baseline": Key(
        "str", "gelu", "a candidate retrained under the same seeds everywhere (`none`: no baseline)"
    ),
}

# Keys of earlier spec formats: old -> new dotted key (None: no mechanical translation; the
# message names where the setting lives now).
LEGACY = {
    "study.name": "optuna.study",
    "study.storage": "optuna.storage",
    "study.n_trials": "optuna.n_trials",
    "study.timeout": "optuna.timeout",
    "study.workers": "optuna.workers",
    "objective.metric": "optuna.metric",
    "objective.direction": "optuna.direction",
    "objective.extra": "optuna.extra",
    "sampler.*": "optuna.sampler.*",
    "pruner.*": "optuna.pruner.*",
    "data.limit": "data.max_train",
    "model.pretrain_epochs": "budget.epochs",
    "model.pretrain_learning_rate": "budget.learning_rate",
    "model.pretrain_batch_size": "budget.batch_size",
    "model.seed": "budget.seed",
    "model.activation": None,
    "model.activation_options": None,
    "model.inner_hidden": None,
}
LEGACY_HINT = (
    'evolution.activation (e.g. `[evolution.activation]` with `family = "gamma"`, `regime = ...`; '
    'two-argument units: `family = "two_arg"`, `inner_width`, `depth`, `normalize`)'
)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def bad_value(value, key, depth=0):
    """`(dotted key, reason)` for the first value under `value` (nested tables and lists) that
    no spec may hold, whatever its key: a NaN or infinite number, or nesting deeper than
    `MAX_DEPTH`; `None` if there is none. Free-form tables (`evolution.algorithm_options`) are
    checked too."""
    if depth > MAX_DEPTH:
        return key, f"is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, float) and not math.isfinite(value):
        return key, f"must be a finite number, got {value!r}"
    if isinstance(value, dict):
        items = ((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for k, v in items:
        found = bad_value(v, k, depth + 1)
        if found:
            return found
    return None


def check_value(key, spec, value):
    """`None` if `value` is legal for `spec` (a `Key`), else the reason (a sentence fragment)."""
    kind = spec.kind
    rng = spec.describe_range()
    if kind == "choice":
        return (
            None
            if value in spec.choices and type(value) in {type(c) for c in spec.choices}
            else (f"must be one of {rng}, got {_show(value)}")
        )
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind == "str":
        return None if isinstance(value, str) and value else f"must be a non-empty string, got {value!r}"
    if kind == "table":
        return None if isinstance(value, dict) else f"must be a table, got {value!r}"
    if kind == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        return None if ok else f"must be a list of strings, got {value!r}"
    if kind == "list[int]":
        ok = isinstance(value, list) and value and all(_is_int(v) and v >= (spec.lo or 0) for v in value)
        return None if ok else f"must be a non-empty list of integers >= {_show(spec.lo)}, got {value!r}"
    if kind == "int" and not _is_int(value):
        return f"must be an integer {'in ' + rng if rng else ''}, got {value!r}".replace("  ", " ")
    if kind == "number" and not _is_number(value):
        return f"must be a number {'in ' + rng if rng else ''}, got {value!r}".replace("  ", " ")
    too_low = spec.lo is not None and (value <= spec.lo if spec.open_lo else value < spec.lo)
    too_high = spec.hi is not None and (value >= spec.hi if spec.open_hi else value > spec.hi)
    if too_low or too_high:
        return f"must be in {rng}, got {_show(value)}"
    return None


# --------------------------------------------------------------------------------------------
# docs/specs.md


def markdown():
    """The reference page `docs/specs.md`, generated from this schema and the search space."""
    from keras_bioact import families as registry
    from keras_bioact.datasets import MAX_FILE_BYTES
    from keras_bioact.search import space as space_lib

    out = [
        "# Search specifications",
        "",
        "<!-- generated by `python -m keras_bioact.search.spec > docs/specs.md`; do not edit -->",
        "",
        "One TOML format runs both engines: `bioact search SPEC.toml` runs an Optuna study when the",
        "spec has an `[optuna]` table and an EvoTorch evolution when it has an `[evolution]` table",
        "(`bioact evolve SPEC.toml` is the same command, for evolution specs), and the mixture cell per",
        "layer when it has a `[mixture]` table (docs/search.md). `[data]`, `[model]`,",
        "`[budget]` and `[output]` mean the same for all. Every key is optional; unknown keys and",
        "values out of range are errors that name the file and the dotted key, raised before",
        "anything is imported or trained. Examples: `search/*.toml`.",
        "",
        "Everywhere, free-form tables such as `evolution.algorithm_options` included, numbers must",
        f"be finite (`nan` and `inf` are refused) and tables and lists nest at most {MAX_DEPTH} levels",
        f"deep. A spec file has at most {MAX_SPEC_BYTES:,} bytes; a file a spec names (`model.path`,",
        "the IDX files of `data.path` or `idx:DIR`) must be a regular file (never a device, a named",
        f"pipe or a directory) of at most {MAX_FILE_BYTES:,} bytes. `bioact search` then loads the",
        "data and the saved model (`safe_mode=True`) and checks the output folder (`output.dir`,",
        "`--export`) before it creates the study or writes anything.",
        "",
        "Protocol: validation is carved out of the training split (`data.validation_fraction`,",
        "seeded by `data.seed`); the search optimises the validation score only (with",
        "`budget.repeats = k` a trial's value is the mean over k seeds on the validation split;",
        "with `data.folds = k` the mean over k folds of the training split, the validation split",
        "then not scored); at the end the verdict retrains the best trial (optuna) or the evolved",
        "activation (evolution) and the best baseline with `budget.verdict_seeds` fresh seeds each",
        "and scores every run once on the test split (see docs/search.md, The verdict). The",
        "evolution's best solution is also scored once on the test split as it was evolved",
        "(`best_test_accuracy`).",
        "",
    ]
    for table, keys in TABLES.items():
        out += [f"## [{table}]", "", "| key | type | default | legal | meaning |", "|---|---|---|---|---|"]
        for name, k in keys.items():
            default = "-" if k.default is None else _show(k.default).replace("'", '"')
            out.append(f"| `{name}` | {k.kind} | {default} | {k.describe_range()} | {k.doc} |")
        out.append("")
    out += [
        "## [space] (optuna)",
        "",
        "`families` lists the activation families to try; each parametric family has a sub-table",
        "`[space.<family>]` with the ranges of its parameters (used only when it is listed).",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
        f"| `families` | {', '.join(space_lib.FAMILIES)} | families to try |",
        "| `learning_rate` | - | `[low, high]`: also search the Adam learning rate, log-uniformly "
        "(trial parameter `learning_rate`); unset: every trial uses `budget.learning_rate` |",
        f"| `baselines` | {', '.join(BASELINES)} | baseline families (registered ones: "
        f"{', '.join(registry.baseline_names())}), added to `families` where not listed and "
        "enqueued as the study's first trials (only `family` fixed: a searched learning rate is "
        "sampled; same repeats); their trials have the user attribute `baseline`; `[]`: none "
        "(the default with `model.path`) |",
        "| `enqueue` | [] | tables of trial parameters tried next, e.g. "
        '`{family = "gamma", gamma_n = 5.0, gamma_s = 0.5}`; each checked against the space '
        "(family, parameter names, ranges, choices). Baselines and these are enqueued once, when "
        "the study is created |",
        "| `prescreen` | - | `{propose = P, train = T}` (1 <= T <= P): the training-free pre-screen "
        '(with `families = ["composed"]` only): each round draws P random expressions, ranks them '
        "by a ridge regressor on their N(0, 1) output statistics and Fisher spectrum at "
        "initialisation, fitted to the study's complete trials, and enqueues the top T "
        "(docs/search.md, Pre-screen) |",
    ]
    default = space_lib.SearchSpace()
    for name, sub in default.to_dict().items():
        if not isinstance(sub, dict):
            continue
        doc = " ".join((type(getattr(default, name)).__doc__ or "").split())
        for k, v in sub.items():
            shown = ", ".join(_show(x) for x in v) if isinstance(v, list) else _show(v)
            out.append(f"| `{name}.{k}` | {shown} | {doc if k == next(iter(sub)) else ''} |")
    out += [
        "",
        "## Earlier formats",
        "",
        "Specs written for keras-bioact 0.1 keep working where the translation is mechanical (a",
        "deprecation message names the new key) and fail with the new key's name otherwise:",
        "",
        "| old key | new key |",
        "|---|---|",
    ]
    for old, new in LEGACY.items():
        out.append(f"| `{old}` | {('`' + new + '`') if new else LEGACY_HINT} |")
    out.append("")
    return "\n".join(out)
