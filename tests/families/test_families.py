"""The family registry: every family declared once, its declaration consistent with its layer,
and a new family usable by the search through `register_family` alone."""

import dataclasses

import keras
import numpy as np
import optuna
import pytest
import tomllib
from helpers.testing import to_numpy

from keras_bioact import conversion, families
from keras_bioact.families import Family, get_family, register_family
from keras_bioact.families.space import SubSpace, choices, suggest_choice
from keras_bioact.search import Activation, SearchSpace, sample
from keras_bioact.search.spec import SpecError, parse_spec

BUILT_IN = ("gamma", "bru", "two_arg", "learnable_swish", "composed")


def test_built_in_families_and_targets():
    assert families.parametric_names()[: len(BUILT_IN)] == BUILT_IN
    assert {"relu", "elu", "gelu", "swish"} <= set(families.baseline_names())
    assert families.target_names()[:5] == ("all", "gamma", "bru", "inner", "learnable_swish")
    assert families.target_of("n") == "gamma" and families.target_of("r") == "bru"
    assert families.target_of("beta") == "learnable_swish"
    assert families.target_of("kernel_0") == "inner"  # two_arg claims every other parameter
    assert conversion.rule_names() == ("gamma", "bru", "learnable_swish")  # rules of registered families


def test_unknown_family_names_the_legal_ones():
    with pytest.raises(ValueError, match=r"unknown activation family 'nope'; legal: relu, .*learnable_swish"):
        get_family("nope")


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"name": "Bad-Name"}, "lowercase"),
        ({"name": "x", "reference": 3}, "reference"),
        ({"name": "x"}, "layer"),
        ({"name": "x", "layer": lambda *a: None, "space_cls": SubSpace}, "space_cls"),
        ({"name": "x", "layer": lambda *a: None, "parameter_names": ("q",)}, "target"),
    ],
)
def test_family_declaration_is_checked(kwargs, needle):
    kwargs = {"reference": np.tanh, **kwargs}
    with pytest.raises(ValueError, match=needle):
        Family(**kwargs)


def test_register_refuses_clashes():
    with pytest.raises(ValueError, match="already registered"):
        register_family(Family(name="gamma", reference=np.tanh, layer=lambda *a: None))
    with pytest.raises(ValueError, match="already belongs to family 'two_arg'"):
        register_family(Family(name="clash", reference=np.tanh, layer=lambda *a: None, target="inner"))
    with pytest.raises(ValueError, match=r"parameter names \['n'\]"):
        register_family(
            Family(
                name="clash",
                reference=np.tanh,
                layer=lambda *a: None,
                target="clash_t",
                parameter_names=("n",),
            )
        )
    with pytest.raises(TypeError, match="must be a Family"):
        register_family("gamma")
    assert "clash" not in families.family_names()


@pytest.mark.parametrize("name", BUILT_IN)
def test_reference_describes_the_unit(name):
    """Each family's NumPy reference, at the parameters of a built unit, is the unit's output."""
    activation = Activation({"family": name})
    unit = activation.unit(0)
    family = get_family(name)
    shape = family.probe_shape(activation)
    x = np.random.default_rng(0).normal(scale=2.0, size=shape).astype("float32")
    y = to_numpy(unit(x))
    expected = family.reference(x.astype("float64"), **family.reference_params(unit))
    np.testing.assert_allclose(y.reshape(expected.shape), expected, rtol=2e-5, atol=2e-5)


# ---------------------------------------------------------------- a family added by a user


@dataclasses.dataclass
class ScaledTanhSpace(SubSpace):
    _KEY = "space.scaled_tanh"
    scale: tuple = (1.0, 2.0)

    def validate(self, key=_KEY):
        self.scale = choices(self.scale, f"{key}.scale", (0.5, 1.0, 2.0))
        return self


def _scaled_tanh_layer(activation, index=0, name=None, channel_axes=None):
    scale = activation.config["scale"]
    return keras.layers.Lambda(lambda x: scale * keras.ops.tanh(x), name=name)


@pytest.fixture
def scaled_tanh():
    family = register_family(
        Family(
            name="scaled_tanh",
            reference=lambda x, scale=1.0: scale * np.tanh(x),
            description="scale * tanh(x)",
            layer=_scaled_tanh_layer,
            space_cls=ScaledTanhSpace,
            sample=lambda space, trial: {"scale": suggest_choice(trial, "scaled_tanh_scale", space.scale)},
            defaults={"scale": 1.0},
        )
    )
    yield family
    del families._REGISTRY["scaled_tanh"]


def test_a_registered_family_is_searchable(scaled_tanh):
    assert "scaled_tanh" in families.family_names()
    space = SearchSpace.from_dict({"families": ["relu", "scaled_tanh"], "scaled_tanh": {"scale": [2.0]}})
    config = sample(space, optuna.trial.FixedTrial({"family": "scaled_tanh"}))
    assert config == {"family": "scaled_tanh", "scale": 2.0}
    layer = Activation(config).layer(0)
    np.testing.assert_allclose(to_numpy(layer(np.array([[0.5]], "float32"))), 2.0 * np.tanh(0.5), rtol=1e-6)
    assert Activation({"family": "scaled_tanh"}).config["scale"] == 1.0  # the declared default
    with pytest.raises(Exception, match=r"space\.scaled_tanh\.scale"):
        SearchSpace.from_dict({"scaled_tanh": {"scale": [3.0]}})


def test_a_registered_family_is_accepted_by_specs(scaled_tanh, tmp_path):
    text = """
[data]
name = "digits"
[model]
template = "mlp"
[optuna]
n_trials = 2
[space]
families = ["relu", "scaled_tanh"]
"""
    spec = parse_spec(tomllib.loads(text), source="user.toml")
    assert list(spec.space.families) == ["relu", "scaled_tanh", "gelu", "swish"]  # + the baselines
    with pytest.raises(SpecError, match=r"space\.families"):
        parse_spec(tomllib.loads(text.replace("scaled_tanh", "scaled_tan")), source="user.toml")
