"""`keras_bioact.convert`: replacing activations of existing models (runs on every backend)."""

import math
import warnings

import keras
import numpy as np
import pytest
from keras import layers as L

import keras_bioact
from keras_bioact.conversion import SUPPORTED_ACTIVATIONS, ConversionReport
from keras_bioact.layers import BRU, GammaActivation
from keras_bioact.params import ParameterView


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _mlp(activations=("relu", "tanh", "sigmoid", "softplus")):
    layers = [keras.Input((10,))]
    for act in activations:
        layers.append(L.Dense(12, activation=act))
    layers.append(L.Dense(3, activation="softmax"))
    return keras.Sequential(layers, name="mlp")


def _bioact_layers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (GammaActivation, BRU))
    ]


def _cnn():
    inputs = keras.Input((10, 10, 1), name="image")
    h = L.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    h = L.MaxPooling2D()(h)
    h = L.Conv2D(6, 3, name="conv_b")(h)
    h = L.ReLU(name="relu_b")(h)
    h = L.Flatten()(h)
    head = keras.Sequential(
        [keras.Input((h.shape[-1],)), L.Dense(8, activation="sigmoid", name="head_dense")], name="head"
    )
    h = head(h)
    block_in = keras.Input((8,))
    block_out = L.Activation("tanh", name="block_tanh")(L.Dense(8, name="block_dense")(block_in))
    block = keras.Model(block_in, block_out, name="block")
    h = block(h)
    outputs = L.Dense(3, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name="cnn")


def test_sequential_mlp_gamma_match():
    model = _mlp()
    x = _x((16, 10))
    new, report = keras_bioact.convert(model, probe_data=x, relu_gain=20.0, return_report=True)
    assert isinstance(report, ConversionReport)
    assert new is not model and new.bioact_conversion_report is report
    assert [c.activation for c in report.converted] == ["relu", "tanh", "sigmoid", "softplus"]
    assert all(c.source == "argument" for c in report.converted)
    by_act = {c.activation: c for c in report.converted}
    # ReLU -> gamma(n=20, s=0): deviation ln2/20 at x = 0.
    assert by_act["relu"].max_deviation == pytest.approx(math.log(2) / 20, rel=1e-3)
    assert by_act["relu"].parameters == {"n": 20.0, "s": 0.0}
    for act in ("tanh", "sigmoid", "softplus"):
        assert by_act[act].max_deviation < 1e-5, act
    assert by_act["tanh"].affine == (2.0, -1.0)
    assert len(report.skipped) == 1 and "'softmax'" in report.skipped[0][1]
    # Weights copied, original untouched, predictions close.
    np.testing.assert_array_equal(new.get_layer(model.layers[0].name).kernel, model.layers[0].kernel)
    assert model.layers[0].activation is keras.activations.relu
    assert new.get_layer(model.layers[0].name).activation is keras.activations.linear
    assert report.output_deviation < 0.02
    np.testing.assert_allclose(_np(new(x)), _np(model(x)), atol=0.02)
    assert len(_bioact_layers(new)) == 4
    assert "max deviation" in str(report)


def test_exact_conversions_match_to_float_precision():
    model = _mlp(("tanh", "sigmoid", "softplus"))
    x = _x((16, 10))
    new, report = keras_bioact.convert(model, probe_data=x, return_report=True)
    assert report.max_deviation < 1e-5
    np.testing.assert_allclose(_np(new(x)), _np(model(x)), atol=1e-5)


def test_bru_family_elu_is_exact_and_far_matches_warn():
    model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="elu"), L.ELU(), L.Dense(2)])
    x = _x((8, 6))
    new, report = keras_bioact.convert(model, family="bru", probe_data=x, return_report=True)
    assert [(c.form, c.parameters["r"]) for c in report.converted] == [("eru", 1.0), ("eru", 1.0)]
    assert report.converted[1].source == "layer"
    assert report.max_deviation < 1e-5
    np.testing.assert_allclose(_np(new(x)), _np(model(x)), atol=1e-5)
    assert all(layer.trainable_r for layer in _bioact_layers(new))
    relu_model = _mlp(("relu",))
    with pytest.warns(UserWarning, match="start far from the original"):
        keras_bioact.convert(relu_model, family="bru")


@pytest.fixture(scope="module")
def cnn():
    """A small functional CNN with a nested Sequential and a nested functional model, converted once."""
    keras.utils.set_random_seed(0)
    model = _cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = _x((4, 10, 10, 1))
    new, report = keras_bioact.convert(model, probe_data=x, return_report=True)
    return model, new, report, x


def test_functional_cnn_with_nested_models(cnn):
    model, new, report, x = cnn
    paths = [c.path for c in report.converted]
    assert paths == ["cnn/conv_a", "cnn/relu_b", "cnn/head/head_dense", "cnn/block/block_tanh"]
    assert [c.source for c in report.converted] == ["argument", "layer", "argument", "layer"]
    # Nested models stay nested, and are converted.
    assert isinstance(new.get_layer("head"), keras.Sequential)
    assert isinstance(new.get_layer("head").get_layer("head_dense_gamma"), GammaActivation)
    assert isinstance(new.get_layer("block").get_layer("block_tanh_gamma"), GammaActivation)
    assert new.layers[0].name == "image"
    # Per-channel parameters for conv feature maps.
    assert tuple(new.get_layer("conv_a_gamma").n.shape) == (1, 1, 4)
    assert report.output_deviation < 0.02
    np.testing.assert_allclose(_np(new(x)), _np(model(x)), atol=0.02)
    # All other weights copied (nested ones too).
    np.testing.assert_array_equal(
        _np(new.get_layer("block").get_layer("block_dense").kernel),
        _np(model.get_layer("block").get_layer("block_dense").kernel),
    )


def test_converted_model_saves_and_loads(cnn, tmp_path):
    _, new, _, x = cnn
    assert new.compiled  # compiled from the original's compile config
    path = tmp_path / "converted.keras"
    new.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(_np(loaded(x)), _np(new(x)), atol=1e-6)
    assert len(_bioact_layers(loaded)) == 4


def test_parameter_vector_round_trip_on_converted_model(cnn):
    view = ParameterView(cnn[1])
    assert view.size == sum(p.size for p in view.parameters) == 2 * (4 + 6 + 8 + 8)
    for space in ("natural", "unconstrained"):
        v = view.get_vector(space)
        view.set_vector(v, space)
        np.testing.assert_array_equal(view.get_vector(space), v)


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_where_selects_layers(cnn):
    model = cnn[0]
    by_name = keras_bioact.convert(model, where=["conv_a", "head"], return_report=True)[1]
    assert [c.path for c in by_name.converted] == ["cnn/conv_a", "cnn/head/head_dense"]
    assert ("cnn/relu_b", "not selected by `where`") in by_name.skipped
    by_type = keras_bioact.convert(model, where=L.Conv2D, return_report=True)[1]
    assert [c.path for c in by_type.converted] == ["cnn/conv_a"]
    starts_with_block = lambda layer: layer.name.startswith("block")
    by_fn = keras_bioact.convert(model, where=starts_with_block, return_report=True)
    assert [c.path for c in by_fn[1].converted] == ["cnn/block/block_tanh"]
    by_act = keras_bioact.convert(model, activations=("sigmoid",), return_report=True)[1]
    assert [c.activation for c in by_act.converted] == ["sigmoid"]
    with pytest.raises(ValueError, match="match no layer"):
        keras_bioact.convert(model, where=["no_such_layer"])


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_unsupported_models_and_arguments_get_clear_errors():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(4, activation="relu")

        def call(self, x):
            return self.dense(x)

    sub = Subclassed()
    sub(np.zeros((1, 3), "float32"))
    with pytest.raises(TypeError, match="subclassed.*Sequential"):
        keras_bioact.convert(sub)
    with pytest.raises(ValueError, match="not built"):
        keras_bioact.convert(keras.Sequential([L.Dense(3, activation="relu")]))
    model = _mlp(("relu",))
    with pytest.raises(ValueError, match="family"):
        keras_bioact.convert(model, family="swish")
    with pytest.raises(ValueError, match="init"):
        keras_bioact.convert(model, init="random")
    with pytest.raises(ValueError, match="activations"):
        keras_bioact.convert(model, activations=("softmax",))
    with pytest.raises(ValueError, match="relu_gain"):
        keras_bioact.convert(model, relu_gain=0)
    with pytest.raises(ValueError, match="tolerance"):
        keras_bioact.convert(model, tolerance=1.5)
    with pytest.raises(ValueError, match="sharing"):
        keras_bioact.convert(model, sharing="neuron")


@pytest.mark.single_backend
def test_deprecated_convert_module_reexports_with_a_warning():
    import keras_bioact.conversion as conversion

    new_home = r"keras_bioact\.convert\.ConversionReport.*keras_bioact\.conversion"
    with pytest.warns(DeprecationWarning, match=new_home):
        from keras_bioact.convert import ConversionReport as old_report
    with pytest.warns(DeprecationWarning, match="deprecated"):
        from keras_bioact.convert import convert as old_convert
    assert old_report is ConversionReport and old_convert is conversion.convert
    # Importing the old module does not replace the function `keras_bioact.convert`.
    assert keras_bioact.convert is conversion.convert and callable(keras_bioact.convert)
    assert keras_bioact.ConversionReport is ConversionReport
    with pytest.raises(ImportError, match="Converter"):
        from keras_bioact.convert import Converter  # noqa: F401


@pytest.mark.single_backend
def test_convert_rules_are_registered_per_family():
    from keras_bioact.conversion import ConvertRule, get_rule, register_rule

    rule = get_rule("gamma")
    assert rule.calibrates and rule.trial is not None and get_rule("bru").default_sharing == "all"
    with pytest.raises(ValueError, match="unknown activation family 'nope'"):
        register_rule("nope", rule)
    with pytest.raises(ValueError, match="already has a convert rule"):
        register_rule("gamma", rule)
    with pytest.raises(TypeError, match="must be a ConvertRule"):
        register_rule("two_arg", {"make": None})
    with pytest.raises(ValueError, match=r"`family` must be one of \('gamma', 'bru', 'learnable_swish'\)"):
        get_rule("two_arg")
    assert isinstance(rule, ConvertRule)


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_unsupported_activations_are_skipped_with_reason():
    model = keras.Sequential(
        [
            keras.Input((5,)),
            L.Dense(4, activation="exponential"),
            L.ReLU(threshold=0.5),
            L.ELU(alpha=0.5),
            L.Dense(2, activation="relu"),
        ]
    )
    report = keras_bioact.convert(model, return_report=True)[1]
    assert len(report.converted) == 1
    reasons = " ".join(reason for _, reason in report.skipped)
    assert "'exponential'" in reasons and "relu(threshold=0.5)" in reasons and "elu(alpha=0.5)" in reasons


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_nothing_replaced_warns_loudly():
    model = keras.Sequential([keras.Input((5,)), L.Dense(4, activation="softmax")])
    with pytest.warns(UserWarning, match="NO activation"):
        keras_bioact.convert(model)


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_recurrent_activation_is_reported_not_converted():
    model = keras.Sequential([keras.Input((4, 3)), L.SimpleRNN(5, activation="tanh"), L.Dense(2)])
    with pytest.warns(UserWarning, match="NO activation"):
        new, report = keras_bioact.convert(model, return_report=True)
    assert report.converted == []
    assert "inside SimpleRNN" in report.skipped[0][1]
    assert isinstance(new.layers[0], L.SimpleRNN) and new.layers[0].activation is keras.activations.tanh


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_init_default_and_sharing_options(cnn):
    model = cnn[0]
    with pytest.warns(UserWarning, match="start far"):
        new, report = keras_bioact.convert(model, init="default", sharing="all", return_report=True)
    layer = new.get_layer("conv_a_gamma")
    assert tuple(layer.n.shape) == ()
    n = float(keras.ops.convert_to_numpy(layer.n))
    assert 5.0 <= n <= 7.0  # GammaGain default
    assert report.converted[0].max_deviation > 0.05
    element = keras_bioact.convert(model, sharing="element", where=["conv_a"])
    assert tuple(element.get_layer("conv_a_gamma").n.shape) == (8, 8, 4)
    frozen = keras_bioact.convert(model, trainable=False)
    assert all(not v.trainable for layer in _bioact_layers(frozen) for v in layer.weights)


def test_training_improves_after_conversion_and_parameters_move():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype("int32") + (x[:, 2] > 1).astype("int32")
    model = _mlp(("relu", "relu"))
    new = keras_bioact.convert(model)
    new.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    view = ParameterView(new)
    before_params = view.get_vector()
    before = new.evaluate(x, y, verbose=0)
    new.fit(x, y, batch_size=64, epochs=15, verbose=0)
    after = new.evaluate(x, y, verbose=0)
    assert after < 0.8 * before
    assert not np.allclose(view.get_vector(), before_params)


def test_every_supported_activation_starts_exactly():
    model = keras.Sequential(
        [keras.Input((6,))]
        + [L.Dense(6, activation=a, name=f"d_{a}") for a in SUPPORTED_ACTIVATIONS]
        + [L.LeakyReLU(0.3, name="leaky"), L.ReLU(max_value=4.0, name="capped"), L.Dense(3)],
        name="zoo",
    )
    x = _x((32, 6), seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no deviation warning: every start is exact
        # Deep in this untrained chain of 25 layers the pre-activations are near-constant (std
        # ~1e-5): the gains of the last ReLU-likes stay at the bound, which is warned about
        # (tested in test_degenerate_probe_warns_naming_the_layer_and_the_gain_stays_bounded).
        warnings.filterwarnings("ignore", "convert: the probe inputs are degenerate", UserWarning)
        new, report = keras_bioact.convert(model, probe_data=x, return_report=True)
    labels = [c.activation for c in report.converted]
    expected = [a if a != "leaky_relu" else "leaky_relu(negative_slope=0.2)" for a in SUPPORTED_ACTIVATIONS]
    assert labels == [*expected, "leaky_relu(negative_slope=0.3)", "relu(max_value=4)"]
    assert report.skipped == []
    assert report.relative_output_deviation <= 0.01
    assert all(c.relative_deviation <= 0.01 for c in report.converted)
    # Exact replacements (no ReLU-like kink): float32 precision on [-5, 5].
    smooth = (
        "sigmoid",
        "softplus",
        "tanh",
        "silu",
        "gelu",
        "mish",
        "elu",
        "celu",
        "selu",
        "log_sigmoid",
        "tanh_shrink",
        "softsign",
        "squareplus",
        "sparse_plus",
    )
    assert all(c.max_deviation < 1e-5 for c in report.converted if c.activation in smooth)
    by_act = {c.activation: c for c in report.converted}
    assert by_act["silu"].composition == "x*gamma(x)" and by_act["relu6"].composition == "min(gamma(x), 6)"
    np.testing.assert_allclose(_np(new(x)), _np(model(x)), atol=0.01 * float(np.std(_np(model(x)))))


def test_calibrated_gain_follows_the_scale_of_the_preactivations():
    inputs = keras.Input((8,))
    small = L.Dense(8, activation="relu", name="small")(L.Rescaling(1e-3)(inputs))
    large = L.Dense(8, activation="relu", name="large")(L.Rescaling(1e2)(inputs))
    model = keras.Model(inputs, L.Concatenate()([small, large]))
    report = keras_bioact.convert(model, probe_data=_x((64, 8), seed=4), return_report=True)[1]
    gains = {c.path.split("/")[-1]: c.parameters["n"] for c in report.converted}
    low = lambda v: float(str(v).split("..")[0])
    # n ~ ln2 / (0.5 % of std): ~1e5 times larger for pre-activations 1e5 times smaller.
    assert low(gains["small"]) > 1e4 * low(gains["large"])
    assert report.relative_output_deviation <= 0.01


def test_degenerate_probe_warns_naming_the_layer_and_the_gain_stays_bounded():
    from keras_bioact.conversion._calibrate import GAIN_BOUND

    inputs = keras.Input((6,))
    ok = L.Dense(8, activation="relu", name="ok")(inputs)
    # Zero variance: a zero kernel makes every pre-activation the constant bias.
    flat = L.Dense(8, activation="relu", name="flat", kernel_initializer="zeros", bias_initializer="ones")(ok)
    # Near-constant: pre-activations of std ~1e-9 asked for gains ~1e11 before the bound.
    tiny = L.Dense(8, activation="relu", name="tiny")(L.Rescaling(1e-9)(inputs))
    model = keras.Model(inputs, L.Dense(2)(L.Concatenate()([ok, flat, tiny])), name="probed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        new, report = keras_bioact.convert(model, probe_data=_x((16, 6), seed=5), return_report=True)
    gains = {c.path.split("/")[-1]: _np(new.get_layer(c.new_layer).n) for c in report.converted}
    assert all(0 < g.min() and g.max() <= GAIN_BOUND for g in gains.values()), gains
    assert gains["ok"].max() < GAIN_BOUND  # calibrated, not bounded
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    (message,) = [m for m in messages if "probe inputs are degenerate" in m]
    assert "probed/flat (relu): 8 of 8 gain(s), zero spread" in message
    assert "probed/tiny (relu): 8 of 8 gain(s), std <= " in message
    assert "probed/ok" not in message
    by_name = {c.path.split("/")[-1]: c for c in report.converted}
    assert by_name["ok"].degenerate is None and by_name["flat"].degenerate[:2] == (8, 8)
    assert "degenerate probe for 8 of 8 gain(s)" in str(report)
    # The honest price of the bound: the tiny layer no longer starts exactly on its 1e-9 scale.
    assert any("move by more than" in m and "probed/tiny" in m for m in messages)


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_without_default_probe_falls_back_with_a_warning():
    model = keras.Sequential(
        [keras.Input((4,), dtype="int32"), L.Embedding(10, 8), L.Dense(4, activation="relu")]
    )
    with pytest.warns(UserWarning, match="probe_data"):
        report = keras_bioact.convert(model, return_report=True)[1]
    assert report.converted[0].parameters["n"] == 20.0 and report.output_deviation is None


@pytest.mark.single_backend  # errors, options and reports: plain Python
def test_activation_adapter_checks_its_arguments():
    from keras_bioact.layers import ActivationAdapter

    with pytest.raises(ValueError, match="`unit` must be a keras Layer"):
        ActivationAdapter("gamma")
    with pytest.raises(ValueError, match="`max_value` must be a finite number"):
        ActivationAdapter(GammaActivation(), max_value="6")
    with pytest.raises(ValueError, match="`correction` must be None or a dict"):
        ActivationAdapter(GammaActivation(), correction={"activation": "gelu"})
    with pytest.raises(ValueError, match=r"`correction\['n'\]` must be > 0"):
        ActivationAdapter(GammaActivation(), correction={"activation": "gelu", "n": 0.0, "s": 1.0})
    # relu6 = min(gamma(x; n, 0), 6) as n grows; silu = x * gamma(x; 1, 1) exactly.
    x = np.linspace(-8, 8, 33, dtype="float32")[None, :]
    relu6 = ActivationAdapter(GammaActivation(n_initializer=1e6), max_value=6.0)
    np.testing.assert_allclose(_np(relu6(x)), np.clip(x, 0, 6), atol=1e-5)
    silu = ActivationAdapter(GammaActivation(n_initializer=1.0, s_initializer=1.0), gate=True)
    np.testing.assert_allclose(_np(silu(x)), _np(keras.activations.silu(x)), atol=1e-5)
