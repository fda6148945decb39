"""`CheckpointedRNN` against `keras.layers.RNN` with a generic two-state cell (LSTM)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_bioact.layers import CheckpointedRNN

JIT = keras.backend.backend() != "torch"  # XLA on TF and JAX; torch stays eager


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _model(rnn_class, steps, **kwargs):
    inputs = keras.Input((steps, 2))
    outs = rnn_class(keras.layers.LSTMCell(5), **kwargs)(inputs)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    flat = [keras.layers.Flatten()(o) if len(o.shape) > 2 else o for o in outs]
    merged = keras.layers.Concatenate()(flat) if len(flat) > 1 else flat[0]
    return keras.Model(inputs, keras.layers.Dense(3)(merged))


@pytest.mark.parametrize(
    "segment_length, kwargs, jit",
    [
        (3, {"return_sequences": True}, JIT),  # 9 steps: 3 whole segments
        (4, {"return_state": True}, JIT),  # 2 segments and 1 step left
        (4, {"return_sequences": True, "return_state": True, "go_backwards": True}, JIT),
        (2, {"return_sequences": True, "return_state": True}, False),
    ],
)
def test_outputs_and_one_training_step_match_keras_rnn(rng, segment_length, kwargs, jit):
    x = rng.normal(size=(4, 9, 2)).astype("float32")
    y = rng.integers(0, 3, 4)
    results = []
    reference = None
    for rnn_class, extra in ((keras.layers.RNN, {}), (CheckpointedRNN, {"segment_length": segment_length})):
        model = _model(rnn_class, 9, **kwargs, **extra)
        if reference is None:
            reference = model.get_weights()
        else:
            model.set_weights(reference)
        model.compile(
            keras.optimizers.SGD(0.5),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
        out = _np(model.predict_on_batch(x))
        model.train_on_batch(x, y)  # equal updates <=> equal gradients (SGD)
        results.append((out, [_np(w) for w in model.weights]))
    (out0, w0), (out1, w1) = results
    np.testing.assert_allclose(out1, out0, rtol=1e-5, atol=1e-6)
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(w0, reference, strict=True))  # it trained
    for a, b in zip(w1, w0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_stateful_carries_state_like_keras_rnn(rng):
    x = rng.normal(size=(2, 8, 2)).astype("float32")
    outs = []
    reference = None
    for rnn_class, extra in ((keras.layers.RNN, {}), (CheckpointedRNN, {"segment_length": 3})):
        inputs = keras.Input((4, 2), batch_size=2)
        layer = rnn_class(keras.layers.LSTMCell(3), stateful=True, return_sequences=True, **extra)
        model = keras.Model(inputs, layer(inputs))
        if reference is None:
            reference = model.get_weights()
        else:
            model.set_weights(reference)
        outs.append(np.concatenate([_np(model(x[:, :4])), _np(model(x[:, 4:]))], axis=1))
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)
