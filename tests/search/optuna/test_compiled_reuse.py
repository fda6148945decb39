"""Compile once per architecture: trials that reuse an earlier trial's compiled model train
exactly what a new model would (same values as `reuse_compiled=False`), also after a pruned
trial, and models of different architectures never share a compiled model."""

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits

from keras_bioact.search import Activation, Budget, SearchSpace, make_objective, mlp
from keras_bioact.search.optuna._compiled import architecture_key

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _key(config, hidden=(8, 8)):
    return architecture_key(mlp(Activation(config), input_shape=(64,), num_classes=10, hidden=hidden))


GAMMA = {"family": "gamma", "regime": "static", "init": "sampled", "n": 3.0, "s": 0.2}
BRU = {"family": "bru", "form": "eru", "r": [2.0, 1.5], "trainable_r": False}


@pytest.mark.single_backend  # the key reads layer classes, configs and variable shapes: plain Python
def test_architecture_key_ignores_values_and_names_only():
    assert _key("relu") == _key("relu")  # different layer names (dense, dense_2, ...)
    assert _key(GAMMA) == _key({**GAMMA, "n": 7.0, "s": 0.9})  # initial values are variables
    assert _key(BRU) == _key({**BRU, "r": [1.1, 3.9]})  # BRU's r given by value, still a variable
    assert _key({"family": "learnable_swish", "beta": 0.5}) == _key(
        {"family": "learnable_swish", "beta": 2.0}
    )
    assert _key("relu") != _key("elu")
    assert _key("relu") != _key("relu", hidden=(8, 4))
    assert _key(GAMMA) != _key({**GAMMA, "regime": "heterogeneous"})  # shapes and trainability
    assert _key(BRU) != _key({**BRU, "form": "oru"})
    assert _key(BRU) != _key({**BRU, "trainable_r": True})


def _data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return (x[:320], y[:320]), (x[320:400], y[320:400])


# Two architectures, a pruned trial (2) and reuse after it; BRU's radii as variables are covered
# by the architecture key test above (a third architecture cost ~25 s more under JAX).
TRIALS = [
    {"family": "relu"},
    {"family": "gamma", "gamma_regime": "static", "gamma_n": 2.0, "gamma_s": 0.1},
    {"family": "relu"},
    {"family": "gamma", "gamma_regime": "static", "gamma_n": 6.0, "gamma_s": 0.7},
    {"family": "relu"},
]


class _PruneSecondTrial(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.number == 2


def _run(reuse):
    space = SearchSpace.from_dict(
        {
            "families": ["relu", "gamma"],
            "gamma": {"regime": ["static"], "init": ["sampled"]},
        }
    )
    objective = make_objective(
        lambda activation: mlp(activation, input_shape=(64,), num_classes=10, hidden=(16, 16)),
        _data(),
        space=space,
        budget=Budget(epochs=2, batch_size=32, learning_rate=0.01, seed=4),
        prune=True,
        reuse_compiled=reuse,
    )
    study = optuna.create_study(direction="maximize", pruner=_PruneSecondTrial())
    for params in TRIALS:
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=len(TRIALS))
    values = [t.value if t.state == optuna.trial.TrialState.COMPLETE else t.state.name for t in study.trials]
    history = [t.user_attrs.get("history", {}).get("loss") for t in study.trials]
    return values, history, objective.compiled


def test_reused_compiled_models_train_exactly_like_new_ones():
    """One search with a pruned trial (trial 2) both ways: the trials after the pruned one reuse
    compiled models too; without pruning, reuse is compared in the learning-rate test below."""
    slow, slow_history, none = _run(reuse=False)
    fast, fast_history, compiled = _run(reuse=True)
    assert none is None
    assert compiled.misses == 2 and compiled.hits == 3  # relu, gamma static
    assert slow[2] == fast[2] == "PRUNED"
    assert fast_history[2] is None  # pruned: no history, but its epoch times are kept (see show)
    assert [v for v in slow if isinstance(v, str)] == [v for v in fast if isinstance(v, str)] == ["PRUNED"]
    numeric = [i for i, v in enumerate(slow) if not isinstance(v, str)]
    np.testing.assert_allclose([fast[i] for i in numeric], [slow[i] for i in numeric], rtol=0, atol=1e-6)
    for a, b in zip(slow_history, fast_history, strict=True):
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def _run_learning_rates(reuse):
    space = SearchSpace.from_dict({"families": ["relu"], "learning_rate": [1e-4, 0.1]})
    objective = make_objective(
        lambda activation: mlp(activation, input_shape=(64,), num_classes=10, hidden=(16,)),
        _data(),
        space=space,
        budget=Budget(epochs=2, batch_size=32, learning_rate=0.01, seed=4),
        prune=False,
        reuse_compiled=reuse,
    )
    study = optuna.create_study(direction="maximize")
    rates = [0.05, 0.0003, 0.05]
    for rate in rates:
        study.enqueue_trial({"family": "relu", "learning_rate": rate})
    seen = []

    def record(study, trial):
        model = next(iter(objective.compiled._models.values()))[0] if reuse else None
        if model is not None:
            seen.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))

    study.optimize(objective, n_trials=len(rates), callbacks=[record])
    return [t.user_attrs["history"]["loss"] for t in study.trials], seen, rates


def test_a_searched_learning_rate_is_what_each_trial_trains_with():
    slow, _, rates = _run_learning_rates(reuse=False)
    fast, seen, _ = _run_learning_rates(reuse=True)
    np.testing.assert_allclose(seen, rates, rtol=1e-6)  # the reused model's optimizer, per trial
    for a, b in zip(slow, fast, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert abs(slow[0][-1] - slow[1][-1]) > 1e-3  # the learning rate changes the training
