"""`keras_bioact.convert` on real-world architectures (every backend, weights=None).

Sizes, chosen to keep this module well under a minute per backend on 2 CPU cores:
- `mobilenetv2`: the real `keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3),
  weights=None, classifier_activation=None)` (ReLU(6.) layers, 35 activations).
- `resnet`, `densenet`, `efficientnet`, `convnext`: small functional models at 32x32 built from
  the same blocks as ResNet50 (bottlenecks: Conv-BN-Activation("relu"), `Add`), DenseNet121
  (BN-relu-Conv, `Concatenate`), EfficientNetB0 (MBConv: Activation("swish"), depthwise conv,
  squeeze-excitation with Conv2D(activation="swish"/"sigmoid") and `Multiply`) and ConvNeXtTiny
  (depthwise 7x7, LayerNorm, Dense + Activation("gelu"), a layer scale and the residual as
  `x + y` / `keras.ops` on symbolic tensors, i.e. op nodes). The full applications take 10-35 s
  each just to build here; their conversion was measured once with
  `benchmarks/convert_applications.py` (see changes/convert.md).
- `transformer`: a Transformer block (MultiHeadAttention, `x + y`, LayerNorm,
  Dense(activation="gelu"), `keras.ops.mean`) on (8 tokens, 16 features).
Each model is built and converted once per module; the probe for the output check is fresh
data (not the calibration probe).
"""

import warnings

import keras
import numpy as np
import pytest
from keras import layers as L
from keras import ops

import keras_bioact
from keras_bioact.layers import ActivationAdapter, GammaActivation

SIZE = 32


def _conv_bn(x, filters, kernel, act="relu", strides=1):
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.Activation(act)(x) if act else x


def _resnet():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = _conv_bn(inputs, 16, 3, strides=2)
    for filters in (8, 16):
        shortcut = _conv_bn(x, 4 * filters, 1, act=None)
        y = _conv_bn(x, filters, 1)
        y = _conv_bn(y, filters, 3)
        y = _conv_bn(y, 4 * filters, 1, act=None)
        x = L.Activation("relu")(L.Add()([shortcut, y]))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="resnet_like")


def _densenet():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = _conv_bn(inputs, 16, 3, strides=2)
    for _ in range(3):
        y = L.Activation("relu")(L.BatchNormalization()(x))
        y = L.Conv2D(16, 1, use_bias=False)(y)
        y = L.Activation("relu")(L.BatchNormalization()(y))
        y = L.Conv2D(8, 3, padding="same", use_bias=False)(y)
        x = L.Concatenate()([x, y])
    x = L.Activation("relu")(L.BatchNormalization()(x))
    x = L.AveragePooling2D()(L.Conv2D(16, 1)(x))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="densenet_like")


def _efficientnet():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = L.Rescaling(0.5)(inputs)
    x = _conv_bn(x, 16, 3, act="swish", strides=2)
    for expand in (1, 4):
        y = _conv_bn(x, 16 * expand, 1, act="swish") if expand > 1 else x
        y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
        y = L.Activation("swish")(L.BatchNormalization()(y))
        se = L.Reshape((1, 1, 16 * expand))(L.GlobalAveragePooling2D()(y))
        se = L.Conv2D(4, 1, activation="swish")(se)
        se = L.Conv2D(16 * expand, 1, activation="sigmoid")(se)
        y = L.Multiply()([y, se])
        y = _conv_bn(y, 16, 1, act=None)
        x = L.Add()([L.Dropout(0.1)(y), x])
    x = _conv_bn(x, 32, 1, act="swish")
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="efficientnet_like")


def _convnext():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = L.Conv2D(16, 4, strides=4)(inputs)
    x = L.LayerNormalization(epsilon=1e-6)(x)
    for _ in range(2):
        y = L.DepthwiseConv2D(7, padding="same")(x)
        y = L.LayerNormalization(epsilon=1e-6)(y)
        y = L.Dense(64)(y)
        y = L.Activation("gelu")(y)
        y = L.Dense(16)(y)
        x = x + y * 0.5  # op nodes (Multiply, Add), as ConvNeXt's layer scale and residual
    x = ops.mean(x, axis=[1, 2])  # an op node (Mean)
    x = L.LayerNormalization(epsilon=1e-6)(x)
    return keras.Model(inputs, L.Dense(10)(x), name="convnext_like")


def _transformer():
    inputs = keras.Input((8, 16))
    attention = L.MultiHeadAttention(num_heads=2, key_dim=8)(inputs, inputs)
    x = L.LayerNormalization()(inputs + attention)
    y = L.Dense(32, activation="gelu")(x)
    x = L.LayerNormalization()(x + L.Dense(16)(y))
    x = ops.mean(x, axis=1)
    return keras.Model(inputs, L.Dense(4)(x), name="transformer_block")


def _mobilenetv2():
    return keras.applications.MobileNetV2(
        alpha=0.35, input_shape=(SIZE, SIZE, 3), weights=None, classifier_activation=None
    )


BUILDERS = {
    "mobilenetv2": _mobilenetv2,
    "resnet": _resnet,
    "densenet": _densenet,
    "efficientnet": _efficientnet,
    "convnext": _convnext,
    "transformer": _transformer,
}
ACTIVATIONS = {
    "mobilenetv2": {"relu6"},
    "resnet": {"relu"},
    "densenet": {"relu"},
    "efficientnet": {"silu", "sigmoid"},
    "convnext": {"gelu"},
    "transformer": {"gelu"},
}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _relative(a, b):
    return float(np.max(np.abs(_np(a) - _np(b))) / np.std(_np(b)))


@pytest.fixture(scope="module")
def converted():
    cache = {}

    def get(name):
        if name not in cache:
            keras.utils.set_random_seed(0)
            model = BUILDERS[name]()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                new, report = keras_bioact.convert(model, return_report=True)
            shape = tuple(model.input.shape[1:])
            x = np.random.default_rng(1).normal(size=(4, *shape)).astype("float32")
            messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
            cache[name] = model, new, report, x, messages
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(BUILDERS))
def test_application_is_converted_and_starts_exactly(converted, name):
    model, new, report, x, messages = converted(name)
    assert {c.activation for c in report.converted} == ACTIVATIONS[name]
    assert report.skipped == []  # classifiers are linear here: every activation is replaced
    assert len(report.converted) >= 2
    if name == "mobilenetv2":
        assert len(report.converted) == 35
        assert all(isinstance(new.get_layer(c.new_layer), ActivationAdapter) for c in report.converted)
    # Outputs stay within 1 % of their scale, on fresh inputs too.
    assert report.relative_output_deviation <= 0.01, str(report)
    assert _relative(new(x, training=False), model(x, training=False)) <= 0.01
    if name in ("transformer", "convnext"):  # gelu -> x * gamma(x; n, s): inexact, reported per layer
        assert all(0.005 < c.max_deviation < 0.02 for c in report.converted)
    else:
        assert not messages, messages


@pytest.mark.parametrize("name", ["mobilenetv2", "efficientnet", "convnext", "transformer"])
def test_converted_application_saves_loads_and_trains(converted, name, tmp_path):
    _, new, _, x, _ = converted(name)
    path = tmp_path / f"{name}.keras"
    new.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(loaded(x, training=False)), _np(new(x, training=False)), rtol=1e-5, atol=1e-6)
    # One training step moves the activation parameters and keeps the loss finite.
    loaded.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse", jit_compile=False)
    units = [layer for layer in loaded._flatten_layers() if isinstance(layer, GammaActivation)]
    before = [_np(u.s).copy() for u in units]
    y = np.random.default_rng(2).normal(size=tuple(new.output.shape[1:])).astype("float32")
    loss = loaded.train_on_batch(x, np.broadcast_to(y, (len(x), *y.shape)))
    assert np.isfinite(loss)
    assert any(not np.array_equal(_np(u.s), b) for u, b in zip(units, before, strict=True))
