"""Additions to `keras_bioact.params` made for issue 9 (bounds, describe, exact round trip at bounds)."""

import keras
import numpy as np

from keras_bioact.layers import GammaActivation
from keras_bioact.params import ParameterView


def test_unconstrained_round_trip_is_exact_on_the_bounds():
    model = keras.Sequential(
        [keras.Input((3,)), GammaActivation(n_initializer=0.5, s_constraint="unit", name="g")]
    )
    layer = model.get_layer("g")
    layer.n.assign(np.array([0.01, 0.5, 7.0], "float32"))  # n on its lower bound 0.01
    layer.s.assign(np.array([0.0, 0.3, 1.0], "float32"))  # s on both ends of [0, 1]
    view = ParameterView(model)
    natural = view.get_vector()
    view.set_vector(view.get_vector("unconstrained"), "unconstrained")
    np.testing.assert_array_equal(view.get_vector(), natural)
    rows = {row["name"]: row for row in view.describe()}
    assert rows["s"]["transform"] == "interval" and (rows["s"]["low"], rows["s"]["high"]) == (0.0, 1.0)
    assert rows["n"]["transform"] == "lower" and rows["n"]["shape"] == (3,)
    assert view.parameters[0].bounds == (0.01, None)
