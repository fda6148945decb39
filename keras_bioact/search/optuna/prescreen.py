"""The training-free pre-screen of a composed-activation search (`[space] prescreen`).

Written from the description in Bingham & Miikkulainen, "Efficient activation function
optimization through surrogate modeling" (AQuaSurF, NeurIPS 2023) only: two features computed
without training predict how well an activation trains, (1) its outputs on N(0, 1) samples and
(2) the eigenvalue spectrum of the Fisher information matrix of the network at initialisation;
a regressor fitted on the candidates trained so far picks which to train next. No AQuaSurF code
or data (non-commercial licence, patent application) was looked at, used or copied; the
features, their summaries and the regressor below are our own choices.

* `output_features(expression)`: statistics of `f(z)` for a fixed seeded sample of 4096
  `z ~ N(0, 1)` (float64 NumPy reference): mean, standard deviation, the 5/25/50/75/95 %
  quantiles, the fraction of positive outputs and the mean finite-difference slope, each passed
  through `sign(v) log(1 + |v|)` so that huge values stay moderate; non-finite values become 0.
* `fisher_eigenvalues(model, x, y)`: the nonzero eigenvalues of the empirical Fisher matrix
  `F = G^T G / n` at the model's current weights, `G` the n x p matrix of per-example gradients
  of the log-likelihood `log p(y_i | x_i)` over all trainable weights, computed from the n x n
  Gram matrix `G G^T / n` (the same nonzero eigenvalues as the p x p matrix; exact, tested
  against `numpy.linalg.eigvalsh` of the p x p matrix). `fisher_features` summarises them as
  `log10` of the largest eigenvalue, of the trace, and the 10/50/90 % quantiles of the
  `log10` eigenvalues (floored at 1e-12).
* `Regressor`: ridge regression (NumPy, closed form, `alpha = 1`) on standardised features;
  fitted to fewer than `MIN_FIT` trials it ranks candidates in proposal order.
* `Prescreen`: a study's rounds. Whenever a worker is about to ask for trials and no enqueued
  trial is waiting, it draws `propose` random expressions of `[space.composed]` (seeded by
  `budget.seed` and the round), drops functions already in the study (same fingerprint), builds
  the model template with each one from the same initial weights (`budget.seed`), computes its
  features on the first `FISHER_BATCH` training samples, ranks them with the regressor fitted
  to the study's COMPLETE trials, and enqueues the top `train` (`study.enqueue_trial`). So after
  the baselines and `[space] enqueue`, every trial is a pre-screened one, in rounds of `train`,
  and the regressor is refitted before every round.
* `report(study)`: Spearman's rho (`keras_bioact.stats.spearman`) between the prediction each pre-screened
  trial got when it was enqueued (user attribute `prescreen_prediction`, made by a regressor
  fitted on earlier trials only, so on a candidate it had not seen) and its trained value.
"""

from __future__ import annotations

import math

import numpy as np

from keras_bioact import expressions
from keras_bioact.stats import spearman

__all__ = [
    "FISHER_BATCH",
    "MIN_FIT",
    "Prescreen",
    "Regressor",
    "fisher_eigenvalues",
    "fisher_features",
    "output_features",
    "per_example_gradients",
    "report",
    "waiting_params",
]

MIN_FIT = 4  # complete trials the regressor needs; fewer: proposal order
FISHER_BATCH = 32  # training samples of the Fisher matrix
N_SAMPLES = 4096  # N(0, 1) samples of the output statistics
SAMPLE_SEED = 1234
EIG_FLOOR = 1e-12


def _squash(v):
    v = np.where(np.isfinite(v), v, 0.0)
    return np.sign(v) * np.log1p(np.abs(v))


def output_features(expression):
    """Output statistics of `expression` on a fixed seeded N(0, 1) sample (see the module);
    9 finite floats for every expression the grammar accepts."""
    z = np.sort(np.random.default_rng(SAMPLE_SEED).standard_normal(N_SAMPLES))
    with np.errstate(all="ignore"):
        y = np.asarray(expressions.reference(expression, z), dtype="float64")
        y = np.where(np.isfinite(y), y, 0.0)
        slope = np.diff(y) / np.diff(z)
        slope = np.where(np.isfinite(slope), slope, 0.0)
        stats = [
            y.mean(),
            y.std(),
            *np.quantile(y, [0.05, 0.25, 0.5, 0.75, 0.95]),
            (y > 0).mean(),
            slope.mean(),
        ]
    return _squash(np.asarray(stats, dtype="float64"))


def per_example_gradients(model, x, y):
    """The n x p matrix of per-example gradients of `log p(y_i | x_i)` over `model`'s
    trainable weights (flattened, in `model.trainable_variables` order), at its current
    weights in inference mode: the Jacobian of the vector of per-example losses, by JAX
    `jax.jacrev` over `model.stateless_call`, TensorFlow `GradientTape.jacobian` or PyTorch
    one `torch.autograd.grad` per example (faster here than its `is_grads_batched` vmap)."""
    import keras

    from keras_bioact.search.models import ends_with_softmax

    loss_fn = keras.losses.SparseCategoricalCrossentropy(
        from_logits=not ends_with_softmax(model), reduction=None
    )
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y, dtype="int32")
    n = len(x)
    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "jax":
        import jax

        ntv = [v.value for v in model.non_trainable_variables]

        def losses(tv):
            out, _ = model.stateless_call(tv, ntv, x, training=False)
            return loss_fn(y, out)

        grads = jax.jacrev(losses)([v.value for v in variables])
        blocks = [np.asarray(g, dtype="float64").reshape(n, -1) for g in grads]
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            out = loss_fn(y, model(x, training=False))
        grads = tape.jacobian(out, variables)
        blocks = [np.asarray(g, dtype="float64").reshape(n, -1) for g in grads]
    elif backend == "torch":
        import torch

        out = loss_fn(keras.ops.convert_to_tensor(y), model(x, training=False))
        params = [v.value for v in variables]
        rows = [torch.autograd.grad(out[i], params, retain_graph=i < n - 1) for i in range(n)]
        grads = [torch.stack(g) for g in zip(*rows, strict=True)]
        blocks = [g.detach().cpu().double().numpy().reshape(n, -1) for g in grads]
    else:
        raise ValueError(f"prescreen: no gradients for backend {backend!r}; use jax, tensorflow or torch")
    # the gradient of the loss is minus that of the log-likelihood: the same outer products
    return -np.concatenate(blocks, axis=1)


def fisher_eigenvalues(gradients):
    """The n nonzero-or-zero eigenvalues (descending) of the empirical Fisher matrix
    `G^T G / n` of the n x p per-example gradients `G`, from the n x n Gram matrix `G G^T / n`
    (its nonzero eigenvalues are those of the p x p matrix)."""
    g = np.asarray(gradients, dtype="float64")
    gram = g @ g.T / len(g)
    return np.clip(np.linalg.eigvalsh(gram), 0.0, None)[::-1]


def fisher_features(eigenvalues):
    """`log10` of the largest eigenvalue and of the trace, and the 10/50/90 % quantiles of the
    `log10` eigenvalues (floored at 1e-12); 5 finite floats."""
    e = np.asarray(eigenvalues, dtype="float64")
    e = np.where(np.isfinite(e), e, 0.0)
    logs = np.log10(np.maximum(e, EIG_FLOOR))
    top, trace = np.log10(max(e.max(initial=0.0), EIG_FLOOR)), np.log10(max(e.sum(), EIG_FLOOR))
    return np.asarray([top, trace, *np.quantile(logs, [0.1, 0.5, 0.9])], dtype="float64")


# ------------------------------------------------------------------------------- ranking


class Regressor:
    """Ridge regression on standardised features (closed form, NumPy): `fit(X, y)`, then
    `predict(X)`; `rank(X)` gives candidate indices, best first (`maximize`: highest prediction
    first). Fitted to fewer than `MIN_FIT` rows it is not fitted: `predict` gives None and
    `rank` keeps the proposal order."""

    def __init__(self, alpha=1.0, maximize=True):
        self.alpha, self.maximize = float(alpha), bool(maximize)
        self.fitted_on = 0
        self._coef = None

    def fit(self, features, values):
        x = np.asarray(features, dtype="float64")
        y = np.asarray(values, dtype="float64")
        keep = np.isfinite(y) & np.all(np.isfinite(x), axis=1) if len(x) else np.zeros(0, bool)
        x, y = x[keep], y[keep]
        self.fitted_on = len(y)
        if len(y) < MIN_FIT:
            self._coef = None
            return self
        self._mean, self._std = x.mean(axis=0), x.std(axis=0)
        self._std[self._std == 0] = 1.0
        z = (x - self._mean) / self._std
        self._y0 = y.mean()
        self._coef = np.linalg.solve(z.T @ z + self.alpha * np.eye(z.shape[1]), z.T @ (y - self._y0))
        return self

    @property
    def fitted(self):
        return self._coef is not None

    def predict(self, features):
        if not self.fitted:
            return None
        z = (np.asarray(features, dtype="float64") - self._mean) / self._std
        return z @ self._coef + self._y0

    def rank(self, features):
        predicted = self.predict(features)
        n = len(features)
        if predicted is None:
            return list(range(n))
        key = -predicted if self.maximize else predicted
        return [int(i) for i in np.argsort(key, kind="mergesort")]


# ------------------------------------------------------------------------------- the study


class _Proposer:
    """A stand-in trial that answers `suggest_categorical` with seeded random choices and records
    them (the parameters to enqueue)."""

    def __init__(self, rng):
        self.rng, self.params = rng, {}

    def suggest_categorical(self, name, choices):
        value = choices[int(self.rng.integers(len(choices)))]
        self.params[name] = value
        return value


class Prescreen:
    """The pre-screen of a study (see the module).

    Args:
        build_model: `Activation -> keras.Model` (the spec's template).
        x, y: the training samples; the first `fisher_batch` give the Fisher matrix.
        space: the `SearchSpace` (its `families` must be `["composed"]`).
        propose, train: candidates drawn and enqueued per round.
        seed: initial weights of every candidate's model (`budget.seed`) and the proposals'
            seed (`seed + round`).
        maximize: the metric's direction.
        fisher_batch: samples of the Fisher matrix (default `FISHER_BATCH`).
    """

    def __init__(
        self, build_model, x, y, space, propose, train, seed=0, maximize=True, fisher_batch=FISHER_BATCH
    ):
        self.build_model, self.space = build_model, space
        self.x = np.asarray(x)[:fisher_batch]
        self.y = np.asarray(y)[:fisher_batch]
        self.propose, self.train, self.seed, self.maximize = int(propose), int(train), int(seed), maximize
        self._features = {}  # expression config (as a sorted tuple) -> features

    @classmethod
    def from_spec(cls, spec, data=None):
        from keras_bioact.search.optuna.objective import data_and_builder

        ((x, y), _), build_model = data_and_builder(spec, data)
        return cls(
            build_model,
            x,
            y,
            spec.space,
            spec.prescreen["propose"],
            spec.prescreen["train"],
            seed=spec.budget.seed,
            maximize=spec.direction == "maximize",
        )

    def features(self, config):
        """Output statistics and Fisher summary of a composed configuration (cached)."""
        from keras_bioact.search.activation import Activation
        from keras_bioact.seeding import set_random_seed

        key = tuple(sorted(config.items()))
        if key not in self._features:
            set_random_seed(self.seed)
            model = self.build_model(Activation({"family": "composed", **config}))
            eig = fisher_eigenvalues(per_example_gradients(model, self.x, self.y))
            self._features[key] = np.concatenate(
                [output_features(config["expression"]), fisher_features(eig)]
            )
        return self._features[key]

    def _trained(self, study):
        """Features and values of the study's COMPLETE composed trials with a finite value
        (a duplicate, which returned an earlier trial's value untrained, is left out)."""
        from optuna.trial import TrialState

        rows, values = [], []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            config = dict(t.user_attrs.get("activation") or {})
            if config.pop("family", None) != "composed" or not t.values or "duplicate_of" in t.user_attrs:
                continue
            value = t.values[0]
            if value is None or not math.isfinite(value):
                continue
            rows.append(self.features(config))
            values.append(value)
        return rows, values

    def round(self, study, limit=None):
        """One round: propose, rank, enqueue the top `train` (at most `limit`); returns the
        enqueued parameters."""
        from optuna.trial import TrialState

        from keras_bioact.families import composed

        number = int(study.user_attrs.get("prescreen_rounds", 0))
        seen = {t.user_attrs.get("fingerprint") for t in study.get_trials(deepcopy=False)}
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            params = waiting_params(t)  # a composed one: not a baseline's `{family = "relu"}`
            if params.get("family", "composed") == "composed":
                seen.add(composed.fingerprint(_config_of(params, self.space)))
        rng = np.random.default_rng([self.seed, number])
        proposals = []
        for _ in range(self.propose):
            trial = _Proposer(rng)
            config = _sample(self.space, trial)
            if len(self.space.families) > 1:
                trial.params = {"family": "composed", **trial.params}
            fp = composed.fingerprint(config)
            if fp in seen:
                continue
            seen.add(fp)
            proposals.append((trial.params, config))
        rows, values = self._trained(study)
        regressor = Regressor(maximize=self.maximize).fit(rows, values)
        features = [self.features(c) for _, c in proposals] if regressor.fitted else []
        order = regressor.rank(features) if regressor.fitted else list(range(len(proposals)))
        predicted = regressor.predict(features) if regressor.fitted else None
        enqueued = []
        top = self.train if limit is None else max(0, min(self.train, int(limit)))
        for position, i in enumerate(order[:top]):
            params = proposals[i][0]
            attrs = {
                "prescreen_round": number,
                "prescreen_rank": position,
                "prescreen_fitted_on": regressor.fitted_on,
            }
            if predicted is not None:
                attrs["prescreen_prediction"] = float(predicted[i])
            study.enqueue_trial(params, user_attrs=attrs)
            enqueued.append(params)
        study.set_user_attr("prescreen_rounds", number + 1)
        return enqueued

    def refill(self, study, wanted=1, remaining=None):
        """Run one round if fewer than `wanted` enqueued trials wait (a worker is about to ask
        `wanted` trials; batched workers ask at most `train` at once); with the waiting ones it
        enqueues at most `remaining` trials (those the study still wants; None: no limit).
        Returns whether it ran."""
        from optuna.trial import TrialState

        waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        if waiting >= wanted or (remaining is not None and remaining <= waiting):
            return False
        self.round(study, limit=None if remaining is None else remaining - waiting)
        return True


def _sample(space, trial):
    """The composed configuration (without `family`) that `trial` answers in `space`."""
    from keras_bioact import families

    return families.get_family("composed").sample(space.subspace("composed"), trial)


def waiting_params(trial):
    """The parameters a WAITING (enqueued) trial will be asked with (Optuna keeps them in its
    system attribute `fixed_params` until the trial runs)."""
    return dict(trial.system_attrs.get("fixed_params", {}))


def _config_of(params, space):
    """The composed configuration of a waiting trial's parameters (single choices: the space's)."""
    return _sample(space, _Fixed(params))


class _Fixed:
    """A stand-in trial answering with given parameters (a choice not given: its first option)."""

    def __init__(self, params):
        self.params = params

    def suggest_categorical(self, name, choices):
        return self.params.get(name, choices[0])


def report(study):
    """`(rho, n)`: Spearman's rho between the prediction each pre-screened COMPLETE trial got
    before it was trained (`prescreen_prediction`) and its value, over the n such trials; rho
    is nan with fewer than 3. Stored as the study's user attribute `prescreen_spearman`."""
    from optuna.trial import TrialState

    pairs = [
        (t.user_attrs["prescreen_prediction"], t.values[0])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "prescreen_prediction" in t.user_attrs
        and "duplicate_of" not in t.user_attrs
        and t.values
        and math.isfinite(t.values[0])
    ]
    rho = spearman([p for p, _ in pairs], [v for _, v in pairs]) if pairs else float("nan")
    study.set_user_attr("prescreen_spearman", {"rho": None if math.isnan(rho) else rho, "n": len(pairs)})
    return rho, len(pairs)
