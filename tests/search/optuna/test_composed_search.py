"""The `composed` family in the Optuna engine: its sub-space, the expression tree sampled as
conditional categorical parameters, the built layers, and a study that trains each function
once (fingerprint dedup)."""

import numpy as np
import optuna
import pytest
from helpers.testing import to_numpy

from keras_bioact import expressions
from keras_bioact.families import get_family
from keras_bioact.layers import ComposedActivation
from keras_bioact.search import Activation, Budget, SearchSpace, make_objective, mlp, sample
from keras_bioact.search.space import SpaceError

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(**composed):
    return SearchSpace.from_dict({"families": ["composed"], "composed": composed})


@pytest.mark.parametrize(
    "params, expression",
    [
        ({"composed_schema": "u(x)", "composed_u1": "gelu"}, "gelu(x)"),
        (
            {"composed_schema": "u1(u2(x))", "composed_u1": "tanh", "composed_u2": "softplus"},
            "tanh(softplus(x))",
        ),
        (
            {
                "composed_schema": "b(u1(x), u2(x))",
                "composed_b": "max",
                "composed_u1": "relu",
                "composed_u2": "sin",
            },
            "max(relu(x), sin(x))",
        ),
    ],
)
def test_the_tree_is_sampled_as_conditional_categorical_choices(params, expression):
    config = sample(
        _space(), optuna.trial.FixedTrial({"family": "composed", **params, "composed_sharing": "layer"})
    )
    assert config == {"family": "composed", "expression": expression, "sharing": "layer"}
    layer = Activation(config).layer(0)
    assert isinstance(layer, ComposedActivation) and layer.expression == expression


def test_a_study_asks_only_the_slots_of_the_chosen_schema():
    space = _space(unary=["relu", "sin", "tanh"], binary=["add", "mul"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        config = sample(space, trial)
        schema = trial.params["composed_schema"]
        asked = {k for k in trial.params if k.startswith("composed_")} - {"composed_schema"}
        assert asked == {f"composed_{s}" for s in expressions.schema_slots(schema)}, trial.params
        assert expressions.schema_of(config["expression"])[0] == schema
        study.tell(trial, 0.0)
        seen.add(schema)
    assert seen == set(expressions.SCHEMAS)


def test_per_neuron_sharing_uses_the_channel_axes():
    act = Activation({"family": "composed", "expression": "gamma(x)", "sharing": "neuron"})
    assert act.layer(0).shared_axes is None
    assert act.layer(0, channel_axes=[1, 2]).shared_axes == [1, 2]
    assert Activation({"family": "composed", "expression": "gamma(x)"}).layer(0).shared_axes == "all"


@pytest.mark.parametrize(
    "composed, key, needle",
    [
        ({"schemas": ["u(u(x))"]}, "space.composed.schemas", "unknown schema 'u(u(x))'"),
        ({"unary": ["relu", "sigmoidd"]}, "space.composed.unary", "unknown choice 'sigmoidd'"),
        ({"binary": ["relu"]}, "space.composed.binary", "unknown choice 'relu'"),
        ({"sharing": ["channel"]}, "space.composed.sharing", "unknown choice 'channel'"),
        ({"depth": 3}, "space.composed.depth", "unknown key"),
    ],
)
def test_bad_sub_spaces_name_the_key(composed, key, needle):
    with pytest.raises(SpaceError) as info:
        _space(**composed)
    assert info.value.key == key and needle in str(info.value)


def test_schemas_are_whitespace_insensitive_and_the_configuration_is_canonical():
    assert _space(schemas=["b(u1(x),u2(x))"]).composed.schemas == ("b(u1(x), u2(x))",)
    act = Activation({"family": "composed", "expression": " mul( x,sigmoid(x))"})
    assert act.config == {"family": "composed", "expression": "mul(x, sigmoid(x))", "sharing": "layer"}
    with pytest.raises(ValueError, match="unknown primitive 'sigmoidd'"):
        Activation({"family": "composed", "expression": "sigmoidd(x)"})


def test_the_family_reference_describes_a_trained_unit():
    family = get_family("composed")
    unit = Activation({"family": "composed", "expression": "wsum(gamma(x), eru(x))"}).unit(0)
    x = np.random.default_rng(0).normal(scale=2.0, size=(4, 6)).astype("float32")
    unit.build(x.shape)
    unit.wsum0_w.assign(0.3)
    unit.gamma1_n.assign(4.0)
    unit.eru2_r.assign(1.5)
    expected = family.reference(x.astype("float64"), **family.reference_params(unit))
    np.testing.assert_allclose(to_numpy(unit(x)), expected, rtol=2e-5, atol=2e-5)
    fp = family.fingerprint
    assert fp({"expression": "mul(x, sigmoid(x))"}) == fp({"expression": "silu(x)", "sharing": "neuron"})
    assert fp({"expression": "gamma(x)", "sharing": "neuron"}) != fp({"expression": "gamma(x)"})


def _data(n=64, d=6):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return (x[:48], y[:48]), (x[48:], y[48:])


def test_a_study_trains_each_function_once():
    """The schema b(u1(x), u2(x)) over {identity, sigmoid} and {mul}: four expressions, three
    functions (mul(identity(x), sigmoid(x)) and mul(sigmoid(x), identity(x)) are one); a
    duplicate trial returns the earlier trial's value without building a model."""
    space = _space(schemas=["b(u1(x), u2(x))"], unary=["identity", "sigmoid"], binary=["mul"])
    built = []

    def builder(act):
        built.append(act.config["expression"])
        return mlp(act, (6,), 2, hidden=(4,))

    objective = make_objective(
        builder, _data(), space=space, budget=Budget(epochs=1, batch_size=16), prune=False
    )
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=6)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 6
    by_fingerprint = {}
    for t in trials:
        by_fingerprint.setdefault(t.user_attrs["fingerprint"], []).append(t)
    duplicates = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert duplicates, "the random sampler drew no function twice: pick another seed"
    assert len(built) == len(by_fingerprint) == len(trials) - len(duplicates)  # one training per function
    for t in duplicates:
        first = study.trials[t.user_attrs["duplicate_of"]]
        assert (
            first.user_attrs["fingerprint"] == t.user_attrs["fingerprint"]
            and "duplicate_of" not in first.user_attrs
        )
        assert t.value == first.value and "history" not in t.user_attrs
    assert len(by_fingerprint) <= 3


def test_a_duplicate_of_a_pruned_trial_is_pruned():
    from keras_bioact.search.optuna.objective import _duplicate

    study = optuna.create_study()
    first = study.ask()
    first.set_user_attr("fingerprint", expressions.fingerprint("silu(x)"))
    study.tell(first, state=optuna.trial.TrialState.PRUNED)
    trial = study.ask()
    earlier = _duplicate(trial, Activation({"family": "composed", "expression": "mul(x, sigmoid(x))"}))
    assert earlier.number == first.number
    assert _duplicate(trial, Activation({"family": "composed", "expression": "gelu(x)"})) is None
    assert _duplicate(trial, Activation({"family": "relu"})) is None  # no fingerprint: always trained
