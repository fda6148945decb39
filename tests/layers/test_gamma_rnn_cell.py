import os

import keras
import numpy as np
import pytest
from helpers.rnn_reference import elman
from keras import ops

from keras_bioact.constraints import Bounds
from keras_bioact.initializers import Henaff, KaimingNormal
from keras_bioact.layers import GammaRNNCell
from keras_bioact.params import activation_parameters


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _ref(cell, x, **kwargs):
    return elman(
        x, _np(cell.kernel), _np(cell.recurrent_kernel), _np(cell.bias), _np(cell.n), _np(cell.s), **kwargs
    )


def _model(cell, steps, features, **rnn_kwargs):
    inputs = keras.Input((steps, features))
    return keras.Model(inputs, keras.layers.RNN(cell, **rnn_kwargs)(inputs))


@pytest.mark.parametrize("regime", ["heterogeneous", "homogeneous", "static"])
def test_matches_numpy_reference(regime, rng):
    cell = GammaRNNCell(5, regime=regime, bias_initializer="random_normal")
    model = _model(cell, 7, 3, return_sequences=True)
    if regime == "heterogeneous":
        cell.n.assign(rng.uniform(0.5, 8.0, 5).astype("float32"))
        cell.s.assign(rng.uniform(-0.2, 1.2, 5).astype("float32"))
        assert cell.n.shape == (5,)
    else:
        cell.n.assign(2.5)
        cell.s.assign(0.3)
        assert cell.n.shape == ()
    x = rng.normal(size=(4, 7, 3)).astype("float32")
    got = _np(model(x))
    np.testing.assert_allclose(got, _ref(cell, x), rtol=1e-4, atol=1e-5)


def test_relu_baseline_and_no_bias(rng):
    cell = GammaRNNCell(4, activation="relu", use_bias=False)
    model = _model(cell, 5, 2)
    assert cell.bioact_parameters == ()
    assert not hasattr(cell, "n")
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    want = elman(x, _np(cell.kernel), _np(cell.recurrent_kernel), 0.0, activation=lambda a: np.maximum(a, 0))
    np.testing.assert_allclose(_np(model(x)), want[:, -1], rtol=1e-4, atol=1e-5)


def test_default_initialisation():
    cell = GammaRNNCell(64)
    _model(cell, 3, 16)
    n = _np(cell.n)
    assert n.shape == (64,) and np.all((n >= 5) & (n <= 7))
    np.testing.assert_array_equal(_np(cell.s), 0.0)
    r = _np(cell.recurrent_kernel)
    np.testing.assert_allclose(r @ r.T, np.eye(64), atol=1e-5)
    assert isinstance(cell.recurrent_initializer, Henaff)
    assert isinstance(cell.kernel_initializer, KaimingNormal)
    assert isinstance(cell.n.constraint, Bounds) and cell.n.constraint.min_value == 0.01


def test_regimes_trainability_and_parameter_view():
    het = GammaRNNCell(3)
    hom = GammaRNNCell(3, regime="homogeneous", n=2.0, s=0.5)
    static = GammaRNNCell(3, regime="static", n=4.0)
    inputs = keras.Input((4, 2))
    x = keras.layers.RNN(het, return_sequences=True)(inputs)
    x = keras.layers.RNN(hom, return_sequences=True)(x)
    x = keras.layers.RNN(static)(x)
    model = keras.Model(inputs, x)
    params = activation_parameters(model)
    assert [(p.layer.name, p.name, p.shape) for p in params] == [
        (het.name, "n", (3,)), (het.name, "s", (3,)),
        (hom.name, "n", ()), (hom.name, "s", ()),
        (static.name, "n", ()), (static.name, "s", ()),
    ]
    assert [p.variable.trainable for p in params] == [True, True, True, True, False, False]
    assert params[0].low == 0.01 and params[0].high is None
    assert float(_np(hom.n)) == 2.0 and float(_np(static.n)) == 4.0


def test_training_with_jit_compile_updates_parameters_and_keeps_n_positive(rng):
    inputs = keras.Input((6, 2))
    het = GammaRNNCell(8, n=0.5)
    static = GammaRNNCell(8, regime="static", n=3.0, s=0.2)
    h = keras.layers.RNN(het, return_sequences=True)(inputs)
    h = keras.layers.RNN(static)(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=keras.backend.backend() != "torch" or None,
    )
    x = rng.normal(size=(16, 6, 2)).astype("float32")
    y = rng.integers(0, 2, 16)
    n0, s0 = _np(het.n), _np(het.s)
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.any(_np(het.n) != n0) and np.any(_np(het.s) != s0)
    assert np.all(_np(het.n) >= 0.01 - 1e-7)
    np.testing.assert_allclose(_np(het.n.constraint(ops.convert_to_tensor([-1.0, 2.0]))), [0.01, 2.0])
    assert float(_np(static.n)) == 3.0 and abs(float(_np(static.s)) - 0.2) < 1e-7


def test_return_state_masking_and_stateful(rng):
    cell = GammaRNNCell(4, regime="homogeneous")
    inputs = keras.Input((6, 2))
    masked = keras.layers.Masking(0.0)(inputs)
    seq, state = keras.layers.RNN(cell, return_sequences=True, return_state=True)(masked)
    model = keras.Model(inputs, [seq, state])
    x = rng.normal(size=(2, 6, 2)).astype("float32")
    x[0, 3:] = 0.0  # padded tail of example 0
    seq, state = (_np(t) for t in model(x))
    want = _ref(cell, x[:1, :3])
    np.testing.assert_allclose(seq[0, :3], want[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(seq[0, 3:], np.repeat(want[:, -1], 3, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state[0], want[0, -1], rtol=1e-4, atol=1e-5)

    full_model = _model(GammaRNNCell(4), 6, 2, return_sequences=True)
    inputs = keras.Input((3, 2), batch_size=2)
    rnn = keras.layers.RNN(GammaRNNCell(4), stateful=True, return_sequences=True)
    stateful = keras.Model(inputs, rnn(inputs))
    stateful.set_weights(full_model.get_weights())
    x = rng.normal(size=(2, 6, 2)).astype("float32")
    halves = np.concatenate([_np(stateful(x[:, :3])), _np(stateful(x[:, 3:]))], axis=1)
    np.testing.assert_allclose(halves, _np(full_model(x)), rtol=1e-4, atol=1e-5)


def test_drive_input_is_added_to_the_preactivation(rng):
    cell = GammaRNNCell(3, drive_input=True)
    model = _model(cell, 5, 2 + 3, return_sequences=True)
    assert tuple(cell.kernel.shape) == (2, 3)
    x = rng.normal(size=(2, 5, 2)).astype("float32")
    drive = rng.normal(size=(2, 5, 3)).astype("float32")
    got = _np(model(np.concatenate([x, drive], -1)))
    np.testing.assert_allclose(got, _ref(cell, x, drive=drive), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="drive_input"):
        _model(GammaRNNCell(3, drive_input=True), 5, 3)


def test_saves_and_loads(tmp_path, rng):
    cell = GammaRNNCell(4, regime="homogeneous", s_constraint="unit", recurrent_initializer=Henaff(seed=3))
    model = _model(cell, 5, 2, return_sequences=True)
    path = os.path.join(tmp_path, "gamma_rnn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = rng.normal(size=(2, 5, 2)).astype("float32")
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-6, atol=1e-6)
    lcell = loaded.layers[-1].cell
    assert isinstance(lcell, GammaRNNCell) and lcell.regime == "homogeneous"
    assert lcell.get_config() == cell.get_config()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"units": 0}, "units"),
        ({"units": -3}, "units"),
        ({"units": 2.5}, "units"),
        ({"units": True}, "units"),
        ({"units": 4, "regime": "adaptive"}, "regime"),
        ({"units": 4, "n": 0.0}, "`n`"),
        ({"units": 4, "n": -1.0}, "`n`"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GammaRNNCell(**kwargs)


def test_henaff_initializer():
    w = _np(Henaff(seed=5)((10, 10)))
    np.testing.assert_allclose(w @ w.T, np.eye(10), atol=1e-6)
    theta = np.arctan2(np.diag(w, 1)[::2], np.diag(w)[::2])
    assert np.all((theta > -np.pi) & (theta < 0))
    np.testing.assert_array_equal(w, _np(Henaff(seed=5)((10, 10))))
    assert w[-1, -1] == 1.0 or _np(Henaff(seed=1)((7, 7)))[-1, -1] == 1.0
    np.testing.assert_allclose(_np(Henaff(seed=1)((7, 7)))[-1], np.eye(7)[-1])
    init = keras.initializers.deserialize(keras.initializers.serialize(Henaff(seed=5)))
    np.testing.assert_array_equal(_np(init((10, 10))), w)
    with pytest.raises(ValueError, match="square"):
        Henaff()((3, 4))
