"""A validated search specification as plain data: `SearchSpec`, its training `Budget` and
`SpecError`. Nothing here loads data, builds a model or imports an engine: the engines and the
core modules take a `SearchSpec` (`keras_bioact.search.data.load_splits(spec)`,
`keras_bioact.search.models.model_builder(spec, ...)`, `keras_bioact.search.optuna`'s
`sampler_from_spec`, `pruner_from_spec`, `objective_from_spec`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_bioact.errors import BioactError
from keras_bioact.search import space as space_lib
from keras_bioact.search.metrics import direction_of
from keras_bioact.search.spec import schema

__all__ = ["Budget", "MAX_BATCH_SIZE", "MAX_EPOCHS", "SearchSpec", "SpecError"]

# Upper bounds of budgets nobody means (a typo such as 1e12 would train until killed).
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
MAX_REPEATS = 1000


class SpecError(BioactError):
    """An invalid search specification; the message names the file and the dotted key."""

    def __init__(self, source, key, message):
        self.source, self.key, self.reason = source, key, message
        super().__init__(f"{source}: {key}: {message}")


@dataclass
class Budget:
    """Training budget of one trial.

    Args:
        epochs: epochs of `model.fit` (also the pruning steps).
        batch_size: batch size.
        learning_rate: Adam learning rate.
        max_train: use at most this many training samples (None: all).
        seed: base seed; repeat `j` of trial `k` trains with seed `seed_of(k, j)` (repeat 0:
            `seed + k`).
        jit_compile: passed to `model.compile`.
        verdict_seeds: seeds per arm of the verdict (`keras_bioact.search.verdict`): 0 (off) or
            an integer in [2, 1000].
        repeats: each trial trains this many times, with seeds `seed_of(k, 0..repeats-1)`; its
            value is the mean.
    """

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    max_train: int | None = None
    seed: int = 0
    jit_compile: object = "auto"
    verdict_seeds: int = 5
    repeats: int = 1

    def seed_of(self, trial_number, repeat=0):
        """Seed of repeat `repeat` of trial `trial_number` (32-bit; repeat 0 is `seed + trial_number`)."""
        return (int(self.seed) + int(trial_number) + 100_003 * int(repeat)) % 2**32

    def validate(self, key="budget"):
        for name, hi in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise space_lib.SpaceError(f"{key}.{name}", f"must be an integer in [1, {hi:,}], got {v!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 10:
            raise space_lib.SpaceError(f"{key}.learning_rate", f"must be a number in (0, 10], got {lr!r}")
        if self.max_train is not None and (
            isinstance(self.max_train, bool) or not isinstance(self.max_train, int) or self.max_train < 1
        ):
            raise space_lib.SpaceError(f"{key}.max_train", f"must be an integer >= 1, got {self.max_train!r}")
        r = self.repeats
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_REPEATS:
            raise space_lib.SpaceError(
                f"{key}.repeats", f"must be an integer in [1, {MAX_REPEATS:,}], got {r!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise space_lib.SpaceError(f"{key}.seed", f"must be an integer, got {self.seed!r}")
        m = self.verdict_seeds
        if isinstance(m, bool) or not isinstance(m, int) or not (m == 0 or 2 <= m <= 1000):
            raise space_lib.SpaceError(
                f"{key}.verdict_seeds", f"must be 0 (no verdict) or an integer in [2, 1000], got {m!r}"
            )
        if self.jit_compile not in ("auto", True, False):
            raise space_lib.SpaceError(
                f"{key}.jit_compile", f"must be 'auto', true or false, got {self.jit_compile!r}"
            )
        return self


@dataclass
class SearchSpec:
    """A validated specification (see `docs/specs.md`): what `load_spec` and `parse_spec` give
    and `keras_bioact.search.run_spec` runs. `raw` is the spec's tables as read (after the
    translation of earlier formats); worker processes and `bioact show` re-read it."""

    engine: str = "optuna"
    study_name: str = "search"
    storage: str = ""
    n_trials: int = 20
    timeout: float | None = None
    workers: int = 1
    batch: int | None = None
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
    baselines: tuple = ()
    enqueue: tuple = ()
    prescreen: dict | None = None
    evolution: dict = field(default_factory=dict)
    mixture: dict = field(default_factory=dict)
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
        """Set `table.key` of the `[evolution]`, `[mixture]` or `[output]` table, checked against the schema
        (e.g. from a command-line flag)."""
        table, _, key = dotted.rpartition(".")
        reason = schema.check_value(dotted, schema.TABLES[table][key], value)
        if reason:
            raise SpecError(source, dotted, reason)
        target = {"evolution": self.evolution, "mixture": self.mixture, "output": self.output}[table]
        target[key] = value
