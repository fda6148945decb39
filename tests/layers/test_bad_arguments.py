"""Bad arguments raise ValueError naming the argument and its legal range."""

import re

import keras
import pytest

from keras_bioact import layers
from keras_bioact.constraints import Bounds
from keras_bioact.initializers import BRUInitializer, GammaGain, Henaff, KaimingNormal
from keras_bioact.layers import (
    BRU,
    ActivationAdapter,
    ANRUCell,
    CheckpointedRNN,
    ComposedActivation,
    FeedForward,
    GammaActivation,
    GammaRNNCell,
    InnerNonlinearity,
    LearnableSwish,
    MixtureActivation,
    PreactivationDrive,
    SinusoidalRescaling,
    TabulatedInner,
    TwoArgConv2D,
    TwoArgDense,
    TwoArgFeedForward,
)


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -1.0, keras.initializers.Constant(0.0), keras.initializers.Constant(-2.0),
     keras.initializers.RandomUniform(-1.0, 1.0), keras.initializers.RandomUniform(0.0, 1.0), "zeros"],
)
def test_gamma_non_positive_gain_init(value):
    with pytest.raises(ValueError, match=r"n_initializer.*> 0"):
        GammaActivation(n_initializer=value)


@pytest.mark.parametrize(
    "value", [0.5, keras.initializers.Constant(3.0), keras.initializers.RandomUniform(1.0, 2.0), "ones"]
)
def test_gamma_positive_gain_init_accepted(value):
    GammaActivation(n_initializer=value).build((None, 3))


@pytest.mark.parametrize("value", [0, 0.0, -2.0, float("nan"), float("inf"), "2", None, True])
def test_bru_bad_radix(value):
    with pytest.raises(ValueError, match=r"`r`.*> 0"):
        BRU(r=value)


def test_bru_trainable_radix_below_default_floor():
    with pytest.raises(ValueError, match=r"`r`.*>= 1"):
        BRU(r=0.5, trainable_r=True)
    BRU(r=0.5)  # a fixed radix may be < 1


@pytest.mark.parametrize("form", ["elu", "ERU", "", None])
def test_bru_unknown_form(form):
    with pytest.raises(ValueError, match=r"`form`.*'eru', 'oru'"):
        BRU(form=form)


@pytest.mark.parametrize("shared_axes", [0, [0], [1, 0], "channels", 1.5, [1.5], [True], [], ["1"]])
@pytest.mark.parametrize("cls", [GammaActivation, BRU])
def test_malformed_shared_axes_at_construction(cls, shared_axes):
    with pytest.raises(ValueError, match=r"`shared_axes`.*1 \.\. rank-1"):
        cls(shared_axes=shared_axes)


@pytest.mark.parametrize("shared_axes", [3, 4, -3, [1, 3]])
@pytest.mark.parametrize("cls", [GammaActivation, BRU])
def test_shared_axes_out_of_range_at_build(cls, shared_axes):
    layer = cls(shared_axes=shared_axes)
    with pytest.raises(ValueError, match=r"`shared_axes`.*legal axes are 1\.\.2 or -2\.\.-1"):
        layer.build((None, 4, 5))


@pytest.mark.parametrize("names", [("n", "x"), ("gain",), "ns", ("r",)])
def test_wrong_trainable_params(names):
    with pytest.raises(ValueError, match=r"`trainable_params`.*\('n', 's'\)"):
        GammaActivation(trainable_params=names)


@pytest.mark.parametrize("kwargs", [{"r": 0.0}, {"r": -1.0}, {"form": "elu"}])
def test_bru_initializer_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="`r`|`form`"):
        BRUInitializer(**kwargs)


# Every string / identifier argument of every public layer, initializer and constraint class:
# (class, required arguments, argument, bad value, what the message must list as legal).
INIT = r"a number, a keras initializer .* or one of the names .*'glorot_uniform'.*'henaff'.*'zeros'"
CONSTRAINT = r"None, a keras constraint .* or one of the names 'max_norm', .*'non_neg', 'positive', 'unit'"
REGULARIZER = r"None, a keras regularizer .* or one of the names 'l1', 'l2', 'orthogonal_regularizer'"
ACTIVATION = r"None, a callable or one of the names 'celu', .*'relu', .*'tanh'"
NOT_A_CLASS = {"class_name": "NoSuchLayer", "config": {}}
INNER = r"None or a layer with an `arity` attribute of 1 or 2"
TABLE = r"an InnerNonlinearity \(arity 1 or 2\) or its config"


def _identifier_rows(cls, required, kinds):
    return [(cls, required, arg, bad, legal) for arg, (bad, legal) in kinds.items()]


def _inner():
    return InnerNonlinearity(hidden_units=(4,))


_INIT, _REG, _CON = ("foo", INIT), ("l3", REGULARIZER), ("foo", CONSTRAINT)
ROWS = [
    *_identifier_rows(GammaActivation, {}, {
        "n_initializer": _INIT, "s_initializer": _INIT, "n_regularizer": _REG, "s_regularizer": _REG,
        "n_constraint": _CON, "s_constraint": _CON,
        "shared_axes": ("channels", r"None, 'all', or non-zero int axes"),
        "trainable_params": (("gain",), r"a subset of \('n', 's'\)"),
    }),
    *_identifier_rows(BRU, {}, {
        "form": ("elu", r"one of 'eru', 'oru'"), "r_constraint": _CON, "r_regularizer": _REG,
        "shared_axes": ([0], r"None, 'all', or non-zero int axes"),
    }),
    *_identifier_rows(LearnableSwish, {}, {
        "beta_initializer": _INIT, "beta_regularizer": _REG, "beta_constraint": _CON,
        "shared_axes": ("channels", r"None, 'all', or non-zero int axes"),
    }),
    *_identifier_rows(GammaRNNCell, {"units": 2}, {
        "regime": ("mixed", r"one of 'heterogeneous', 'homogeneous', 'static'"),
        "n": _INIT, "s": _INIT, "activation": ("foo", ACTIVATION),
        "kernel_initializer": _INIT, "recurrent_initializer": _INIT, "bias_initializer": _INIT,
        "kernel_regularizer": _REG, "recurrent_regularizer": _REG, "bias_regularizer": _REG,
        "n_regularizer": _REG, "s_regularizer": _REG,
        "kernel_constraint": _CON, "recurrent_constraint": _CON, "bias_constraint": _CON,
        "n_constraint": _CON, "s_constraint": _CON,
    }),
    *_identifier_rows(ANRUCell, {"units": 2}, {
        **{f"{w}_initializer": _INIT for w in (
            "kernel", "recurrent", "bias", "controller_input", "controller_recurrent", "controller_bias",
            "n_kernel", "s_kernel", "n_bias", "s_bias",
        )},
        **{f"{w}_regularizer": _REG for w in ("kernel", "recurrent", "bias", "controller")},
    }),
    *_identifier_rows(InnerNonlinearity, {}, {
        "arity": (3, r"1 or 2"), "activation": ("foo", ACTIVATION),
        "kernel_initializer": _INIT, "bias_initializer": _INIT,
        "kernel_regularizer": _REG, "bias_regularizer": _REG,
    }),
    *[
        row
        for cls, required in ((TwoArgDense, {"units": 2}), (TwoArgConv2D, {"filters": 2, "kernel_size": 3}))
        for row in _identifier_rows(cls, required, {
            "inner": ("g", INNER), "arity": (3, r"1 or 2"),
            "pairing": ("interleaved", r"one of 'adjacent', 'split'"),
            "kernel_initializer": _INIT, "bias_initializer": _INIT,
            "kernel_regularizer": _REG, "bias_regularizer": _REG,
            "kernel_constraint": _CON, "bias_constraint": _CON,
        })
    ],
    (TwoArgDense, {"units": 2}, "inner", NOT_A_CLASS, INNER),
    (TwoArgConv2D, {"filters": 2, "kernel_size": 3}, "padding", "full", r"one of 'valid', 'same'"),
    (TwoArgConv2D, {"filters": 2, "kernel_size": 3}, "data_format", "NHWC",
     r"one of 'channels_last', 'channels_first'"),
    (PreactivationDrive, {"units": 2}, "kind", "uniform", r"one of 'step', 'gaussian'"),
    (TabulatedInner, {"inner": _inner}, "inner", "g", TABLE),
    (TabulatedInner, {"inner": _inner}, "inner", NOT_A_CLASS, TABLE),
    (ActivationAdapter, {"unit": GammaActivation}, "unit", "gamma", r"a keras Layer .* or its config"),
    (ActivationAdapter, {"unit": GammaActivation}, "unit", NOT_A_CLASS, r"a keras Layer .* or its config"),
    (ActivationAdapter, {"unit": GammaActivation}, "correction['activation']",
     {"activation": "foo", "n": 1.0, "s": 0.0}, r"one of 'celu', .*'relu', .*'tanh'"),
    (SinusoidalRescaling, {}, "amplitude", "0.5", r"a finite number"),
    (CheckpointedRNN, {"cell": lambda: GammaRNNCell(2)}, "segment_length", "28", r"a positive integer"),
    (CheckpointedRNN, {}, "cell", "gru", r"should have a `call` method"),  # Keras' own message
    (BRUInitializer, {}, "form", "elu", r"one of 'eru', 'oru'"),
    (BRUInitializer, {}, "distribution", "gaussian", r"one of 'truncated_normal', 'untruncated_normal'"),
    (BRUInitializer, {}, "r", "2", r"a finite number"),
    (GammaGain, {}, "minval", "5", r"a finite number"),
    (GammaGain, {}, "maxval", float("inf"), r"a finite number"),
    (Henaff, {}, "low", "-pi", r"a finite number"),
    (Henaff, {}, "seed", "1", r"an int or None"),
    (KaimingNormal, {}, "seed", "x", r"SeedGenerator\(\)` or an integer"),  # Keras' own message
    (Bounds, {}, "min_value", "0", r"None or a finite number"),
    (Bounds, {}, "max_value", float("nan"), r"None or a finite number"),
    (ComposedActivation, {}, "expression", "foo(x)", r"unknown primitive 'foo' at column 1"),
    (ComposedActivation, {}, "expression", 3, r"must be a string"),
    (ComposedActivation, {"expression": "x"}, "shared_axes", "channels", r"None, 'all', or non-zero int"),
    (MixtureActivation, {}, "candidates", "gelu", r"a non-empty list of names from \('identity', 'relu'"),
    (MixtureActivation, {}, "warm_start", "tanh_x", r"None or one of the candidates"),
    (MixtureActivation, {}, "warm_weight", 1.0, r"a number in \(0, 1\)"),
    (MixtureActivation, {}, "temperature", 0, r"a number in \[0.01, 100\]"),
    *_identifier_rows(FeedForward, {"hidden": 4}, {
        "hidden": (0, r"a positive int"), "activation": ("foo", ACTIVATION), "gated": (1, r"True or False"),
        "output_dim": (-1, r"a positive int"), "dropout": (1.5, r"a number in \[0, 1\)"),
        "kernel_initializer": _INIT, "bias_initializer": _INIT, "kernel_regularizer": _REG,
        "bias_regularizer": _REG, "kernel_constraint": _CON, "bias_constraint": _CON,
    }),
    *_identifier_rows(TwoArgFeedForward, {"hidden": 4}, {
        "hidden": (0, r"a positive int"), "output_dim": (0, r"a positive int"),
        "groups": (0, r"a positive int"),
        "inner": ("g", INNER), "arity": (3, r"1 or 2"), "pairing": ("x", r"one of 'adjacent', 'split'"),
        "epsilon": (0, r"a number > 0"), "dropout": (-0.1, r"a number in \[0, 1\)"),
        "kernel_initializer": _INIT, "output_kernel_initializer": _INIT, "bias_initializer": _INIT,
        "kernel_regularizer": _REG, "bias_regularizer": _REG,
        "kernel_constraint": _CON, "bias_constraint": _CON,
    }),
    (TwoArgFeedForward, {"hidden": 4}, "groups", 3, r"a positive int that divides `hidden`=4"),
]


def _construct(cls, required, arg, value):
    kwargs = {k: v() if callable(v) else v for k, v in required.items()}  # factories: fresh objects
    return cls(**{**kwargs, arg.split("[")[0]: value})  # "correction['activation']" -> correction


@pytest.mark.parametrize(
    "cls, required, arg, bad, legal",
    ROWS,
    ids=[f"{row[0].__name__}-{row[2]}-{row[3]!r}"[:80] for row in ROWS],
)
def test_bad_argument_names_itself_and_its_legal_values(cls, required, arg, bad, legal):
    with pytest.raises(ValueError) as info:
        _construct(cls, required, arg, bad)
    message = str(info.value)
    assert f"`{arg}`" in message, message
    assert re.search(legal, message), message
    keras_message = (cls is CheckpointedRNN and arg == "cell") or cls is KaimingNormal
    assert keras_message or message.startswith(f"{cls.__name__}: `{arg}` must be "), message


def test_every_public_layer_has_rows():
    assert {row[0].__name__ for row in ROWS} >= set(layers.__all__)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: GammaActivation(s_initializer=v),
        lambda v: GammaActivation(s_constraint=v),
        lambda v: BRU(r_regularizer=v),
        lambda v: GammaRNNCell(2, activation=v),
    ],
    ids=["initializer", "constraint", "regularizer", "activation"],
)
def test_every_listed_name_is_accepted(make):
    with pytest.raises(ValueError) as info:
        make("no_such_name")
    names = re.findall(r"'(\w+)'", str(info.value).split("one of the names")[1].split(", got")[0])
    assert len(names) >= 3
    for name in names:
        make(name)
