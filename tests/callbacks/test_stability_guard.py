"""`keras_bioact.callbacks.StabilityGuard` (runs on every backend)."""

import keras
import numpy as np
import pytest

from keras_bioact.callbacks import StabilityGuard
from keras_bioact.layers import GammaActivation

BATCH = 8


def _data(nan_batch=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = rng.normal(size=(48, 1)).astype("float32")
    if nan_batch is not None:
        y[nan_batch * BATCH] = np.nan  # a NaN loss, hence NaN gradients, in that batch only
    return x, y


def _model():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(6), GammaActivation(name="gamma_a"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def _finite(model):
    return all(np.isfinite(w).all() for w in model.get_weights())


def test_restore_names_the_layer_and_restores_last_good_weights(capsys):
    model = _model()
    x, y = _data(nan_batch=2)
    recorder, guard = _Recorder(), StabilityGuard()
    history = model.fit(
        x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0, callbacks=[recorder, guard]
    )
    event = guard.event
    assert event["layer"] == "gamma_a" and event["parameter"] in ("n", "s")
    assert event["batch"] == 2 and event["epoch"] == 0 and event["restored"]
    assert "'gamma_a'" in capsys.readouterr().out
    assert len(recorder.weights) == 3  # stopped right after the bad batch
    assert not all(np.isfinite(w).all() for w in recorder.weights[2])
    assert _finite(model)
    for restored, good in zip(model.get_weights(), recorder.weights[1], strict=True):
        np.testing.assert_array_equal(restored, good)
    assert len(history.history["loss"]) == 1


def test_stop_keeps_weights_and_raise_raises():
    model = _model()
    x, y = _data(nan_batch=1)
    guard = StabilityGuard(action="stop", verbose=0)
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[guard])
    assert guard.event["layer"] == "gamma_a" and not guard.event["restored"]
    assert not _finite(model)
    model = _model()
    with pytest.raises(FloatingPointError, match="gamma_a"):
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
                  callbacks=[StabilityGuard(action="raise", verbose=0)])


def test_no_false_alarm_and_check_every():
    model = _model()
    x, y = _data()
    guard = StabilityGuard(check_every=2, verbose=0)
    history = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[guard])
    assert guard.event is None and len(history.history["loss"]) == 2


def test_already_broken_parameters_are_caught_before_training():
    model = _model()
    layer = model.get_layer("gamma_a")
    s = np.array(keras.ops.convert_to_numpy(layer.s))
    s[0] = np.inf
    layer.s.assign(s)
    guard = StabilityGuard(verbose=0)
    x, y = _data()
    with pytest.raises(FloatingPointError, match="parameter 's' of layer 'gamma_a'.*before training"):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[guard])
    assert guard.event["parameter"] == "s" and guard.event["inf"] == 1 and guard.event["batch"] is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="action"):
        StabilityGuard(action="ignore")
    with pytest.raises(ValueError, match="check_every"):
        StabilityGuard(check_every=0)
