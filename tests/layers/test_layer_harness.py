"""Keras's own layer conformance harness (`keras.src.testing.TestCase.run_layer_test`) on every
layer of `keras_bioact.layers.__all__`, cells inside `keras.layers.RNN`: config and
serialization round trips, build, symbolic and eager calls, one training step (jit "auto") and
the mixed-precision check. One table, one row per configuration."""

import keras
import numpy as np
import pytest
from absl.testing import parameterized
from helpers.testing import BACKEND, eru_ref, gamma_ref, oru_ref, to_numpy
from keras import ops
from keras.src import testing

import keras_bioact.layers as layers
from keras_bioact.layers import (
    BRU,
    ActivationAdapter,
    ANRUCell,
    CheckpointedRNN,
    FeedForward,
    GammaActivation,
    GammaRNNCell,
    InnerNonlinearity,
    LearnableSwish,
    PreactivationDrive,
    SinusoidalRescaling,
    TabulatedInner,
    TwoArgConv2D,
    TwoArgDense,
    TwoArgFeedForward,
)


def _in_rnn(rnn_class, cell_class, **rnn_kwargs):
    """A layer factory for the harness: `rnn_class(cell_class(**cell_kwargs))`. The dtype policy
    goes to the cell and to the RNN (as `keras.layers.SimpleRNN` does for its cell), so the
    harness's mixed-precision check reaches the cell; `from_config` is `rnn_class`'s own."""

    def make(dtype=None, **cell_kwargs):
        return rnn_class(cell_class(dtype=dtype, **cell_kwargs), dtype=dtype, **rnn_kwargs)

    make.__name__ = f"{rnn_class.__name__}({cell_class.__name__})"
    make.covers = (rnn_class, cell_class)
    return make


def _config(layer):
    return keras.saving.serialize_keras_object(layer)


_X_GAMMA = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]], dtype="float32")
_X_BRU = np.array([[-1.0, 0.0, 2.0, -3.0]], dtype="float32")

# name -> (layer class or factory, run_layer_test keyword arguments).
CASES = {
    "gamma_heterogeneous": (GammaActivation, dict(
        init_kwargs={"n_initializer": 2.0, "s_initializer": "zeros", "n_regularizer": "l2",
                     "s_constraint": "unit", "shared_axes": 1},
        input_shape=(2, 3, 4), expected_output_shape=(2, 3, 4), expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0, expected_num_losses=1, supports_masking=True)),
    "gamma_static": (GammaActivation, dict(
        init_kwargs={"n_initializer": 1.5, "s_initializer": 0.25, "trainable_params": ()},
        input_shape=(2, 5), expected_output_shape=(2, 5), expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=2, supports_masking=True)),
    "gamma_homogeneous_feature_map": (GammaActivation, dict(
        init_kwargs={"shared_axes": "all", "trainable_params": ("n",)},
        input_shape=(2, 3, 3, 2), expected_output_shape=(2, 3, 3, 2), expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=1, supports_masking=True)),
    "gamma_expected_output": (GammaActivation, dict(
        init_kwargs={"n_initializer": 2.0, "s_initializer": 0.3}, input_data=_X_GAMMA,
        expected_output=ops.convert_to_tensor(gamma_ref(_X_GAMMA, 2.0, 0.3).astype("float32")),
        supports_masking=True)),
    "bru_fixed": (BRU, dict(
        init_kwargs={"form": "eru", "r": 2.0}, input_shape=(2, 3, 4), expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=0, expected_num_non_trainable_weights=1, supports_masking=True)),
    "bru_fixed_below_one": (BRU, dict(
        init_kwargs={"form": "oru", "r": 0.5}, input_shape=(2, 6), expected_output_shape=(2, 6),
        expected_num_trainable_weights=0, expected_num_non_trainable_weights=1)),
    "bru_trainable_per_channel": (BRU, dict(
        init_kwargs={"form": "oru", "r": 1.5, "trainable_r": True, "shared_axes": [1, 2],
                     "r_regularizer": "l2"},
        input_shape=(2, 3, 3, 2), expected_output_shape=(2, 3, 3, 2), expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0, expected_num_losses=1, supports_masking=True)),
    "bru_eru_expected_output": (BRU, dict(
        init_kwargs={"form": "eru", "r": 2.0}, input_data=_X_BRU,
        expected_output=ops.convert_to_tensor(eru_ref(_X_BRU, 2.0).astype("float32")))),
    "bru_oru_expected_output": (BRU, dict(
        init_kwargs={"form": "oru", "r": 2.0}, input_data=_X_BRU,
        expected_output=ops.convert_to_tensor(oru_ref(_X_BRU, 2.0).astype("float32")))),
    "learnable_swish": (LearnableSwish, dict(
        init_kwargs={"beta_initializer": 1.5, "shared_axes": [1, 2]}, input_shape=(2, 3, 3, 2),
        expected_output_shape=(2, 3, 3, 2), expected_num_trainable_weights=1)),
    "activation_adapter": (ActivationAdapter, dict(
        init_kwargs={"unit": _config(GammaActivation(n_initializer=3.0, s_initializer=1.0)),
                     "gate": True, "max_value": 6.0, "slope": 0.1},
        input_shape=(2, 5), expected_output_shape=(2, 5), expected_num_trainable_weights=2,
        supports_masking=True)),
    "activation_adapter_corrected": (ActivationAdapter, dict(
        init_kwargs={"unit": _config(GammaActivation(n_initializer=1.0, s_initializer=1.0)), "gate": True,
                     "correction": {"activation": "gelu", "n": 1.0, "s": 1.0}},
        input_shape=(2, 5), expected_output_shape=(2, 5), expected_num_trainable_weights=2)),
    "inner_nonlinearity": (InnerNonlinearity, dict(
        init_kwargs={"arity": 2, "hidden_units": (8, 4), "kernel_regularizer": "l2"},
        input_shape=(2, 3, 2), expected_output_shape=(2, 3, 1), expected_num_trainable_weights=6,
        expected_num_losses=3)),
    "tabulated_inner": (TabulatedInner, dict(
        init_kwargs={"inner": _config(InnerNonlinearity(hidden_units=(4,))), "grid": 9, "bound": 1.0},
        input_shape=(2, 3, 2), expected_output_shape=(2, 3, 1), expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=5)),
    "two_arg_dense": (TwoArgDense, dict(
        init_kwargs={"units": 6, "dropout": 0.25, "seed": 1, "kernel_regularizer": "l2"},
        input_shape=(2, 3, 4), expected_output_shape=(2, 3, 6), expected_num_trainable_weights=8,
        expected_num_losses=1, expected_num_seed_generators=1)),
    "two_arg_dense_one_arg_split": (TwoArgDense, dict(
        init_kwargs={"units": 3, "arity": 1, "pairing": "split", "normalize": False, "use_bias": False},
        input_shape=(2, 4), expected_output_shape=(2, 3), expected_num_trainable_weights=7)),
    "two_arg_dense_shared_inner": (TwoArgDense, dict(
        init_kwargs={"units": 2, "inner": _config(InnerNonlinearity(hidden_units=(4,)))},
        input_shape=(2, 4), expected_output_shape=(2, 2), expected_num_trainable_weights=6)),
    "two_arg_conv2d": (TwoArgConv2D, dict(
        init_kwargs={"filters": 3, "kernel_size": 2, "padding": "same", "dropout": 0.25, "seed": 2},
        input_shape=(2, 4, 4, 2), expected_output_shape=(2, 4, 4, 3), expected_num_trainable_weights=8,
        expected_num_seed_generators=1)),
    "two_arg_conv2d_split_strided": (TwoArgConv2D, dict(
        init_kwargs={"filters": 2, "kernel_size": (3, 2), "strides": 2, "pairing": "split"},
        input_shape=(2, 7, 6, 3), expected_output_shape=(2, 3, 3, 2), expected_num_trainable_weights=8)),
    "two_arg_feed_forward_tokens": (TwoArgFeedForward, dict(
        init_kwargs={"hidden": 4, "dropout": 0.25, "seed": 1, "kernel_regularizer": "l2",
                     "inner": _config(InnerNonlinearity(hidden_units=(4,)))},
        input_shape=(2, 3, 5), expected_output_shape=(2, 3, 5), expected_num_trainable_weights=8,
        expected_num_losses=2, expected_num_seed_generators=1)),
    "two_arg_feed_forward_grouped": (TwoArgFeedForward, dict(
        init_kwargs={"hidden": 6, "groups": 3, "output_dim": 2, "pairing": "split", "use_bias": False},
        input_shape=(2, 4), expected_output_shape=(2, 2), expected_num_trainable_weights=8)),
    "two_arg_feed_forward_one_arg": (TwoArgFeedForward, dict(
        init_kwargs={"hidden": 3, "arity": 1, "normalize": False, "output_kernel_initializer": "zeros"},
        input_shape=(2, 2, 4), expected_output_shape=(2, 2, 4), expected_num_trainable_weights=10)),
    "feed_forward_plain": (FeedForward, dict(
        init_kwargs={"hidden": 6, "activation": "relu", "dropout": 0.25, "seed": 1,
                     "bias_regularizer": "l2"},
        input_shape=(2, 3, 4), expected_output_shape=(2, 3, 4), expected_num_trainable_weights=4,
        expected_num_losses=2, expected_num_seed_generators=1)),
    "feed_forward_swiglu": (FeedForward, dict(
        init_kwargs={"hidden": 5, "activation": "silu", "gated": True, "output_dim": 3, "use_bias": False},
        input_shape=(2, 4), expected_output_shape=(2, 3), expected_num_trainable_weights=2)),
    "preactivation_drive_step": (PreactivationDrive, dict(
        init_kwargs={"units": 3, "strength": 2.0, "start": 1, "length": 2}, input_shape=(2, 5, 4),
        expected_output_shape=(2, 5, 7), expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=1, supports_masking=True)),
    "preactivation_drive_gaussian": (PreactivationDrive, dict(
        init_kwargs={"units": 2, "kind": "gaussian", "seed": 3, "start": 0, "length": 3},
        input_shape=(2, 5, 1), expected_output_shape=(2, 5, 3), expected_num_seed_generators=1)),
    "sinusoidal_rescaling": (SinusoidalRescaling, dict(
        init_kwargs={"amplitude": 0.5, "frequency": 2.0, "phase": 0.3}, input_shape=(2, 6, 3),
        expected_output_shape=(2, 6, 3), expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=1, supports_masking=True)),
    "gamma_rnn_cell_heterogeneous": (_in_rnn(keras.layers.RNN, GammaRNNCell, return_sequences=True), dict(
        init_kwargs={"units": 4, "n_regularizer": "l2"}, input_shape=(2, 5, 3),
        expected_output_shape=(2, 5, 4), expected_num_trainable_weights=5)),
    "gamma_rnn_cell_static_drive": (_in_rnn(keras.layers.RNN, GammaRNNCell), dict(
        init_kwargs={"units": 3, "regime": "static", "n": 2.0, "s": 0.5, "drive_input": True},
        input_shape=(2, 4, 5), expected_output_shape=(2, 3), expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=2)),
    "gamma_rnn_cell_relu": (_in_rnn(keras.layers.RNN, GammaRNNCell), dict(
        init_kwargs={"units": 3, "activation": "relu"}, input_shape=(2, 4, 2),
        expected_output_shape=(2, 3), expected_num_trainable_weights=3)),
    "anru_cell": (_in_rnn(keras.layers.RNN, ANRUCell), dict(
        init_kwargs={"units": 8, "controller_units": 3}, input_shape=(2, 5, 3),
        expected_output_shape=(2, 8), expected_num_trainable_weights=10)),
    "anru_cell_trajectories_remat": (_in_rnn(keras.layers.RNN, ANRUCell, return_sequences=True), dict(
        init_kwargs={"units": 2, "controller_units": 2, "return_trajectories": True, "remat": True},
        input_shape=(2, 4, 1), expected_output_shape=(2, 4, 6), expected_num_trainable_weights=10)),
    "checkpointed_rnn_anru": (_in_rnn(CheckpointedRNN, ANRUCell, segment_length=2, return_sequences=True),
                              dict(init_kwargs={"units": 3, "controller_units": 2, "remat": True},
                                   input_shape=(2, 5, 2), expected_output_shape=(2, 5, 3),
                                   expected_num_trainable_weights=10)),
    "checkpointed_rnn_gamma": (_in_rnn(CheckpointedRNN, GammaRNNCell, segment_length=3), dict(
        init_kwargs={"units": 4}, input_shape=(2, 7, 2), expected_output_shape=(2, 4),
        expected_num_trainable_weights=5)),
}


def _cuda():
    import torch

    return torch.cuda.is_available()


class LayerHarnessTest(testing.TestCase):
    @parameterized.named_parameters(*[(name, name) for name in CASES])
    def test_run_layer_test(self, name):
        layer_cls, kwargs = CASES[name]
        self.run_layer_test(layer_cls, run_training_check=True, run_mixed_precision_check=True, **kwargs)


@pytest.mark.single_backend
def test_every_layer_and_cell_is_in_the_table():
    covered = {c.__name__ for cls, _ in CASES.values() for c in getattr(cls, "covers", (cls,))}
    assert set(layers.__all__) <= covered, set(layers.__all__) - covered


@pytest.mark.skipif(BACKEND != "torch" or _cuda(), reason="run_layer_test checks this itself")
def test_mixed_precision_policy_on_torch_cpu():
    """`run_layer_test` skips its mixed-precision check on torch without CUDA: the same check
    here (under `mixed_float16` the output has the compute dtype, the weights stay float32)."""
    for name, (layer_cls, kwargs) in CASES.items():
        layer = layer_cls(**{**kwargs["init_kwargs"], "dtype": "mixed_float16"})
        data = kwargs.get("input_data")
        if data is None:
            data = np.random.default_rng(0).normal(size=kwargs["input_shape"]).astype("float32")
        y = layer(data)
        assert keras.backend.standardize_dtype(y.dtype) == "float16", (name, y.dtype)
        assert np.isfinite(to_numpy(ops.cast(y, "float32"))).all(), name
        for w in layer.weights:
            dtype = keras.backend.standardize_dtype(w.dtype)
            assert "float" not in dtype or dtype == "float32", (name, w.path, dtype)
