import os

import keras
import numpy as np
import pytest
from helpers.rnn_reference import anru
from keras import ops

from keras_bioact.layers import ANRUCell, CheckpointedRNN, anru_cell
from keras_bioact.layers.anru_cell import CONTROLLER_PARAMETERS
from keras_bioact.params import ParameterView, activation_parameters

JIT = keras.backend.backend() != "torch" or None


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _weights(cell):
    names = ("kernel", "recurrent_kernel", "bias") + CONTROLLER_PARAMETERS
    return {name: _np(getattr(cell, name)) for name in names}


def _model(cell, steps, features, rnn=keras.layers.RNN, **kwargs):
    inputs = keras.Input((steps, features))
    return keras.Model(inputs, rnn(cell, **kwargs)(inputs))


def _randomise(cell, rng):
    for name in CONTROLLER_PARAMETERS + ("bias",):
        v = getattr(cell, name)
        v.assign((_np(v) + rng.normal(scale=0.3, size=v.shape)).astype("float32"))


def test_matches_numpy_reference_with_trajectories_and_state(rng):
    cell = ANRUCell(5, controller_units=4, return_trajectories=True)
    model = _model(cell, 6, 2, return_sequences=True, return_state=True)
    _randomise(cell, rng)
    x = rng.normal(size=(3, 6, 2)).astype("float32")
    out, h_last, g_last = (_np(t) for t in model(x))
    h, n, s, g = anru(x, _weights(cell))
    assert out.shape == (3, 6, 15) and g_last.shape == (3, 20)
    got_h, got_n, got_s = (_np(t) for t in ANRUCell.split_trajectories(out))
    np.testing.assert_allclose(got_h, h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_n, n, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_s, s, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_last, h[:, -1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_last.reshape(3, 5, 4), g, rtol=1e-4, atol=1e-5)


def test_n_floor_and_drive_input(rng):
    cell = ANRUCell(3, controller_units=2, n_min=0.5, n_bias_initializer="zeros", drive_input=True)
    model = _model(cell, 4, 1 + 3, return_sequences=True)
    x = rng.normal(size=(2, 4, 1)).astype("float32")
    drive = rng.normal(size=(2, 4, 3)).astype("float32")
    h, n, _, _ = anru(x, _weights(cell), n_min=0.5, drive=drive)
    assert np.any(n == 0.5)  # the floor is active with n_bias = 0
    np.testing.assert_allclose(_np(model(np.concatenate([x, drive], -1))), h, rtol=1e-4, atol=1e-5)


def test_paper_initialisation():
    cell = ANRUCell(40, controller_units=50)
    _model(cell, 2, 1)
    n_bias = _np(cell.n_bias)
    assert n_bias.shape == (1,) and 5.0 <= n_bias[0] <= 7.0
    np.testing.assert_array_equal(_np(cell.s_bias), 0.0)
    np.testing.assert_array_equal(_np(cell.controller_bias), 0.0)
    np.testing.assert_array_equal(_np(cell.bias), 0.0)
    w = _np(cell.controller_recurrent_kernel)
    np.testing.assert_allclose(w @ w.T, np.eye(50), atol=1e-5)
    # Xavier normal: std = gain * sqrt(2 / (50 + 1)).
    assert 0.3 < _np(cell.n_kernel).std() / (0.1 * np.sqrt(2 / 51)) < 1.7
    assert 0.3 < _np(cell.s_kernel).std() / (0.01 * np.sqrt(2 / 51)) < 1.7
    assert _np(cell.controller_input_kernel).shape == (1, 50)


def test_gradients_reach_every_controller_weight_with_jit(rng):
    cell = ANRUCell(6, controller_units=3)
    inputs = keras.Input((5, 2))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.RNN(cell)(inputs)))
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=JIT,
    )
    before = {name: _np(getattr(cell, name)) for name in CONTROLLER_PARAMETERS}
    x = rng.normal(size=(8, 5, 2)).astype("float32")
    y = rng.integers(0, 2, 8)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    for name, value in before.items():
        assert np.any(_np(getattr(cell, name)) != value), f"{name} received no gradient"


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="torch uses autodiff for the controller step"
)
@pytest.mark.parametrize("remat", [False, True])
def test_hand_written_controller_backward_matches_autodiff(rng, monkeypatch, remat):
    """TensorFlow and JAX train the controller step with `_controller_backward`; its outputs
    and the gradients of every weight (SGD with learning rate 1: update = -gradient) equal
    those of autodiff through `_controller`, in a jit-compiled train step."""
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    y = rng.integers(0, 3, 4)
    results = []
    for custom in (True, False):
        if not custom:
            monkeypatch.setattr(
                anru_cell,
                "_controller_function",
                lambda r: keras.remat(anru_cell._controller) if r else anru_cell._controller,
            )
        keras.utils.set_random_seed(3)
        cell = ANRUCell(5, controller_units=4, remat=remat, return_trajectories=True)
        inputs = keras.Input((6, 3))
        h = keras.layers.RNN(cell, return_sequences=True)(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(h)))
        _randomise(cell, np.random.default_rng(11))
        model.compile(
            keras.optimizers.SGD(1.0),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        before = [_np(w) for w in model.weights]
        out = _np(model(x))
        model.train_on_batch(x, y)
        steps = [_np(w) - b for w, b in zip(model.weights, before, strict=True)]
        results.append((out, steps))
    (out, steps), (ref_out, ref_steps) = results
    np.testing.assert_allclose(out, ref_out, rtol=1e-6, atol=1e-6)
    for w, got, want in zip(model.weights, steps, ref_steps, strict=True):
        assert np.any(want != 0), w.path
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=w.path)


def _trained(rnn, remat, return_sequences, x, y, **kwargs):
    """Output before, and all weights after, one jit-compiled training step of an ANRU model."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((9, 2))
    cell = ANRUCell(5, controller_units=3, remat=remat)
    h = rnn(cell, return_sequences=return_sequences, **kwargs)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(h)))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.SGD(0.5), loss, jit_compile=JIT)
    out = _np(model(x))
    model.train_on_batch(x, y)
    return out, [_np(w) for w in model.weights]


def test_remat_and_checkpointed_rnn_match_the_plain_path(rng):
    x = rng.normal(size=(4, 9, 2)).astype("float32")
    y = rng.integers(0, 3, 4)
    # The ANRU-specific paths, with return_sequences: the remat cell, and CheckpointedRNN with 2
    # segments and 1 step left. Whole segments and the last-state-only path are CheckpointedRNN's
    # own, tested with every segmenting in test_checkpointed_rnn.py (each compiled training step
    # costs ~10 s under TensorFlow).
    reference, *others = [
        _trained(keras.layers.RNN, False, True, x, y),
        _trained(keras.layers.RNN, True, True, x, y),
        _trained(CheckpointedRNN, True, True, x, y, segment_length=4),
    ]
    for out, weights in others:
        np.testing.assert_allclose(out, reference[0], rtol=1e-5, atol=1e-6)
        for a, b in zip(weights, reference[1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for return_sequences in (True, False):
        outs = []
        for rnn, kwargs in ((keras.layers.RNN, {}), (CheckpointedRNN, {"segment_length": 2})):
            keras.utils.set_random_seed(7)
            cell = ANRUCell(5, controller_units=3)
            layer = rnn(cell, go_backwards=True, return_sequences=return_sequences, **kwargs)
            outs.append(_np(layer(x)))
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)


def test_stateful_and_masking(rng):
    x = rng.normal(size=(2, 6, 1)).astype("float32")
    full = _model(ANRUCell(4, controller_units=2), 6, 1, return_sequences=True)
    inputs = keras.Input((3, 1), batch_size=2)
    rnn = keras.layers.RNN(ANRUCell(4, controller_units=2), stateful=True, return_sequences=True)
    stateful = keras.Model(inputs, rnn(inputs))
    stateful.set_weights(full.get_weights())
    halves = np.concatenate([_np(stateful(x[:, :3])), _np(stateful(x[:, 3:]))], axis=1)
    np.testing.assert_allclose(halves, _np(full(x)), rtol=1e-4, atol=1e-5)

    cell = ANRUCell(4, controller_units=2)
    inputs = keras.Input((6, 1))
    masked = keras.Model(inputs, keras.layers.RNN(cell)(keras.layers.Masking(0.0)(inputs)))
    padded = x.copy()
    padded[:, 4:] = 0.0
    h, _, _, _ = anru(x[:, :4], _weights(cell))
    np.testing.assert_allclose(_np(masked(padded)), h[:, -1], rtol=1e-4, atol=1e-5)


def test_parameter_view_lists_the_controller():
    cell = ANRUCell(4, controller_units=3)
    model = _model(cell, 2, 1)
    params = activation_parameters(model)
    assert [p.name for p in params] == list(CONTROLLER_PARAMETERS)
    view = ParameterView(model)
    assert view.size == 3 + 9 + 3 + 3 + 1 + 3 + 1
    v = view.get_vector()
    view.set_vector(v + 1.0)
    np.testing.assert_allclose(view.get_vector(), v + 1.0, rtol=1e-6)


def test_saves_and_loads(tmp_path, rng):
    cell = ANRUCell(4, controller_units=3, return_trajectories=True, remat=True)
    model = _model(cell, 5, 2, rnn=CheckpointedRNN, segment_length=2, return_sequences=True)
    path = os.path.join(tmp_path, "anru.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = rng.normal(size=(2, 5, 2)).astype("float32")
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-6, atol=1e-6)
    layer = loaded.layers[-1]
    assert isinstance(layer, CheckpointedRNN) and layer.segment_length == 2
    assert layer.cell.get_config() == cell.get_config()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"units": 0}, "units"),
        ({"units": -1}, "units"),
        ({"units": 3.0}, "units"),
        ({"units": 4, "controller_units": 0}, "controller_units"),
        ({"units": 4, "controller_units": -5}, "controller_units"),
        ({"units": 4, "n_min": 0.0}, "n_min"),
        ({"units": 4, "n_min": "x"}, "n_min"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ANRUCell(**kwargs)


def test_checkpointed_rnn_bad_arguments():
    with pytest.raises(ValueError, match="segment_length"):
        CheckpointedRNN(ANRUCell(2), segment_length=0)
    with pytest.raises(ValueError, match="unroll"):
        CheckpointedRNN(ANRUCell(2), unroll=True)


_FLOAT64 = """
import sys
import keras, numpy as np
sys.path.insert(0, sys.argv[1])
from helpers.rnn_reference import anru
from keras_bioact.layers import ANRUCell
from keras_bioact.layers.anru_cell import CONTROLLER_PARAMETERS
keras.config.set_dtype_policy("float64")
cell = ANRUCell(4, controller_units=3)
rnn = keras.layers.RNN(cell, return_sequences=True)
x = np.random.default_rng(0).normal(size=(2, 5, 1)).astype("float32").astype("float64")
out = keras.ops.convert_to_numpy(rnn(x))
names = ("kernel", "recurrent_kernel", "bias") + CONTROLLER_PARAMETERS
w = {n: keras.ops.convert_to_numpy(getattr(cell, n)) for n in names}
ref = anru(x, w)[0]
assert out.dtype == np.float64, out.dtype
print(float(np.max(np.abs(out - ref))))
"""


def test_float64_policy_runs_in_float64():
    """A float64 ANRU (JAX with x64 enabled included) keeps float64 states and matches float64 NumPy."""
    import subprocess
    import sys

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, for `helpers`
    env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONPATH": os.path.dirname(here)}
    r = subprocess.run(
        [sys.executable, "-c", _FLOAT64, here], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    # torch: Keras' torch backend rounds some float64 constants through float32 (about 1e-7)
    tolerance = 1e-6 if keras.backend.backend() == "torch" else 1e-12
    assert float(r.stdout.strip().splitlines()[-1]) < tolerance
