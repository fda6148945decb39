"""`keras_bioact.convert` on real-world architectures (every backend, weights=None).

Sizes, chosen to keep this module short (measured on the 2 shared cores at load average ~3.5:
TensorFlow 12 s + 22 s for the real applications, torch 16 s + 29 s, JAX 87 s, as JAX compiles
every eager op on its first use): the full
`keras.applications` take 10-35 s each just to build here (and MobileNetV2(alpha=0.35) at 32x32
~30 s more to convert under JAX, mostly first-call op compilation), so the tests use small
functional models at 32x32 built from the same blocks, two blocks each:
- `mobilenetv2`: inverted residuals with `ReLU(6.)` layers (MobileNetV2);
- `resnet`: bottlenecks Conv-BN-Activation("relu") with `Add` (ResNet50);
- `densenet`: BN-relu-Conv with `Concatenate`, a transition (DenseNet121);
- `efficientnet`: MBConv with Activation("swish"), depthwise conv, squeeze-excitation with
  Conv2D(activation="swish"/"sigmoid") and `Multiply`, Dropout, `Add` (EfficientNetB0);
- `convnext`: depthwise 7x7, LayerNorm, Dense + Activation("gelu"), layer scale and residual as
  `x + y * 0.5` and a `keras.ops.mean` head, i.e. op nodes (ConvNeXtTiny);
- `transformer`: MultiHeadAttention, `x + y`, LayerNorm, Dense(activation="gelu"), `ops.mean`
  on (8 tokens, 16 features).
The real MobileNetV2(alpha=0.35) and ConvNeXtTiny at 32x32 are converted too under TensorFlow
and torch (~10 s each); under JAX they are skipped for time, and all five real applications are
measured by `benchmarks/convert_applications.py`. Under JAX the per-architecture tests also run
on two of the six (`JAX_ARCHITECTURES`: the `min(gamma, 6)` adapters and the gelu correction,
attention and op nodes), which cost 166 s of the JAX pass with all six; the conversion itself does
not depend on the backend, and every architecture runs under TensorFlow and torch. Each model is built
and converted once per module; the output check uses fresh inputs, not the calibration probe.
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


def _mobilenetv2():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = L.ReLU(6.0)(L.BatchNormalization()(x))
    for _ in range(2):  # inverted residual blocks
        y = L.Conv2D(32, 1, use_bias=False)(x)
        y = L.ReLU(6.0)(L.BatchNormalization()(y))
        y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
        y = L.ReLU(6.0)(L.BatchNormalization()(y))
        y = L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(y))
        x = L.Add()([x, y])
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="mobilenetv2_like")


def _resnet():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = _conv_bn(inputs, 32, 3, strides=2)
    for _ in range(2):  # bottleneck blocks
        y = _conv_bn(x, 8, 1)
        y = _conv_bn(y, 8, 3)
        y = _conv_bn(y, 32, 1, act=None)
        x = L.Activation("relu")(L.Add()([x, y]))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="resnet_like")


def _densenet():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = _conv_bn(inputs, 8, 3, strides=2)
    for _ in range(2):  # dense block layers
        y = L.Activation("relu")(L.BatchNormalization()(x))
        y = L.Conv2D(16, 1, use_bias=False)(y)
        y = L.Activation("relu")(L.BatchNormalization()(y))
        y = L.Conv2D(8, 3, padding="same", use_bias=False)(y)
        x = L.Concatenate()([x, y])
    x = L.Activation("relu")(L.BatchNormalization()(x))
    x = L.AveragePooling2D(2)(L.Conv2D(8, 1)(x))  # transition
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="densenet_like")


def _efficientnet():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = L.Rescaling(0.5)(inputs)
    x = _conv_bn(x, 16, 3, act="swish", strides=2)
    for _ in range(2):  # MBConv blocks
        y = _conv_bn(x, 32, 1, act="swish")
        y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
        y = L.Activation("swish")(L.BatchNormalization()(y))
        se = L.Reshape((1, 1, 32))(L.GlobalAveragePooling2D()(y))
        se = L.Conv2D(4, 1, activation="swish")(se)
        se = L.Conv2D(32, 1, activation="sigmoid")(se)
        y = L.Multiply()([y, se])
        y = _conv_bn(y, 16, 1, act=None)
        x = L.Add()([L.Dropout(0.1)(y), x])
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


JAX_ARCHITECTURES = ("mobilenetv2", "transformer")
ARCHITECTURES = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            keras.backend.backend() == "jax" and name not in JAX_ARCHITECTURES,
            reason=f"under JAX only {', '.join(JAX_ARCHITECTURES)} (first-use op compilation)",
        ),
    )
    for name in BUILDERS
]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_application_is_converted_and_starts_exactly(converted, name):
    model, new, report, x, messages = converted(name)
    assert {c.activation for c in report.converted} == ACTIVATIONS[name]
    assert report.skipped == []  # classifiers are linear here: every activation is replaced
    assert len(report.converted) >= 1
    if name == "mobilenetv2":  # ReLU(6.) -> min(gamma(x; n, 0), 6)
        assert len(report.converted) == 5
        assert all(isinstance(new.get_layer(c.new_layer), ActivationAdapter) for c in report.converted)
    # Outputs stay within 1 % of their scale, on fresh inputs too.
    assert report.relative_output_deviation <= 0.01, str(report)
    assert _relative(new(x, training=False), model(x, training=False)) <= 0.01
    assert report.max_deviation < 1e-5 or name in ("mobilenetv2", "resnet", "densenet")
    if name in ("transformer", "convnext"):  # gelu: x * gamma(x; n, s) + a fixed correction
        assert all("gelu(x) - same" in c.composition for c in report.converted)
    assert not messages, messages


def test_inexact_start_warns_naming_the_layers(converted):
    model = converted("transformer")[0]
    with pytest.warns(UserWarning, match=r"transformer_block/dense \(gelu\): \d"):
        report = keras_bioact.convert(model, exact=False, return_report=True)[1]
    (gelu,) = report.converted
    assert gelu.composition == "x*gamma(x)" and 0.01 < gelu.max_deviation < 0.02  # 0.0144 on [-5, 5]
    assert gelu.relative_deviation > 0.01


# Adapters (x * gamma(x), min(gamma, 6), fixed correction), op nodes, MultiHeadAttention.
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_converted_application_saves_loads_and_trains(converted, name, tmp_path):
    _, new, _, x, _ = converted(name)
    path = tmp_path / f"{name}.keras"
    new.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        _np(loaded(x, training=False)), _np(new(x, training=False)), rtol=1e-5, atol=1e-6
    )
    # One training step moves the activation parameters and keeps the loss finite.
    loaded.compile(optimizer=keras.optimizers.SGD(1e-2), loss="mse")
    units = [layer for layer in loaded._flatten_layers() if isinstance(layer, GammaActivation)]
    before = [_np(u.s).copy() for u in units]
    y = np.random.default_rng(2).normal(size=tuple(new.output.shape[1:])).astype("float32")
    loss = loaded.train_on_batch(x, np.broadcast_to(y, (len(x), *y.shape)))
    assert np.isfinite(loss)
    assert any(not np.array_equal(_np(u.s), b) for u, b in zip(units, before, strict=True))


SKIP_FULL_APPLICATIONS_UNDER_JAX = pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="the full applications take 30+ s each to build and convert under JAX on this machine "
    "(first-use op compilation); benchmarks/convert_applications.py measures them there",
)


@SKIP_FULL_APPLICATIONS_UNDER_JAX
def test_real_application_converts_exactly():
    model = keras.applications.ConvNeXtTiny(
        input_shape=(SIZE, SIZE, 3), weights=None, classifier_activation=None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a crash, a skip or a deviation would show here
        new, report = keras_bioact.convert(model, return_report=True)
    assert report.skipped == [] and len(report.converted) == 18
    x = np.random.default_rng(1).normal(size=(2, SIZE, SIZE, 3)).astype("float32")
    assert _relative(new(x, training=False), model(x, training=False)) <= 0.01


@SKIP_FULL_APPLICATIONS_UNDER_JAX
def test_untrained_mobilenetv2_gains_are_bounded_and_its_degenerate_layers_named():
    # Untrained, in inference mode, MobileNetV2's pre-activations shrink through depth to std
    # ~1e-10, which asked for gains up to 2.5e15; they now stop at the bound, with a warning
    # naming those layers (and the start is not exact there: the usual warnings say so).
    from keras_bioact.conversion._calibrate import GAIN_BOUND

    model = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), weights=None, classifier_activation=None, alpha=0.35
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        new, report = keras_bioact.convert(model, return_report=True)
    assert report.skipped == [] and len(report.converted) == 35
    units = [layer for layer in new._flatten_layers() if isinstance(layer, GammaActivation)]
    assert len(units) == 35 and max(float(_np(u.n).max()) for u in units) == pytest.approx(GAIN_BOUND)
    (message,) = [str(w.message) for w in caught if "probe inputs are degenerate" in str(w.message)]
    degenerate = [c.path for c in report.converted if c.degenerate is not None]
    assert "mobilenetv2_0.35_32/out_relu" in degenerate and "mobilenetv2_0.35_32/Conv1_relu" not in degenerate
    assert all(f"{path} (relu6): " in message for path in degenerate), message
    assert "Conv1_relu" not in message


def test_parameter_view_and_evolution_run_on_the_converted_mobilenetv2(converted, tmp_path):
    from keras_bioact.params import ParameterView
    from keras_bioact.search.evolution import evolve

    _, new, report, x, _ = converted("mobilenetv2")
    view = ParameterView(new)
    assert view.size > 0 and len(view.parameters) >= len(report.converted)
    start = view.get_vector()
    view.set_vector(start)
    np.testing.assert_allclose(view.get_vector(), start, rtol=1e-6)
    y = np.random.default_rng(3).integers(0, 10, len(x))
    result = evolve(
        new,
        (x, y),
        target="gamma",
        popsize=4,
        generations=2,
        metric="crossentropy",
        out_dir=str(tmp_path / "evo"),
        progress=False,
        tensorboard=False,
        apply_best=False,
    )
    assert len(result.history) == 2 and np.isfinite(result.best_fitness)
    assert set(result.best_parameters) <= {p.path for p in view.parameters}


def test_recurrent_text_model_head_is_converted_exactly():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,), dtype="int32")
    h = L.LSTM(16)(L.Embedding(50, 8)(inputs))
    h = L.Dense(32, activation="relu")(h)
    model = keras.Model(inputs, L.Dense(3)(h))
    x = np.random.default_rng(0).integers(0, 50, (8, 12)).astype("int32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        new, report = keras_bioact.convert(model, probe_data=x, return_report=True)
    assert [c.activation for c in report.converted] == ["relu"]  # the LSTM's own gates stay
    assert _relative(new(x), model(x)) <= 0.01
