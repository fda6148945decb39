"""ActivationInspector on RNN cells with n_t/s_t trajectories and on two-argument inner nets.

The dispatch is by attributes (duck typing), so these tests use small stand-in layers that follow
the same protocol as keras-bioact's ANRU cell (`return_trajectories` + `split_trajectories`) and
two-argument inner net (`arity == 2`, `(..., 2) -> (..., 1)`).
"""

import importlib.util
import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_bioact import ops as bioact_ops
from keras_bioact.callbacks import ActivationInspector
from keras_bioact.callbacks.inspection import find_layers

pytest.importorskip("tensorboard")
pytest.importorskip("matplotlib")
# the dispatch by attributes is plain Python on stand-in layers: one backend is enough
pytestmark = pytest.mark.single_backend


class AdaptiveCell(keras.layers.Layer):
    """n_t = n_bias + tanh(a_t), s_t = sigmoid(a_t), h_t = gamma(a_t; n_t, s_t)."""

    bioact_parameters = ("n_bias",)

    def __init__(self, units, return_trajectories=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.return_trajectories = return_trajectories
        self.state_size = units
        self.output_size = 3 * units if return_trajectories else units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.n_bias = self.add_weight(
            shape=(self.units,), name="n_bias", initializer=keras.initializers.Constant(3.0)
        )

    def call(self, inputs, states):
        a = ops.matmul(inputs, self.kernel) + 0.5 * states[0]
        n = self.n_bias + ops.tanh(a)
        s = ops.sigmoid(a)
        h = bioact_ops.gamma(a, n, s)
        out = ops.concatenate([h, n, s], axis=-1) if self.return_trajectories else h
        return out, [h]

    @staticmethod
    def split_trajectories(outputs):
        u = outputs.shape[-1] // 3
        return outputs[..., :u], outputs[..., u : 2 * u], outputs[..., 2 * u :]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "return_trajectories": self.return_trajectories}


class ProductInner(keras.layers.Layer):
    """g(a, b) = w * a * b: a perfect soft XOR."""

    arity = 2
    bioact_parameters = ("w",)

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), name="w", initializer="ones")

    def call(self, inputs):
        return self.w * ops.prod(inputs, axis=-1, keepdims=True)


def _accumulator(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(path, size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return acc


def test_rnn_cell_trajectories_on_a_probe_batch(tmp_path):
    T, F, U = 7, 3, 5
    inputs = keras.Input((T, F))
    h = keras.layers.Dense(F)(inputs)  # the probe goes through this first
    h = keras.layers.RNN(AdaptiveCell(U), name="rnn")(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    items = find_layers(model)
    assert [(i.tag, i.kind, i.has_trajectories) for i in items] == [
        ("rnn/" + model.get_layer("rnn").cell.name, "parameters", True)
    ]
    probe = np.random.default_rng(0).normal(size=(4, T, F)).astype("float32")
    cb = ActivationInspector(tmp_path, probe_data=probe, probe_size=3)
    cb.set_model(model)
    cb.write(step=0)
    cb.close()
    acc = _accumulator(str(tmp_path / "train"))
    tag = items[0].tag
    assert f"bioact/{tag}/n_bias" in acc.Tags()["histograms"]
    assert acc.Scalars(f"bioact/{tag}/n_bias/mean")[0].value == pytest.approx(3.0)
    n_hist = acc.Histograms(f"bioact/{tag}/n_t")[0].histogram_value
    s_hist = acc.Histograms(f"bioact/{tag}/s_t")[0].histogram_value
    assert n_hist.num == s_hist.num == 3 * T * U
    assert 2.0 <= n_hist.min <= n_hist.max <= 4.0 and 0.0 < s_hist.min <= s_hist.max < 1.0
    image = acc.Images(f"bioact/{tag}/trajectories")[0]
    assert image.encoded_image_string[:4] == b"\x89PNG" and image.height > 200
    # The trajectories are those of the model's own cell on the probe's RNN input.
    cell = model.get_layer("rnn").cell
    sub = keras.Model(inputs, model.get_layer("rnn").input)
    n_t, s_t = items[0].trajectories(ops.convert_to_numpy(sub(probe[:3])))
    x = ops.convert_to_numpy(sub(probe[:3]))
    kernel = ops.convert_to_numpy(cell.kernel)
    state = np.zeros((3, U))
    a0 = x[:, 0] @ kernel + 0.5 * state
    np.testing.assert_allclose(n_t[:, 0], 3.0 + np.tanh(a0), rtol=1e-4, atol=1e-5)
    assert n_t.shape == s_t.shape == (3, T, U)


def test_rnn_cell_without_probe_uses_a_random_probe(tmp_path):
    model = keras.Sequential([keras.Input((6, 2)), keras.layers.RNN(AdaptiveCell(3), name="rnn")])
    cb = ActivationInspector(tmp_path)
    cb.set_model(model)
    cb.write(step=1)
    cb.close()
    acc = _accumulator(str(tmp_path / "train"))
    tag = "rnn/" + model.get_layer("rnn").cell.name
    assert acc.Histograms(f"bioact/{tag}/n_t")[0].histogram_value.num == 8 * 6 * 3


def test_two_argument_inner_net_surface(tmp_path):
    inner = ProductInner(name="g")
    inputs = keras.Input((4,))
    z = keras.layers.Reshape((2, 2))(keras.layers.Dense(4)(inputs))
    out = keras.layers.Flatten()(inner(z))
    model = keras.Model(inputs, out)
    items = find_layers(model)
    assert [(i.tag, i.kind) for i in items] == [("g", "surface")]
    a, b, g = items[0].surface(lim=2.0, num=21)
    np.testing.assert_allclose(g, np.outer(b, a), rtol=1e-5, atol=1e-6)
    cb = ActivationInspector(tmp_path, surface_range=2.0)
    cb.set_model(model)
    cb.write(step=0)
    cb.close()
    acc = _accumulator(str(tmp_path / "train"))
    assert acc.Images("bioact/g/surface")[0].encoded_image_string[:4] == b"\x89PNG"
    assert acc.Scalars("bioact/g/w/mean")[0].value == pytest.approx(1.0)
    if importlib.util.find_spec("keras_bioact.analysis") is not None:  # two-argument analysis module
        assert acc.Scalars("bioact/g/xor_score")[0].value > 0.9


def test_two_arg_dense_inner_net_and_cli(tmp_path):
    from keras_bioact.cli import main
    from keras_bioact.layers import InnerNonlinearity, TwoArgDense

    inner = InnerNonlinearity(hidden_units=(8,), name="g_shared")
    model = keras.Sequential(
        [keras.Input((6,)), TwoArgDense(4, inner=inner), TwoArgDense(3, inner=inner), keras.layers.Dense(2)]
    )
    items = find_layers(model)
    assert [(i.tag, i.kind) for i in items] == [("g_shared", "surface")]  # shared g found once
    cb = ActivationInspector(tmp_path / "logs")
    cb.set_model(model)
    cb.write(step=0)
    cb.close()
    acc = _accumulator(str(tmp_path / "logs" / "train"))
    from keras_bioact.analysis import xor_score

    score = acc.Scalars("bioact/g_shared/xor_score")[0].value
    assert score == pytest.approx(xor_score(inner).score, abs=1e-6) and 0.0 <= score <= 1.0
    assert acc.Images("bioact/g_shared/surface")[0].encoded_image_string[:4] == b"\x89PNG"
    assert acc.Histograms("bioact/g_shared/kernel_0")[0].histogram_value.num == 2 * 8
    path = str(tmp_path / "m.keras")
    model.save(path)
    out = tmp_path / "figs"
    assert main(["inspect", path, "--out", str(out), "--dpi", "50"]) == 0
    assert sorted(os.listdir(out)) == ["g_shared_surface.png", "summary.json"]


def test_anru_cell_trajectories(tmp_path):
    anru = pytest.importorskip("keras_bioact.layers.anru_cell")  # the ANRU cell (issue 4)
    T, U = 5, 4
    model = keras.Sequential(
        [keras.Input((T, 2)), keras.layers.RNN(anru.ANRUCell(U, controller_units=3), name="anru")]
    )
    probe = np.random.default_rng(1).normal(size=(2, T, 2)).astype("float32")
    cb = ActivationInspector(tmp_path, probe_data=probe)
    cb.set_model(model)
    cb.write(step=0)
    cb.close()
    tag = "anru/" + model.get_layer("anru").cell.name
    acc = _accumulator(str(tmp_path / "train"))
    assert acc.Histograms(f"bioact/{tag}/n_t")[0].histogram_value.num == 2 * T * U
    assert acc.Images(f"bioact/{tag}/trajectories")[0].encoded_image_string[:4] == b"\x89PNG"
    # The copy with return_trajectories=True reproduces the model's own outputs.
    rnn = cb.inspected_layers[0]._clone
    h, _, _ = anru.ANRUCell.split_trajectories(rnn(probe))
    np.testing.assert_allclose(
        ops.convert_to_numpy(h[:, -1]), ops.convert_to_numpy(model(probe)), rtol=1e-5, atol=1e-5
    )
