"""The objective builder: training, pruning reports, divergence, multi-objective, best layer."""

import keras
import numpy as np
import optuna
import pytest

from keras_bioact.search import (
    Activation,
    Budget,
    SearchSpace,
    best_activation,
    best_activation_config,
    make_objective,
    mlp,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _data(n=96, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return (x[: n // 2 + n // 4], y[: n // 2 + n // 4]), (x[n // 2 + n // 4 :], y[n // 2 + n // 4 :])


def _builder(act):
    return mlp(act, (6,), 2, hidden=(4,))


def test_objective_trains_records_and_gives_a_ready_layer():
    """Runs under every backend: one gamma trial end to end, then the best trial as a layer."""
    from keras_bioact.layers import GammaActivation

    space = SearchSpace.from_dict({"families": ["gamma"], "gamma": {"regime": ["heterogeneous"]}})
    objective = make_objective(_builder, _data(), space=space, budget=Budget(epochs=2, batch_size=32))
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert 0.0 <= trial.value <= 1.0
    assert sorted(trial.intermediate_values) == [0, 1]  # KerasPruningCallback reported each epoch
    attrs = trial.user_attrs
    assert attrs["activation"]["family"] == "gamma" and attrs["epochs_run"] == 2
    assert attrs["params"] > 0 and attrs["fit_seconds"] > 0 and len(attrs["history"]["loss"]) == 2
    layer = best_activation(study)
    assert isinstance(layer, GammaActivation)
    y = layer(keras.ops.convert_to_tensor(np.linspace(-2, 2, 8, dtype="float32")[None]))
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
    assert best_activation_config(study)["n"] == pytest.approx(trial.params["gamma_n"])


@pytest.mark.single_backend
def test_diverged_trial_fails_with_reason_and_the_study_goes_on():
    space = SearchSpace.from_dict({"families": ["relu"]})

    def exploding(act):
        return keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Rescaling(1e30),
                keras.layers.Dense(4),
                act.layer(0),
                keras.layers.Rescaling(1e30),
                keras.layers.Dense(2),
            ]
        )

    data = _data()
    budget = Budget(epochs=2, batch_size=32)
    study = optuna.create_study(direction="maximize")
    compile_kwargs = {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
    study.optimize(
        make_objective(exploding, data, space=space, budget=budget, compile_kwargs=compile_kwargs), n_trials=1
    )
    study.optimize(make_objective(_builder, data, space=space, budget=budget), n_trials=1)
    bad, good = study.trials
    assert bad.state == optuna.trial.TrialState.FAIL
    assert bad.user_attrs["failure_reason"].startswith("diverged:")
    assert good.state == optuna.trial.TrialState.COMPLETE


@pytest.mark.single_backend
def test_median_pruner_prunes_and_nsga2_optimises_accuracy_against_parameters():
    from keras_bioact.search import make_pruner, make_sampler

    space = SearchSpace.from_dict({"families": ["relu", "gamma"]})
    data = _data()
    budget = Budget(epochs=3, batch_size=32)
    # A pruner that always prunes after the first report: the trial ends PRUNED at epoch 0.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.5))
    study.optimize(make_objective(_builder, data, space=space, budget=budget), n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert list(study.trials[0].intermediate_values) == [0]
    assert isinstance(make_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)

    objective = make_objective(
        _builder, data, space=space, budget=Budget(epochs=1, batch_size=32), objectives=("params",)
    )
    assert objective.directions == ["maximize", "minimize"]
    multi = optuna.create_study(directions=objective.directions, sampler=make_sampler("nsga2", seed=0))
    multi.optimize(objective, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.COMPLETE and len(t.values) == 2 for t in multi.trials)
    assert all(t.values[1] == t.user_attrs["params"] for t in multi.trials)
    assert best_activation_config(multi)["family"] in ("relu", "gamma")


def test_two_arg_family_builds_with_a_shared_inner_network_or_says_what_is_missing():
    act = Activation({"family": "two_arg", "inner_width": 8, "depth": 1})
    try:
        from keras_bioact.layers import TwoArgDense  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="two_arg family requires keras_bioact.layers.TwoArgDense"):
            mlp(act, (6,), 2, hidden=(4, 4))
        return
    model = mlp(act, (6,), 2, hidden=(4, 4))
    out = model(np.zeros((3, 6), "float32"))
    assert tuple(out.shape) == (3, 2)
    inner = act.inner()
    # one shared inner network: its weights are counted once
    assert sum(1 for w in model.weights if any(w is v for v in inner.weights)) == len(inner.weights)


@pytest.mark.single_backend
@pytest.mark.parametrize(
    "config",
    [
        {"family": "gamma", "regime": "heterogeneous", "n": 4.0, "s": 0.2},
        {"family": "bru", "form": "eru", "r": [2.0, 1.5, 1.2]},
        {"family": "two_arg", "inner_width": 8, "depth": 1},
        {"family": "swish"},
    ],
)
def test_cnn_template_builds_for_every_family(config):
    from keras_bioact.search import cnn

    act = Activation(config)
    model = cnn(act, (8, 8), 10, filters=(4, 4), dense=(6,))
    out = keras.ops.convert_to_numpy(model(np.zeros((2, 8, 8), "float32")))
    assert out.shape == (2, 10) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    if config["family"] == "gamma":  # per-channel parameters on feature maps
        assert tuple(model.layers[2].n.shape) == (1, 1, 4)
