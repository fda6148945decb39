import keras
from keras import constraints, initializers, ops, regularizers

from keras_bioact import _checks
from keras_bioact.layers import _params, _two_arg

_DATA_FORMATS = ("channels_last", "channels_first")


def _tuple2(value, arg, layer):
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        value = tuple(value)
    except TypeError:
        value = (value,)
    if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"{layer}: `{arg}` must be a positive int or a pair of them, got {value!r}.")
    return tuple(int(v) for v in value)


@keras.saving.register_keras_serializable(package="keras_bioact")
class TwoArgConv2D(keras.layers.Layer):
    """A 2-D convolution of two-argument ("dendritic") units sharing one inner net g.

    Yoon, Orhan, Kim & Pitkow (arXiv:2110.06871), convolutional version. For `filters` = C
    and `arity` = 2:
    ```python
    z = conv2d(x, kernel) + bias                  # (B, H, W, 2C) pre-activation channels
    z = (z - mean(z)) / sqrt(var(z) + eps)        # LayerNorm over (H, W, 2C) per sample, no affine
    a, b = z[..., 2c], z[..., 2c+1]               # pairing="adjacent": adjacent channel pairs
    #      z[..., c],  z[..., C+c]                # pairing="split": first half with second half
    y[..., c] = g(a, b)                           # the shared g at every position and channel
    y = Dropout(dropout)(y)                       # (B, H, W, C)
    ```
    g runs as one batched contraction over all positions and channels (equivalent to the
    reference implementation's stack of 1x1 convolutions). `arity=1` gives the "1-arg"
    control. Sharing g between layers works as in `TwoArgDense` (pass one
    `InnerNonlinearity` as `inner=` to every layer; `.keras` save/load keeps one instance).
    Dtype policy as in `TwoArgDense`: the default g gets this layer's policy; a g passed as
    `inner=` keeps its own, and its output is cast to this layer's compute dtype.

    Args:
        filters: number of two-argument output channels C (positive int); the convolution
            has `arity * filters` output channels.
        kernel_size: int or pair of ints.
        strides: int or pair of ints. Default 1.
        padding: `"valid"` (default) or `"same"`.
        dilation_rate: int or pair of ints. Default 1.
        data_format: `"channels_last"` or `"channels_first"`. Default: Keras'
            `image_data_format()`.
        inner, arity, pairing, normalize, epsilon, dropout, use_bias, seed: as in
            `TwoArgDense` (LayerNorm here runs over all of (H, W, channels)).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in `keras.layers.Conv2D`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    bioact_parameters = ()

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        data_format=None,
        inner=None,
        arity=None,
        pairing="adjacent",
        normalize=True,
        epsilon=1e-5,
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
        self.filters = _two_arg.check_positive_int(filters, "filters", name)
        self.kernel_size = _tuple2(kernel_size, "kernel_size", name)
        self.strides = _tuple2(strides, "strides", name)
        self.dilation_rate = _tuple2(dilation_rate, "dilation_rate", name)
        padding = padding.lower() if isinstance(padding, str) else padding
        self.padding = _checks.choice(padding, ("valid", "same"), "padding", name)
        data_format = keras.backend.image_data_format() if data_format is None else data_format
        self.data_format = _checks.choice(data_format, _DATA_FORMATS, "data_format", name)
        self.inner = _two_arg.resolve_inner(inner, arity, name, self.dtype_policy)
        self.arity = self.inner.arity
        self.pairing = _checks.choice(pairing, _two_arg.PAIRINGS, "pairing", name)
        self.normalize = bool(normalize)
        self.epsilon = float(epsilon)
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
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def preactivation_channels(self):
        """Channels of the convolution, `arity * filters`."""
        return self.arity * self.filters

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        in_ch = input_shape[self._channel_axis()]
        if in_ch is None:
            raise ValueError(f"{type(self).__name__}: the channel axis must be known, got {input_shape}.")
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, in_ch, self.preactivation_channels),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.preactivation_channels,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        _two_arg.build_inner(self)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={self._channel_axis(): in_ch})

    def _norm_axes(self, rank):
        return tuple(range(1, rank))

    def call(self, inputs, training=False):
        z = ops.conv(
            inputs,
            self.kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.data_format == "channels_first":
            z = ops.transpose(z, (0, 2, 3, 1))
        if self.bias is not None:
            z = z + self.bias
        y = _two_arg.apply_inner(self, z, training)
        if self.data_format == "channels_first":
            y = ops.transpose(y, (0, 3, 1, 2))
        return y

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_first":
            spatial = input_shape[2:]
        else:
            spatial = input_shape[1:3]
        out = []
        for size, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate, strict=True):
            if size is None:
                out.append(None)
            elif self.padding == "same":
                out.append((size + s - 1) // s)
            else:
                out.append((size - d * (k - 1) - 1) // s + 1)
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters, *out)
        return (input_shape[0], *out, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "padding": self.padding,
                "dilation_rate": list(self.dilation_rate),
                "data_format": self.data_format,
                "inner": _two_arg.serialize_inner(self.inner),
                "arity": self.arity,
                "pairing": self.pairing,
                "normalize": self.normalize,
                "epsilon": self.epsilon,
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

    @classmethod
    def from_config(cls, config):
        return cls(**_two_arg.deserialize_inner(config))
