import keras
from keras import constraints, initializers, regularizers

from keras_bioact import ops as bioact_ops
from keras_bioact.initializers import GammaGain
from keras_bioact.layers import _params

_PARAMS = ("n", "s")


@keras.saving.register_keras_serializable(package="keras_bioact")
class GammaActivation(keras.layers.Layer):
    """Learnable gamma activation of Geadah et al. (adaptive activations in RNNs).

    Formula:
    ```python
    f(x) = (1 - s) * softplus(n * x) / n + s * sigmoid(n * x)
    ```
    with a learned gain `n > 0` and saturation `s` per neuron. `s = 0` gives a softplus
    of gain `n` (ReLU as `n` grows), `s = 1` a logistic `sigmoid(n x)` (a step as `n` grows),
    intermediate `s` interpolates, and `s > 1` makes it non-monotonic.

    Parameter sharing follows `keras.layers.PReLU`: by default every element of
    `input_shape[1:]` has its own pair (the papers' "heterogeneous" regime);
    `shared_axes=[1, 2]` on `(batch, H, W, C)` feature maps gives one pair per channel, and
    `shared_axes="all"` one pair for the layer ("homogeneous"). `trainable_params=()` keeps
    both fixed ("static").

    `n` is kept above a floor by `n_constraint` (default `Bounds(min_value=0.01)`), applied
    after each optimizer update, so the layer never divides by a vanishing gain. `s` is free
    by default, as in the papers (learned `s` drifts outside [0, 1]); pass
    `s_constraint="unit"` to clip it to [0, 1]. Parameters are stored in the variable
    dtype (float32 under mixed precision) and the formula is evaluated in float32 for
    float16/bfloat16 inputs; the output has the compute dtype.

    Args:
        n_initializer: initializer of the gain `n`, or a number. Default: the papers'
            `n0 = 5 + 2 U(0, 1)` (`keras_bioact.initializers.GammaGain`). Must produce `n > 0`.
        s_initializer: initializer of the saturation `s`, or a number. Default `"zeros"`.
        n_regularizer: optional regularizer for `n`.
        s_regularizer: optional regularizer for `s`.
        n_constraint: constraint for `n`; default keeps `n >= 0.01`.
        s_constraint: constraint for `s`; default `None` (free); `"unit"` clips to [0, 1].
        shared_axes: axes of the input along which parameters are shared; `None`
            (per element), an int, a list of ints, or `"all"` (one pair for the layer).
        trainable_params: which of `"n"`, `"s"` are learned; `()` for a static activation.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    bioact_parameters = _PARAMS

    def __init__(
        self,
        n_initializer=None,
        s_initializer="zeros",
        n_regularizer=None,
        s_regularizer=None,
        n_constraint="positive",
        s_constraint=None,
        shared_axes=None,
        trainable_params=_PARAMS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.supports_masking = True
        self.n_initializer = _params.initializer(
            GammaGain() if n_initializer is None else n_initializer, "n_initializer", name, minimum=0.0
        )
        self.s_initializer = _params.initializer(s_initializer, "s_initializer", name)
        self.n_regularizer = _params.regularizer(n_regularizer, "n_regularizer", name)
        self.s_regularizer = _params.regularizer(s_regularizer, "s_regularizer", name)
        self.n_constraint = _params.constraint(n_constraint, "n_constraint", name)
        self.s_constraint = _params.constraint(s_constraint, "s_constraint", name)
        self.shared_axes = _params.normalize_shared_axes(shared_axes, name)
        if isinstance(trainable_params, str):
            trainable_params = (trainable_params,)
        unknown = [p for p in trainable_params if p not in _PARAMS]
        if unknown:
            raise ValueError(
                f"{name}: `trainable_params` must be a subset of {_PARAMS}, got unknown {unknown}."
            )
        self.trainable_params = tuple(p for p in _PARAMS if p in trainable_params)

    def build(self, input_shape):
        shape = _params.param_shape(input_shape, self.shared_axes, type(self).__name__)
        self.n = self.add_weight(
            shape=shape,
            name="n",
            initializer=self.n_initializer,
            regularizer=self.n_regularizer,
            constraint=self.n_constraint,
            trainable="n" in self.trainable_params,
            autocast=False,
        )
        self.s = self.add_weight(
            shape=shape,
            name="s",
            initializer=self.s_initializer,
            regularizer=self.s_regularizer,
            constraint=self.s_constraint,
            trainable="s" in self.trainable_params,
            autocast=False,
        )

    def call(self, inputs):
        return bioact_ops._trained_gamma(inputs, self.n, self.s)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "n_initializer": initializers.serialize(self.n_initializer),
                "s_initializer": initializers.serialize(self.s_initializer),
                "n_regularizer": regularizers.serialize(self.n_regularizer),
                "s_regularizer": regularizers.serialize(self.s_regularizer),
                "n_constraint": constraints.serialize(self.n_constraint),
                "s_constraint": constraints.serialize(self.s_constraint),
                "shared_axes": self.shared_axes,
                "trainable_params": list(self.trainable_params),
            }
        )
        return config
