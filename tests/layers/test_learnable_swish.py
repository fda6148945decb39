"""Learnable Swish `x * sigmoid(beta * x)` (Ramachandran et al. 2017), the family added through
the registry alone: op, layer, save/load, mixed precision, convert from silu, Optuna space,
evolution target and inspector curve, on every backend."""

import keras
import numpy as np
import optuna
import pytest
from helpers.testing import grad, to_numpy
from keras import ops

import keras_bioact
from keras_bioact import reference
from keras_bioact.families import get_family
from keras_bioact.layers import LearnableSwish
from keras_bioact.layers.learnable_swish import learnable_swish
from keras_bioact.search import Activation, SearchSpace, SpaceError, sample
from keras_bioact.search.evolution import select_parameters


def ref(x, beta):
    x, beta = np.asarray(x, "float64"), np.asarray(beta, "float64")
    with np.errstate(over="ignore"):  # exp(-beta x) = inf gives the exact limit 0
        return x / (1.0 + np.exp(-beta * x))


def ref_grads(x, beta):
    x, beta = np.asarray(x, "float64"), np.asarray(beta, "float64")
    with np.errstate(over="ignore"):
        s = 1.0 / (1.0 + np.exp(-beta * x))
    return s + beta * x * s * (1 - s), x * x * s * (1 - s)


X = np.array([-30.0, -4.0, -1.0, -0.25, 0.0, 0.3, 1.0, 4.0, 30.0], "float32")


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0, 100.0])
def test_op_matches_numpy_reference(beta):
    y = to_numpy(learnable_swish(ops.convert_to_tensor(X), beta))
    np.testing.assert_allclose(y, ref(X, beta), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(reference.swish(X, beta), ref(X, beta), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.7, 1.0, 100.0])
def test_gradients_match_analytic_and_are_finite(beta):
    x = X.copy()
    b = np.full_like(x, beta)
    gx, gb = grad(lambda t, u: learnable_swish(t, u), x, b)
    ex, eb = ref_grads(x, b)
    np.testing.assert_allclose(gx, ex, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb, eb, rtol=1e-5, atol=1e-5)


def test_extreme_inputs_are_finite():
    x = np.array([-3e38, -1e4, -88.0, 88.0, 1e4, 3e38], "float32")
    for beta in (0.0, 1.0, 100.0):
        b = np.full_like(x, beta)
        y = to_numpy(learnable_swish(ops.convert_to_tensor(x), beta))
        assert np.all(np.isfinite(y)), (beta, y)
        small = x[1:-1]
        gx, gb = grad(lambda t, u: learnable_swish(t, u), small, b[1:-1])
        assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gb)), (beta, gx, gb)


def test_beta_one_is_keras_silu():
    x = np.linspace(-8, 8, 101).astype("float32")
    y = to_numpy(LearnableSwish()(x[None]))[0]
    np.testing.assert_allclose(y, to_numpy(keras.activations.silu(x)), rtol=1e-6, atol=1e-7)


def test_layer_shapes_sharing_and_training():
    layer = LearnableSwish(shared_axes=[1, 2], beta_initializer=2.0)
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32")
    y = layer(x)
    assert tuple(layer.beta.shape) == (1, 1, 4)
    np.testing.assert_allclose(to_numpy(y), ref(x, 2.0), rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((2, 3, 3, 4)) == (2, 3, 3, 4)
    assert tuple(LearnableSwish(shared_axes="all")(x).shape) == x.shape
    frozen = LearnableSwish(trainable=False)
    frozen.build((None, 4))
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 1

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), LearnableSwish(), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=keras.backend.backend() != "torch"
    )
    beta0 = to_numpy(model.layers[1].beta).copy()
    data = np.random.default_rng(1).normal(size=(32, 4)).astype("float32")
    model.fit(data, data[:, :1] ** 2, epochs=2, batch_size=8, verbose=0)
    beta1 = to_numpy(model.layers[1].beta)
    assert np.all(np.isfinite(beta1)) and not np.allclose(beta0, beta1)
    assert np.all(beta1 >= 0.0)  # the default non_neg constraint


def test_save_load_safe_mode(tmp_path):
    inputs = keras.Input((5,))
    out = LearnableSwish(beta_initializer="random_uniform", shared_axes=None)(keras.layers.Dense(5)(inputs))
    model = keras.Model(inputs, out)
    x = np.random.default_rng(2).normal(size=(4, 5)).astype("float32")
    path = tmp_path / "swish.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))
    assert type(loaded.layers[-1]).__name__ == "LearnableSwish"
    assert loaded.layers[-1].get_config()["shared_axes"] == model.layers[-1].get_config()["shared_axes"]


def test_registered_name_is_kept_for_files_saved_before_the_move():
    """.keras files saved while the class lived in keras_bioact.families.learnable_swish load."""
    assert keras.saving.get_registered_name(LearnableSwish) == "keras_bioact>LearnableSwish"
    saved = keras.layers.serialize(LearnableSwish(beta_initializer=0.5, shared_axes="all", name="sw"))
    saved["module"] = "keras_bioact.families.learnable_swish"
    assert saved["registered_name"] == "keras_bioact>LearnableSwish"
    layer = keras.saving.deserialize_keras_object(saved, safe_mode=True)
    assert type(layer) is LearnableSwish and layer.shared_axes == "all" and layer.name == "sw"


def test_mixed_precision():
    layer = LearnableSwish(dtype="mixed_float16", beta_initializer=1.5)
    x = np.linspace(-3, 3, 8).astype("float16")[None]
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert keras.backend.standardize_dtype(layer.beta.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(y).astype("float64"), ref(x, 1.5), atol=5e-3)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"beta_initializer": float("nan")}, "beta_initializer"),
        ({"beta_initializer": -1.0}, "beta_constraint"),
        ({"beta_initializer": "no_such_init"}, "beta_initializer"),
        ({"beta_constraint": "bogus"}, "beta_constraint"),
        ({"beta_regularizer": "bogus"}, "beta_regularizer"),
        ({"shared_axes": "some"}, "shared_axes"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        LearnableSwish(**kwargs)


def test_convert_silu_is_exact():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(7, activation="silu")(inputs)
    h = keras.layers.Activation("swish")(keras.layers.Dense(7)(h))
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
    converted = keras_bioact.convert(model, family="learnable_swish", warn_deviation=None)
    units = [layer for layer in converted.layers if isinstance(layer, LearnableSwish)]
    assert len(units) == 2
    x = np.random.default_rng(3).normal(size=(9, 6)).astype("float32")
    np.testing.assert_allclose(to_numpy(converted(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)
    assert all(np.all(to_numpy(u.beta) == 1.0) for u in units)


def test_optuna_space_and_activation():
    space = SearchSpace.from_dict({"families": ["learnable_swish"], "learnable_swish": {"beta": [0.5, 2.0]}})
    trial = optuna.trial.FixedTrial(
        {"family": "learnable_swish", "learnable_swish_regime": "homogeneous", "learnable_swish_beta": 1.25}
    )
    config = sample(space, trial)
    assert config == {"family": "learnable_swish", "regime": "homogeneous", "beta": 1.25}
    layer = Activation(config).layer(0)
    layer.build((None, 3))
    assert int(np.prod(layer.beta.shape)) == 1  # homogeneous: one beta for the layer
    np.testing.assert_allclose(to_numpy(layer.beta), 1.25)
    with pytest.raises(SpaceError, match=r"space\.learnable_swish\.beta"):
        SearchSpace.from_dict({"families": ["learnable_swish"], "learnable_swish": {"beta": [0.0, 2.0]}})
    with pytest.raises(SpaceError, match=r"space\.learnable_swish\.regime"):
        SearchSpace.from_dict({"learnable_swish": {"regime": ["dynamic"]}})


def test_evolution_target_selects_beta_only():
    inputs = keras.Input((4,))
    h = Activation({"family": "learnable_swish"}).layer(0)(keras.layers.Dense(5)(inputs))
    from keras_bioact.layers import GammaActivation

    h = GammaActivation()(keras.layers.Dense(5)(h))
    model = keras.Model(inputs, h)
    params = select_parameters(model, target="learnable_swish")
    assert [p.name for p in params] == ["beta"]
    assert {p.name for p in select_parameters(model, target="all")} == {"beta", "n", "s"}


def test_inspector_draws_reference_curves():
    from keras_bioact.callbacks.inspection import find_layers

    inputs = keras.Input((3,))
    unit = LearnableSwish(beta_initializer="random_uniform")
    model = keras.Model(inputs, unit(inputs))
    (inspected,) = find_layers(model)
    assert inspected.kind == "learnable_swish" and inspected.has_curves()
    x = np.linspace(-3, 3, 7)
    curves = np.asarray(inspected.curves(x))
    beta = to_numpy(unit.beta).reshape(-1)
    np.testing.assert_allclose(curves, ref(x[None], beta[:, None]), atol=1e-6)
    assert get_family("learnable_swish").curve_label(unit) in inspected.curve_title()
