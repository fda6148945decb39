"""Bad arguments raise ValueError naming the argument and its legal range."""

import keras
import pytest

from keras_bioact.initializers import BRUInitializer
from keras_bioact.layers import BRU, GammaActivation


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -1.0, keras.initializers.Constant(0.0), keras.initializers.Constant(-2.0),
     keras.initializers.RandomUniform(-1.0, 1.0), keras.initializers.RandomUniform(0.0, 1.0), "zeros"],
)
def test_gamma_non_positive_gain_init(value):
    with pytest.raises(ValueError, match=r"n_initializer.*> 0"):
        GammaActivation(n_initializer=value)


@pytest.mark.parametrize(
    "value", [0.5, keras.initializers.Constant(3.0), keras.initializers.RandomUniform(1.0, 2.0), "ones"]
)
def test_gamma_positive_gain_init_accepted(value):
    GammaActivation(n_initializer=value).build((None, 3))


@pytest.mark.parametrize("value", [0, 0.0, -2.0, float("nan"), float("inf"), "2", None, True])
def test_bru_bad_radix(value):
    with pytest.raises(ValueError, match=r"`r`.*> 0"):
        BRU(r=value)


def test_bru_trainable_radix_below_default_floor():
    with pytest.raises(ValueError, match=r"`r`.*>= 1"):
        BRU(r=0.5, trainable_r=True)
    BRU(r=0.5)  # a fixed radix may be < 1


@pytest.mark.parametrize("form", ["elu", "ERU", "", None])
def test_bru_unknown_form(form):
    with pytest.raises(ValueError, match=r"`form`.*'eru', 'oru'"):
        BRU(form=form)


@pytest.mark.parametrize("shared_axes", [0, [0], [1, 0], "channels", 1.5, [1.5], [True], [], ["1"]])
@pytest.mark.parametrize("cls", [GammaActivation, BRU])
def test_malformed_shared_axes_at_construction(cls, shared_axes):
    with pytest.raises(ValueError, match=r"`shared_axes`.*1 \.\. rank-1"):
        cls(shared_axes=shared_axes)


@pytest.mark.parametrize("shared_axes", [3, 4, -3, [1, 3]])
@pytest.mark.parametrize("cls", [GammaActivation, BRU])
def test_shared_axes_out_of_range_at_build(cls, shared_axes):
    layer = cls(shared_axes=shared_axes)
    with pytest.raises(ValueError, match=r"`shared_axes`.*legal axes are 1\.\.2 or -2\.\.-1"):
        layer.build((None, 4, 5))


@pytest.mark.parametrize("names", [("n", "x"), ("gain",), "ns", ("r",)])
def test_wrong_trainable_params(names):
    with pytest.raises(ValueError, match=r"`trainable_params`.*\('n', 's'\)"):
        GammaActivation(trainable_params=names)


@pytest.mark.parametrize("kwargs", [{"r": 0.0}, {"r": -1.0}, {"form": "elu"}])
def test_bru_initializer_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="`r`|`form`"):
        BRUInitializer(**kwargs)
