"""Search spaces are data: validation, (de)serialisation, sampling; the Activation factory."""

import json

import keras
import numpy as np
import optuna
import pytest

from keras_bioact.search import Activation, SearchSpace, SpaceError, sample
from keras_bioact.search.space import FAMILIES

pytestmark = pytest.mark.single_backend  # backend-independent: spec, CLI and data plumbing

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_space_round_trips_through_json_and_toml_shaped_dicts():
    space = SearchSpace.from_dict(
        {
            "families": ["relu", "gamma", "bru"],
            "gamma": {"n": [2, 10], "regime": ["static"]},
            "bru": {"form": "oru", "r": [1.5, 3]},
        }
    )
    data = json.loads(json.dumps(space.to_dict()))
    again = SearchSpace.from_dict(data)
    assert again == space
    assert (
        again.gamma.n == (2.0, 10.0)
        and again.bru.form == ("oru",)
        and again.families == ("relu", "gamma", "bru")
    )
    assert set(SearchSpace().families) == set(FAMILIES)
    tuned = SearchSpace.from_dict({"families": ["relu"], "learning_rate": [1e-4, 0.1]})
    assert SearchSpace.from_dict(json.loads(json.dumps(tuned.to_dict()))) == tuned
    assert tuned.learning_rate == [1e-4, 0.1] and SearchSpace().learning_rate is None


@pytest.mark.parametrize(
    "data, key",
    [
        ({"families": ["relu", "mish"]}, "space.families"),
        ({"families": []}, "space.families"),
        ({"gamma": {"n": [0.0, 5.0]}}, "space.gamma.n"),
        ({"gamma": {"n": [5.0, 1.0]}}, "space.gamma.n"),
        ({"gamma": {"s": [0.0, 1.5]}}, "space.gamma.s"),
        ({"gamma": {"regime": ["dynamic"]}}, "space.gamma.regime"),
        ({"gamma": {"gain": [1, 2]}}, "space.gamma.gain"),
        ({"bru": {"r": [0.0, 2.0]}}, "space.bru.r"),
        ({"bru": {"r": [0.5, 2.0], "trainable_r": [True]}}, "space.bru.r"),
        ({"bru": {"form": ["xru"]}}, "space.bru.form"),
        ({"two_arg": {"arity": [3]}}, "space.two_arg.arity"),
        ({"two_arg": {"pairing": ["random"]}}, "space.two_arg.pairing"),
        ({"two_arg": {"inner_width": [0]}}, "space.two_arg.inner_width"),
        ({"layers": 3}, "space.layers"),
        ({"learning_rate": [0.0, 0.1]}, "space.learning_rate"),
        ({"learning_rate": [0.1, 0.01]}, "space.learning_rate"),
        ({"learning_rate": [1e-3, 20.0]}, "space.learning_rate"),
        ({"learning_rate": 0.01}, "space.learning_rate"),
    ],
)
def test_bad_spaces_name_the_key(data, key):
    with pytest.raises(SpaceError) as err:
        SearchSpace.from_dict(data)
    assert err.value.key == key
    assert key in str(err.value)


def test_sampling_respects_the_space_and_is_json_serialisable():
    space = SearchSpace.from_dict(
        {
            "families": ["gamma", "bru", "two_arg", "swish"],
            "gamma": {"n": [2.0, 4.0], "s": [0.25, 0.5]},
            "bru": {"r": [1.0, 1.5]},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        config = sample(space, trial)
        json.dumps(config)
        seen.add(config["family"])
        if config["family"] == "gamma":
            assert 2.0 <= config["n"] <= 4.0 and 0.25 <= config["s"] <= 0.5
            assert config["regime"] in ("static", "homogeneous", "heterogeneous")
        act = Activation(config, trial=trial, space=space)
        if config["family"] == "bru":
            r = [act.radius(i) for i in range(3)]
            assert all(1.0 <= v <= 1.5 for v in r)
            assert [trial.params[f"bru_r{i}"] for i in range(3)] == r
            assert act.to_config()["r"] == r
        study.tell(trial, 0.0)
    assert seen == {"gamma", "bru", "two_arg", "swish"}


def test_fixed_trial_reproduces_a_configuration():
    space = SearchSpace.from_dict({"families": ["gamma"], "gamma": {"regime": ["homogeneous"]}})
    config = sample(space, optuna.trial.FixedTrial({"gamma_n": 3.0, "gamma_s": 0.5}))
    assert config == {"family": "gamma", "regime": "homogeneous", "init": "sampled", "n": 3.0, "s": 0.5}


def test_cmaes_sampler_drives_a_gamma_space():
    from keras_bioact.search import make_sampler

    space = SearchSpace.from_dict({"families": ["gamma"], "gamma": {"regime": ["static"]}})
    study = optuna.create_study(sampler=make_sampler("cmaes", seed=0, n_startup_trials=3))

    def objective(trial):
        c = sample(space, trial)
        return (c["n"] - 4.0) ** 2 + (c["s"] - 0.3) ** 2

    study.optimize(objective, n_trials=25)
    assert study.best_value < 2.0
    assert set(study.best_params) == {"gamma_n", "gamma_s"}


def test_activation_layers_for_each_family():
    from keras_bioact.layers import BRU, GammaActivation

    g = Activation({"family": "gamma", "regime": "static", "n": 3.0, "s": 0.5}).layer()
    assert isinstance(g, GammaActivation) and g.trainable_params == ()
    g.build((None, 4))
    n, s = (np.ravel(keras.ops.convert_to_numpy(v)) for v in (g.n, g.s))
    assert np.allclose(n, 3.0) and np.allclose(s, 0.5)
    h = Activation({"family": "gamma", "regime": "homogeneous", "init": "paper"}).layer()
    h.build((None, 4))
    n0 = np.ravel(keras.ops.convert_to_numpy(h.n))
    assert h.trainable_params == ("n", "s") and n0.size == 1 and 5.0 <= float(n0[0]) <= 7.0
    b = Activation({"family": "bru", "form": "oru", "r": [3.0, 1.5]})
    assert isinstance(b.layer(1), BRU) and b.layer(1).r_value == 1.5
    assert b.layer(4).r_value == 1.5  # sites beyond the sampled list reuse the last radix
    blocks = b.dense(8, 0)
    assert blocks[0].get_config()["kernel_initializer"]["class_name"].endswith("BRUInitializer")
    assert Activation("gelu").layer().get_config()["activation"] == "gelu"
    with pytest.raises(ValueError, match="family"):
        Activation({"family": "mish"})
    with pytest.raises(ValueError, match="dense"):
        Activation({"family": "two_arg"}).layer()
