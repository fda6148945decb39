import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_bioact.layers import GammaRNNCell, PreactivationDrive, SinusoidalRescaling


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def test_sinusoidal_rescaling_matches_formula(rng):
    layer = SinusoidalRescaling(0.5, frequency=2.0, phase=0.3)
    x = rng.normal(size=(2, 10, 3)).astype("float32")
    t = np.arange(10)[None, :, None]
    want = x * (1 + 0.5 * np.sin(2 * np.pi * 2.0 * t / 10 + 0.3))
    np.testing.assert_allclose(_np(layer(x)), want, rtol=1e-5, atol=1e-6)
    layer.amplitude.assign(0.0)
    np.testing.assert_allclose(_np(layer(x)), x, rtol=1e-6)
    fixed = SinusoidalRescaling(1.0, period=784)
    want = x * (1 + np.sin(2 * np.pi * t / 784))
    np.testing.assert_allclose(_np(fixed(x)), want, rtol=1e-5, atol=1e-6)


def test_step_drive_window_and_strength_variable(rng):
    layer = PreactivationDrive(4, "step", strength=2.5, start=3, length=2)
    x = rng.normal(size=(2, 8, 1)).astype("float32")
    out = _np(layer(x))
    assert out.shape == (2, 8, 5)
    np.testing.assert_allclose(out[..., :1], x)
    expected = np.zeros(8)
    expected[3:5] = 2.5
    np.testing.assert_allclose(out[..., 1:], np.broadcast_to(expected[None, :, None], (2, 8, 4)))
    layer.strength.assign(1.0)
    assert _np(layer(x))[0, 3, 2] == 1.0


def test_gaussian_drive_only_inside_the_window():
    layer = PreactivationDrive(50, "gaussian", strength=3.0, start=10, length=20, seed=1)
    out = _np(layer(np.zeros((40, 40, 1), "float32")))[..., 1:]
    np.testing.assert_array_equal(out[:, :10], 0.0)
    np.testing.assert_array_equal(out[:, 30:], 0.0)
    inside = out[:, 10:30]
    assert abs(inside.std() - 3.0) < 0.1 and abs(inside.mean()) < 0.05


def test_drive_shifts_the_preactivations_of_a_trained_cell(rng):
    """A step drive xi on a static gamma RNN equals adding xi to the bias inside the window."""
    steps, units = 6, 3
    cell = GammaRNNCell(units, regime="static", n=2.0, drive_input=True)
    inputs = keras.Input((steps, 1))
    drive = PreactivationDrive(units, "step", strength=0.7, start=2, length=3)
    model = keras.Model(inputs, keras.layers.RNN(cell, return_sequences=True)(drive(inputs)))
    x = rng.normal(size=(2, steps, 1)).astype("float32")
    k, r, b = _np(cell.kernel), _np(cell.recurrent_kernel), _np(cell.bias)
    h = np.zeros((2, units))
    want = []
    for t in range(steps):
        a = x[:, t] @ k + h @ r + b + (0.7 if 2 <= t < 5 else 0.0)
        h = np.logaddexp(0, 2 * a) / 2
        want.append(h)
    np.testing.assert_allclose(_np(model(x)), np.stack(want, 1), rtol=1e-4, atol=1e-5)


def test_perturbation_layers_save_and_load(tmp_path, rng):
    inputs = keras.Input((6, 1))
    x = SinusoidalRescaling(0.4, name="sin")(inputs)
    x = PreactivationDrive(3, "step", 1.5, start=1, length=2, name="drive")(x)
    model = keras.Model(inputs, keras.layers.RNN(GammaRNNCell(3, drive_input=True))(x))
    path = os.path.join(tmp_path, "perturbed.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    data = rng.normal(size=(2, 6, 1)).astype("float32")
    np.testing.assert_allclose(_np(loaded(data)), _np(model(data)), rtol=1e-6, atol=1e-6)
    assert loaded.get_layer("drive").get_config()["strength"] == 1.5


@pytest.mark.parametrize(
    "factory, name",
    [
        (lambda: SinusoidalRescaling(float("nan")), "amplitude"),
        (lambda: SinusoidalRescaling(0.5, frequency="a"), "frequency"),
        (lambda: SinusoidalRescaling(0.5, period=0), "period"),
        (lambda: PreactivationDrive(0), "units"),
        (lambda: PreactivationDrive(3, kind="square"), "kind"),
        (lambda: PreactivationDrive(3, strength=-1.0), "strength"),
        (lambda: PreactivationDrive(3, start=-1), "start"),
        (lambda: PreactivationDrive(3, length=0), "length"),
    ],
)
def test_bad_arguments(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()
