"""The verdict of an evolution (`keras_bioact.search.verdict`): does the evolved activation beat
the best baseline network under the same training budget?

Arms, each trained from scratch with the same `budget.verdict_seeds` fresh seeds (seed `i`:
`budget.seed + 1_000_000 + i`; it sets the initial weights and the data order) and scored once
on the test split (accuracy):

* **best**: the spec's model with the evolved best activation parameters written in and held
  fixed, its other weights trained by gradient as before the evolution (`[budget]`: epochs,
  batch size, learning rate). This is the evolved activation used as a fixed activation, with
  the same budget as the baseline; it does not reuse the evolution's start weights.
* **baseline**: the same model template with a baseline activation (`relu`, `gelu`, `swish`),
  all weights trained with the same budget. Which baseline: the best on the validation split,
  from `result.baseline_scores` (`{name: validation score}` in `evolution.metric`'s units) where
  the run measured them, else each baseline trained here once with `budget.seed` and scored by
  its validation accuracy.

No verdict for a saved model (`model.path`: no template to put a baseline into), without
gradient training (`budget.epochs = 0`) or with `budget.verdict_seeds = 0`.
"""

from __future__ import annotations

from keras_bioact.search import verdict as verdict_lib

__all__ = ["evolution_verdict", "train_and_score"]


def _fit(model, train, budget, progress=False):
    import keras

    from keras_bioact.search.models import ends_with_softmax

    model.compile(
        optimizer=keras.optimizers.Adam(budget.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_with_softmax(model)),
        metrics=["accuracy"],
    )
    model.fit(train[0], train[1], epochs=budget.epochs, batch_size=budget.batch_size, verbose=0)


def _by_new_paths(model, parameters):
    """`parameters` keyed by `model`'s paths: as they are when it has them, else matched in order
    where both models hold the same number of activation parameters of the same shapes (a model
    built after others in one session has other layer names)."""
    import numpy as np

    from keras_bioact.params import activation_parameters

    new = activation_parameters(model)
    if all(k in {p.path for p in new} for k in parameters):
        return parameters
    old = list(parameters)
    if len(new) == len(old) and all(
        tuple(np.shape(parameters[k])) == p.shape for k, p in zip(old, new, strict=True)
    ):
        return {p.path: parameters[k] for k, p in zip(old, new, strict=True)}
    return parameters  # `_apply_parameters` names the missing paths


def train_and_score(spec, activation, seed, train, score_on, parameters=None, n_classes=None):
    """Accuracy on `score_on` (`(x, y)`) of the spec's model with `activation` (an activation
    configuration), built and trained with `seed`; `parameters` (`{path: array}`, e.g. the
    evolved best) are written in and held fixed during the training."""
    import math

    import keras

    from keras_bioact.params import activation_parameters
    from keras_bioact.search.activation import Activation
    from keras_bioact.search.evolution.result import _apply_parameters
    from keras_bioact.search.evolution.runner import accuracy
    from keras_bioact.search.models import model_builder

    keras.backend.clear_session()  # layer names as in the evolved model (the first built)
    keras.utils.set_random_seed(int(seed))
    n_classes = n_classes or int(max(train[1].max(), score_on[1].max())) + 1
    model = model_builder(spec, train[0].shape[1:], n_classes)(Activation(activation))
    held = []
    if parameters:
        parameters = _by_new_paths(model, parameters)
        _apply_parameters(model, parameters)
        held = [p for p in activation_parameters(model) if p.path in parameters]
        for p in held:
            p.variable.trainable = False
    keras.utils.set_random_seed(int(seed))
    _fit(model, train, spec.budget)
    value = accuracy(model, score_on[0], score_on[1])
    return value if math.isfinite(value) else None


def _best_baseline(spec, result, train, val, n_classes, log):
    from keras_bioact.search.metrics import direction_of

    scores = getattr(result, "baseline_scores", None)
    sign = -1.0 if scores and direction_of(spec.evolution.get("metric", "accuracy")) == "minimize" else 1.0
    scores = scores or {}
    finite = {k: v for k, v in scores.items() if v is not None}
    if not finite:
        return None, None
    name = max(finite, key=lambda k: (sign * finite[k], -list(finite).index(k)))
    return name, finite[name]


def _stored(out_dir, seeds, best_fitness):
    """The verdict in `out_dir/verdict.json` if it is for these seeds and this best solution."""
    import json
    import os

    path = os.path.join(out_dir or "", verdict_lib.VERDICT_FILE)
    try:
        with open(path) as f:
            data = json.load(f)
        v = verdict_lib.Verdict.from_dict(data)
    except (OSError, ValueError, TypeError):
        return None
    return v if list(v.seeds) == list(seeds) and v.best_validation == float(best_fitness) else None


def evolution_verdict(spec, result, splits, log=None):
    """`(Verdict, None)` of a finished evolution (see the module docstring), or `(None, reason)`.
    A `verdict.json` in the output folder for the same seeds and best solution (a resumed run
    that had finished) is read back instead of retraining."""
    budget = spec.budget
    seeds = verdict_lib.verdict_seeds(budget)
    if not seeds:
        return None, "budget.verdict_seeds = 0"
    stored = _stored(result.out_dir, seeds, result.best_fitness)
    if stored is not None:
        return stored, None
    if spec.model_path:
        return None, "a saved model (model.path) has no template to train a baseline with"
    if budget.epochs < 1:
        return None, "budget.epochs = 0: nothing is trained, so there is nothing to compare"
    train, val, test = splits["train"], splits["val"], splits["test"]
    activation = dict(spec.evolution["activation"])
    from keras_bioact.search.data import shape_and_classes

    n_classes = shape_and_classes(splits)[1]
    name, base_val = _best_baseline(spec, result, train, val, n_classes, log)
    if log:
        log(
            f"verdict: training the evolved activation and the best baseline ({name}) with "
            f"{len(seeds)} fresh seeds each, scored once on the test split ({len(test[1])} samples) ..."
        )

    def arm(config, label, parameters=None):
        scores = []
        for i, seed in enumerate(seeds):
            if log:
                log(f"verdict: {label}, seed {i + 1}/{len(seeds)} ({seed}) ...")
            scores.append(train_and_score(spec, config, seed, train, test, parameters, n_classes))
        return scores

    best_label = f"evolved {verdict_lib.label(activation)}"
    best_scores = arm(activation, best_label, result.best_parameters)
    base_scores = None if name is None else arm({"family": name}, name)
    verdict = verdict_lib.compare(
        best_label,
        best_scores,
        name,
        base_scores,
        metric="test_accuracy",
        direction="maximize",
        seeds=seeds,
        best_validation=float(result.best_fitness),
        baseline_validation=base_val,
        n_test=int(len(test[1])),
        protocol=(
            "the evolved activation parameters held fixed and the best baseline (by validation "
            f"accuracy), each trained from scratch for {budget.epochs} epoch(s) with the same "
            f"{len(seeds)} fresh seeds and scored once on the test split"
        ),
    )
    return verdict, None
