import keras
from keras import activations, constraints, initializers, ops, regularizers

from keras_bioact.layers import _params, _two_arg


@keras.saving.register_keras_serializable(package="keras_bioact")
class FeedForward(keras.layers.Layer):
    """The transformer feed-forward block, plain or gated (GLU): the baselines of
    `TwoArgFeedForward`.

    For `hidden` = H and model width d:
    ```python
    # gated=False (Vaswani et al. 2017):
    y = act(x @ kernel + bias) @ output_kernel + output_bias
    # gated=True (Shazeer 2020, "GLU Variants Improve Transformer"): one fused kernel (d, 2H)
    z = x @ kernel + bias                      # (..., 2H)
    y = (act(z[..., :H]) * z[..., H:]) @ output_kernel + output_bias
    ```
    With `gated=True`, `activation="gelu"` is GEGLU, `"silu"` SwiGLU, `"relu"` ReGLU and
    `"sigmoid"` the original GLU. It accepts any input of rank >= 2: `(batch, width)` or
    `(batch, tokens, width)`. Weights (`use_bias=True`): `H (d + 1 + d_out) + d_out` plain,
    `H (2 d + 2 + d_out) + d_out` gated, so a gated block of `2/3` the hidden width has
    about the weights of a plain one (Shazeer's matching);
    `keras_bioact.feed_forward.feed_forward_hidden` picks H for a parameter budget.

    Args:
        hidden: hidden width H, positive int.
        activation: activation of the hidden units (of the gate's activated half when
            `gated`), any Keras activation. Default `"gelu"`.
        gated: GLU block (above). Default False.
        output_dim: width of the output, positive int. Default None: the input's last axis.
        dropout: dropout rate on the hidden units, in [0, 1). Default 0.
        use_bias: add `bias` and `output_bias`. Default True.
        kernel_initializer: initializer of both kernels. Default `"glorot_uniform"`.
        bias_initializer: initializer of both biases. Default `"zeros"`.
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint: as in
            `keras.layers.Dense`, applied to both kernels (both biases).
        seed: seed of the dropout noise.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(
        self,
        hidden,
        activation="gelu",
        gated=False,
        output_dim=None,
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.hidden = _two_arg.check_positive_int(hidden, "hidden", name)
        self.activation = _params.activation(activation, "activation", name)
        if not isinstance(gated, bool):
            raise ValueError(f"{name}: `gated` must be True or False, got {gated!r}.")
        self.gated = gated
        if output_dim is not None:
            output_dim = _two_arg.check_positive_int(output_dim, "output_dim", name)
        self.output_dim = output_dim
        self.dropout = _two_arg.check_dropout(dropout, name)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _params.initializer(kernel_initializer, "kernel_initializer", name)
        self.bias_initializer = _params.initializer(bias_initializer, "bias_initializer", name)
        self.kernel_regularizer = _params.regularizer(kernel_regularizer, "kernel_regularizer", name)
        self.bias_regularizer = _params.regularizer(bias_regularizer, "bias_regularizer", name)
        self.kernel_constraint = _params.constraint(kernel_constraint, "kernel_constraint", name)
        self.bias_constraint = _params.constraint(bias_constraint, "bias_constraint", name)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.dropout > 0 else None
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def _dense(self, shape, name, initializer, regularizer, constraint):
        return self.add_weight(
            shape=shape, name=name, initializer=initializer, regularizer=regularizer, constraint=constraint
        )

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"{type(self).__name__}: the last input axis must be known, got {input_shape}.")
        out_dim = self.output_dim or in_dim
        width = 2 * self.hidden if self.gated else self.hidden
        k = (self.kernel_initializer, self.kernel_regularizer, self.kernel_constraint)
        b = (self.bias_initializer, self.bias_regularizer, self.bias_constraint)
        self.kernel = self._dense((in_dim, width), "kernel", *k)
        self.output_kernel = self._dense((self.hidden, out_dim), "output_kernel", *k)
        self.bias = self.output_bias = None
        if self.use_bias:
            self.bias = self._dense((width,), "bias", *b)
            self.output_bias = self._dense((out_dim,), "output_bias", *b)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: in_dim})

    def call(self, inputs, training=False):
        z = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = z + self.bias
        if self.gated:
            h = self.activation(z[..., : self.hidden]) * z[..., self.hidden :]
        else:
            h = self.activation(z)
        if training and self.dropout > 0:
            h = keras.random.dropout(h, self.dropout, seed=self.seed_generator)
        y = ops.matmul(h, self.output_kernel)
        if self.output_bias is not None:
            y = y + self.output_bias
        return y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim or input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden": self.hidden,
                "activation": activations.serialize(self.activation),
                "gated": self.gated,
                "output_dim": self.output_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "seed": self.seed,
            }
        )
        return config
