"""`keras_bioact.reference`, the one NumPy copy of each formula (families, conversion, inspector),
against the tests' own float64 references and against `keras.activations`."""

import keras
import numpy as np
import pytest
from helpers.testing import eru_ref, gamma_ref, oru_ref, to_numpy

from keras_bioact import reference
from keras_bioact.callbacks import figures
from keras_bioact.conversion import SUPPORTED_ACTIVATIONS
from keras_bioact.families import baselines, get_family

pytestmark = pytest.mark.single_backend

X = np.concatenate([np.linspace(-8.0, 8.0, 161), [-700.0, -30.0, 0.0, 30.0, 700.0]])


def test_unit_formulas_match_independent_references():
    x = X[:, None]
    for n, s in [(0.05, 0.0), (1.0, 1.0), (5.0, 0.3), (200.0, 0.9)]:
        np.testing.assert_allclose(reference.gamma(x, n, s), gamma_ref(x, n, s), rtol=1e-12, atol=1e-300)
    r = np.array([0.2, 1.0, 2.5, 8.0])
    small = X[np.abs(X) <= 30.0][:, None]
    np.testing.assert_allclose(reference.eru(small, r), eru_ref(small, r), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(reference.oru(small, r), oru_ref(small, r), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(reference.bru(small, r, "oru"), reference.oru(small, r))
    with pytest.raises(ValueError, match="`form` must be one of"):
        reference.bru(small, r, "xru")
    beta = np.array([0.0, 1.0, 3.0])
    with np.errstate(over="ignore"):
        swish = x * 1.0 / (1.0 + np.exp(-beta * x))
    np.testing.assert_allclose(reference.swish(x, beta), swish, rtol=1e-12, atol=1e-300)
    for y in (reference.gamma(x, 5.0, 0.3), reference.bru(X, 2.0), reference.oru(X, 2.0)):
        assert y.dtype == np.float64 and np.all(np.isfinite(y))
    assert np.all(np.isfinite(reference.swish(x, beta)))


@pytest.mark.parametrize("name", SUPPORTED_ACTIVATIONS)
def test_activations_match_keras(name):
    x = np.linspace(-8.0, 8.0, 321)
    expected = to_numpy(keras.activations.get(name)(keras.ops.convert_to_tensor(x, "float32")))
    np.testing.assert_allclose(reference.activation(name)(x), expected, rtol=1e-5, atol=2e-6)


def test_activation_parameters_and_aliases():
    x = np.linspace(-8.0, 8.0, 321)
    t = keras.ops.convert_to_tensor(x, "float32")
    capped = to_numpy(keras.activations.relu(t, max_value=4.0))
    np.testing.assert_allclose(reference.activation("relu", max_value=4.0)(x), capped, atol=1e-6)
    leaky = to_numpy(keras.activations.leaky_relu(t, negative_slope=0.3))
    np.testing.assert_allclose(reference.activation("leaky_relu", negative_slope=0.3)(x), leaky, atol=1e-6)
    np.testing.assert_array_equal(reference.activation("swish")(x), reference.activation("silu")(x))
    with pytest.raises(ValueError, match="`name` must be one of"):
        reference.activation("softmax")


def test_every_caller_uses_the_one_copy():
    assert get_family("gamma").reference is reference.gamma
    assert get_family("bru").reference is reference.bru
    assert get_family("learnable_swish").reference is reference.swish
    x = np.linspace(-3.0, 3.0, 7)
    for name, fn in {**baselines.NUMPY, **figures.REFERENCES}.items():
        np.testing.assert_array_equal(fn(x), reference.activation(name)(x))
