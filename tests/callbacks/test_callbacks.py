"""ActivationInspector: event files read back with TensorBoard's EventAccumulator (all backends)."""

import glob
import os
import warnings

import keras
import numpy as np
import pytest

from keras_bioact import BRU, GammaActivation
from keras_bioact.callbacks import ActivationInspector, SummaryWriter

pytest.importorskip("tensorboard")
pytest.importorskip("matplotlib")


def _accumulator(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(path, size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _data(n=64, d=16, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0).astype("int32")
    return x, y % k


def _model():
    inner = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8), BRU(trainable_r=True, shared_axes=None, name="bru")],
        name="inner",
    )
    inputs = keras.Input((16,))
    h = keras.layers.Dense(8)(inputs)
    h = GammaActivation(name="gamma")(h)
    h = inner(h)
    h = keras.layers.Dense(80)(h)
    h = GammaActivation(shared_axes=None, name="wide_gamma")(h)  # 80 neurons > max_lines: bands
    outputs = keras.layers.Dense(3)(h)
    return keras.Model(inputs, outputs)


def _fit(model, callbacks, epochs=2):
    x, y = _data()
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # Compiled training (XLA) on JAX and TF; torch.compile on CPU is far too slow for the suite.
        jit_compile=keras.backend.backend() != "torch",
    )
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)


EXPECTED = {
    "gamma": ("n", "s"),
    "bru": ("r",),
    "wide_gamma": ("n", "s"),
}


def test_inspector_writes_every_kind_of_summary(tmp_path):
    model = _model()
    cb = ActivationInspector(tmp_path, images_every_n_epochs=1, max_overhead=None, max_lines=64)
    _fit(model, [cb], epochs=2)
    assert [i.tag for i in cb.inspected_layers] == ["gamma", "bru", "wide_gamma"]
    files = glob.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
    assert len(files) == 1
    acc = _accumulator(str(tmp_path / "train"))
    tags = acc.Tags()
    for layer, params in EXPECTED.items():
        assert f"bioact/{layer}/curves" in tags["images"]
        for p in params:
            assert f"bioact/{layer}/{p}" in tags["histograms"]
            for stat in ("mean", "std", "min", "max"):
                assert f"bioact/{layer}/{p}/{stat}" in tags["scalars"]
    # Content: the last written values are those of the trained variables.
    by_name = {"gamma": model.get_layer("gamma"), "wide_gamma": model.get_layer("wide_gamma")}
    by_name["bru"] = model.get_layer("inner").get_layer("bru")
    for layer_name, layer in by_name.items():
        for p in EXPECTED[layer_name]:
            value = np.asarray(keras.ops.convert_to_numpy(getattr(layer, p).value), dtype="float64")
            means = acc.Scalars(f"bioact/{layer_name}/{p}/mean")
            assert [e.step for e in means] == [0, 1]
            np.testing.assert_allclose(means[-1].value, value.mean(), rtol=1e-5, atol=1e-6)
            lo = acc.Scalars(f"bioact/{layer_name}/{p}/min")[-1].value
            hi = acc.Scalars(f"bioact/{layer_name}/{p}/max")[-1].value
            assert lo <= means[-1].value <= hi
            hist = acc.Histograms(f"bioact/{layer_name}/{p}")[-1].histogram_value
            assert hist.num == value.size
            assert sum(hist.bucket) == value.size
            np.testing.assert_allclose(hist.sum, value.sum(), rtol=1e-4, atol=1e-5)
    # r is trainable and n, s are trained: the parameters moved between the two epochs.
    r_means = [e.value for e in acc.Scalars("bioact/bru/r/mean")]
    assert r_means[0] != r_means[1]
    for layer in EXPECTED:
        images = acc.Images(f"bioact/{layer}/curves")
        assert [e.step for e in images] == [0, 1]
        assert images[-1].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
        assert images[-1].width == 320 and images[-1].height == 240
        assert len(images[-1].encoded_image_string) > 5000  # a drawn figure, not a blank


def _run_hooks(cb, model, epochs, clock=None, epoch_seconds=1.0):
    """Drive the callback's hooks as `fit` does, without training (fast, deterministic)."""
    cb.set_model(model)
    cb.on_train_begin()
    for epoch in range(epochs):
        cb.on_epoch_begin(epoch)
        if clock is not None:
            clock.t += epoch_seconds
        cb.on_epoch_end(epoch, {"loss": 1.0})
    cb.on_train_end()


def test_inspector_cadence(tmp_path):
    # Scalars every 2nd epoch, images only after the first and the last epoch.
    cb = ActivationInspector(tmp_path, every_n_epochs=2, images_every_n_epochs=None, max_overhead=None)
    _run_hooks(cb, _model(), epochs=5)
    acc = _accumulator(str(tmp_path / "train"))
    assert [e.step for e in acc.Scalars("bioact/gamma/n/mean")] == [0, 1, 3, 4]
    assert [e.step for e in acc.Images("bioact/gamma/curves")] == [0, 4]
    assert [e.step for e in acc.Histograms("bioact/bru/r")] == [0, 1, 3, 4]


def test_inspector_cost_budget(tmp_path, monkeypatch):
    from keras_bioact.callbacks import activation_inspector as module

    class Clock:
        t = 100.0

        @classmethod
        def perf_counter(cls):
            return cls.t

    monkeypatch.setattr(module, "time", Clock)
    cb = ActivationInspector(tmp_path, images=False, max_overhead=0.1)
    write = cb._write_parameters

    def costly_write(step):  # every write "takes" 0.17 s of the fake clock
        write(step)
        Clock.t += 0.17

    cb._write_parameters = costly_write
    _run_hooks(cb, _model(), epochs=10, clock=Clock, epoch_seconds=1.0)
    acc = _accumulator(str(tmp_path / "train"))
    # Epoch 0 compiles and is always written (both left out of the budget); then 1 s epochs,
    # 10 % budget, 0.17 s per write: written at epochs 2, 4, 6, 7 and 9 (the last epoch always).
    assert [e.step for e in acc.Scalars("bioact/gamma/n/mean")] == [0, 2, 4, 6, 7, 9]


def test_inspector_writes_the_first_and_the_last_epoch_whatever_the_budget(tmp_path):
    # A budget no write can afford (a real clock: whether the default 5 % affords a write of
    # a millisecond epoch depends on the machine): nothing in between is written, but the
    # starting and the final shapes are.
    cb = ActivationInspector(tmp_path, images_every_n_epochs=1, max_overhead=1e-9)
    _fit(_model(), [cb], epochs=6)
    acc = _accumulator(str(tmp_path / "train"))
    for tag in ("bioact/gamma/curves", "bioact/bru/curves"):
        assert [e.step for e in acc.Images(tag)] == [0, 5]
    assert [e.step for e in acc.Scalars("bioact/gamma/n/mean")] == [0, 5]


def test_inspector_without_bioact_layers_warns(tmp_path):
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(4), keras.layers.ReLU(), keras.layers.Dense(3)]
    )
    cb = ActivationInspector(tmp_path)
    with pytest.warns(UserWarning, match="no keras-bioact layers"):
        _fit(model, [cb], epochs=1)
    assert not os.path.exists(tmp_path / "train")


def test_inspector_write_outside_fit_and_conv_layers(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3),
            GammaActivation(shared_axes=[1, 2], name="conv_gamma"),
            BRU("oru", r=1.5, name="oru"),
        ]
    )
    cb = ActivationInspector(tmp_path, run_name="eval")
    cb.set_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # backends may emit DeprecationWarnings
        cb.write(step=7)
    cb.close()
    acc = _accumulator(str(tmp_path / "eval"))
    assert acc.Histograms("bioact/conv_gamma/n")[0].histogram_value.num == 4  # one pair per channel
    assert acc.Scalars("bioact/oru/r/max")[0].value == pytest.approx(1.5)
    assert acc.Images("bioact/oru/curves")[0].step == 7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"images_every_n_epochs": -1}, "images_every_n_epochs"),
        ({"input_range": (2, 1)}, "input_range"),
        ({"num_points": 1}, "num_points"),
        ({"references": ("relu", "swish")}, "references"),
        ({"max_overhead": 0}, "max_overhead"),
        ({"surface_range": -1}, "surface_range"),
    ],
)
def test_inspector_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ActivationInspector(tmp_path, **kwargs)


def test_summary_writer_round_trip(tmp_path):
    values = np.array([0.5, 1.0, 1.0, 2.0, np.nan])
    with SummaryWriter(tmp_path) as w:
        w.scalar("a", 1.5, step=3)
        w.write(4, scalars={"a": 2.5}, histograms={"h": values, "const": np.ones(5)})
        w.text("note", "hello", step=0)
    acc = _accumulator(str(tmp_path))
    assert [(e.step, e.value) for e in acc.Scalars("a")] == [(3, 1.5), (4, 2.5)]
    h = acc.Histograms("h")[0].histogram_value
    assert (h.min, h.max, h.num, h.sum) == (0.5, 2.0, 4, 4.5)
    c = acc.Histograms("const")[0].histogram_value
    assert (c.min, c.max, c.num, list(c.bucket)) == (1.0, 1.0, 5, [5.0])
    with pytest.raises(ValueError, match="closed"):
        w.scalar("a", 1.0, step=5)
