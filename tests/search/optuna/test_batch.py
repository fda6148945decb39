"""Trials trained as a population (`[optuna] batch`): a batched study equals the one-by-one
objective on the same trials and seeds, prunes and fails per trial, and refuses bad batches."""

import keras
import numpy as np
import optuna
import pytest

from keras_bioact.search.data import load_data
from keras_bioact.search.models import model_builder
from keras_bioact.search.optuna.batch import BatchObjective, batch_of, run_batches, run_trials, vectorizes
from keras_bioact.search.optuna.objective import make_objective
from keras_bioact.search.spec import SpecError, parse_spec
from keras_bioact.search.spec.model import Budget

optuna.logging.set_verbosity(optuna.logging.WARNING)
needs_vmap = pytest.mark.skipif(not vectorizes(), reason="the backend does not vectorise trials")

SPACE = {"families": ["gamma"], "learning_rate": [1e-3, 2e-2], "gamma": {"regime": ["static"]}}
BUDGET = Budget(epochs=2, batch_size=32, seed=3)
KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def _spec(space=SPACE, **optuna_table):
    table = {"study": "b", "storage": "sqlite:///:memory:", "n_trials": 4, **optuna_table}
    return parse_spec(
        {
            "optuna": table,
            "data": {"max_train": 200, "max_val": 96},
            "model": {"hidden": [16]},
            "budget": {"epochs": 2, "batch_size": 32, "seed": 3},
            "space": space,
        }
    )


@pytest.fixture(scope="module")
def setup():
    spec = _spec()
    data, (shape, classes) = load_data(spec)
    return data, model_builder(spec, shape, classes)


def _study(pruner=None):
    sampler, pruner = optuna.samplers.RandomSampler(seed=1), pruner or optuna.pruners.NopPruner()
    return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)


def _one_by_one(setup, trial, number=None):
    """The one-by-one objective's history of `trial`'s parameters with seed `3 + number`."""
    data, build = setup
    objective = make_objective(build, data, SPACE, BUDGET, prune=False)
    fixed = optuna.trial.FixedTrial(trial.params, number=trial.number if number is None else number)
    value = objective(fixed)
    return value, fixed.user_attrs["history"]


@needs_vmap
def test_batched_study_equals_one_by_one(setup):
    data, build = setup
    study = _study()
    objective = BatchObjective(build, data, SPACE, BUDGET, prune=False, batch=3)
    run_batches(study, objective, n_trials=3)
    trials = study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert len({t.params["learning_rate"] for t in trials}) == 3  # members differ in values
    assert all(t.user_attrs["batch"] == {**t.user_attrs["batch"], "trials": 3, "members": 3} for t in trials)
    for trial in trials:
        value, history = _one_by_one(setup, trial)
        for key in KEYS:  # every epoch's logs, the validation metric included
            np.testing.assert_allclose(trial.user_attrs["history"][key], history[key], atol=1e-5, rtol=0)
        assert trial.value == pytest.approx(value, abs=1e-5)
        assert trial.user_attrs["epochs_run"] == 2 and trial.user_attrs["scores"] == [trial.value]
        for attr in ("activation", "params", "fit_seconds", "worker", "epoch_seconds", "reused_compiled"):
            assert attr in trial.user_attrs


@needs_vmap
def test_repeats_train_together_with_their_own_seeds(setup):
    data, build = setup
    study = _study()
    objective = BatchObjective(build, data, SPACE, BUDGET, prune=False, batch=1, repeats=2)
    run_batches(study, objective, n_trials=1)
    (trial,) = study.trials
    assert trial.user_attrs["batch"]["members"] == 2
    scores = trial.user_attrs["scores"]
    for repeat, score in enumerate(scores):  # repeat r trains with seed seed_of(number, r)
        value, _ = _one_by_one(setup, trial, number=BUDGET.seed_of(trial.number, repeat) - BUDGET.seed)
        assert score == pytest.approx(value, abs=1e-5)
    assert trial.value == pytest.approx(np.mean(scores))


class _PruneOdd(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.number % 2 == 1


@needs_vmap
def test_pruning_is_per_trial(setup):
    data, build = setup
    study = _study(_PruneOdd())
    run_batches(study, BatchObjective(build, data, SPACE, BUDGET, batch=4), n_trials=4)
    states = [t.state for t in study.trials]
    P, C = optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE
    assert states == [C, P, C, P]
    for t in study.trials:
        assert len(t.intermediate_values) == (1 if t.state == P else 2)  # pruned after epoch 0
    value, _ = _one_by_one(setup, study.trials[2])  # the others trained on unchanged
    assert study.trials[2].value == pytest.approx(value, abs=1e-5)


@needs_vmap
def test_a_diverged_member_fails_alone(setup):
    data, build = setup

    def poisoned(activation):  # the member with s = 0.5 starts from NaN weights
        model = build(activation)
        if activation.config["s"] == 0.5:
            kernel = model.layers[-1].kernel
            kernel.assign(keras.ops.full(kernel.shape, float("nan")))
        return model

    study = _study()
    for s in (0.2, 0.5, 0.8):
        study.enqueue_trial({"learning_rate": 1e-2, "gamma_n": 5.0, "gamma_s": s})
    run_batches(study, BatchObjective(poisoned, data, SPACE, BUDGET, prune=False, batch=3), n_trials=3)
    states = [t.state for t in study.trials]
    F, C = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE
    assert states == [C, F, C]
    assert study.trials[1].user_attrs["failure_reason"].startswith("diverged: loss=nan at epoch 0")
    assert all(np.isfinite(t.value) for t in study.trials if t.state == C)


@needs_vmap
def test_run_trials_of_a_spec_batches_and_counts(setup):
    spec = _spec({**SPACE, "baselines": []}, batch=3, n_trials=4, pruner={"name": "none"})  # gamma only
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    run_trials(spec, study, on_trial=lambda st, t: seen.append(t.number), data=setup[0])
    assert len(study.trials) == 4 and sorted(seen) == [0, 1, 2, 3]  # a batch of 3, then 1
    assert [t.user_attrs["batch"]["trials"] for t in study.trials] == [3, 3, 3, 1]


@pytest.mark.single_backend
@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "4"])
def test_bad_batch_is_refused_naming_the_key(bad):
    with pytest.raises(SpecError, match=r"optuna\.batch"):
        _spec(batch=bad)


@pytest.mark.single_backend
def test_batch_over_the_trial_budget_is_refused_also_when_overridden():
    with pytest.raises(
        SpecError, match=r"optuna\.batch: must be at most the trial budget optuna\.n_trials = 4"
    ):
        _spec(batch=5)
    spec = _spec(batch=4)
    spec.n_trials = 2  # as --n-trials 2 does
    with pytest.raises(SpecError, match=r"optuna\.batch"):
        batch_of(spec, "jax")
    with pytest.raises(SpecError, match=r"optuna\.batch: must be 1 with the timing objective"):
        _spec(batch=2, extra=["fit_time"], sampler={"name": "nsga2"}, pruner={"name": "none"})


@pytest.mark.single_backend
def test_default_batch_per_backend():
    assert batch_of(_spec(), "jax") == batch_of(_spec(), "torch") == 4  # 8, at most n_trials
    assert batch_of(_spec(n_trials=20), "jax") == 8
    assert batch_of(_spec(batch=3), "tensorflow") == 1  # TensorFlow trains them one by one
    assert batch_of(_spec(extra=["params"], pruner={"name": "none"}), "torch") == 4


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's fallback")
def test_tensorflow_trains_one_by_one(setup):
    spec = _spec(batch=2, n_trials=2, pruner={"name": "none"})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    messages = []
    run_trials(spec, study, log=messages.append, data=setup[0])
    assert len(study.trials) == 2 and all("batch" not in t.user_attrs for t in study.trials)
    assert "train one by one" in messages[0]


@pytest.mark.single_backend("jax")
def test_convolutions_train_one_by_one_on_jaxs_cpu():
    """A batch of CNN trials trains one by one on JAX's CPU, where a vectorised (grouped)
    convolution is slower (benchmarks/search_throughput.py --batched --arch cnn)."""
    import jax

    if jax.default_backend() != "cpu":
        pytest.skip("JAX runs on an accelerator here")
    from keras_bioact.search import Activation
    from keras_bioact.search.population import unvectorizable, vectorising_is_slower

    table = {
        "study": "c",
        "storage": "sqlite:///:memory:",
        "n_trials": 2,
        "batch": 2,
        "pruner": {"name": "none"},
    }
    raw = {
        "optuna": table,
        "data": {"max_train": 64, "max_val": 32},
        "model": {"template": "cnn", "filters": [4], "dense": [8]},
        "budget": {"epochs": 1, "batch_size": 32, "seed": 3},
        "space": SPACE,
    }
    spec = parse_spec(raw)
    data, (shape, classes) = load_data(spec)
    build = model_builder(spec, shape, classes)
    model = build(Activation("relu"))
    assert "slower than one by one" in vectorising_is_slower(model)
    assert vectorising_is_slower(model, backend="torch") == ""
    two_arg = build(Activation("two_arg"))  # TwoArgConv2D runs keras.ops.conv too
    assert "two_arg_conv2d" in vectorising_is_slower(two_arg)
    assert "two_arg_conv2d" in unvectorizable(two_arg, backend="torch")
    study = _study()
    run_trials(spec, study, data=data)
    assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert all("batch" not in t.user_attrs for t in study.trials)  # trained through the objective
