import keras
from keras import constraints, initializers, ops, regularizers

from keras_bioact import _checks
from keras_bioact.layers import _params, _two_arg


@keras.saving.register_keras_serializable(package="keras_bioact")
class TwoArgDense(keras.layers.Layer):
    """A dense layer of two-argument ("dendritic") units sharing one inner net g.

    Yoon, Orhan, Kim & Pitkow, "Two-argument activation functions learn soft XOR operations
    like cortical neurons" (arXiv:2110.06871). For `units` = N and `arity` = 2:
    ```python
    z   = x @ kernel + bias                 # (..., 2N) pre-activations
    z   = (z - mean(z)) / sqrt(var(z) + eps) # LayerNorm over the 2N features, no affine
    a_j, b_j = z[..., 2j], z[..., 2j+1]      # pairing="adjacent"  (reshape (..., N, 2))
    #          z[..., j],  z[..., N+j]       # pairing="split"     (first half with second)
    y_j = g(a_j, b_j)                        # one shared g for all units (InnerNonlinearity)
    y   = Dropout(dropout)(y)                # output width N
    ```
    g is applied to all units at once as a batched contraction on the `(..., N, arity)`
    tensor. `arity=1` gives the paper's "1-arg" control (a learned scalar function).

    Sharing g: create one `InnerNonlinearity` and pass it as `inner=` to every layer that
    should share it (Sequential or functional). The weights exist once (`model.weights`,
    `count_params`, `keras_bioact.params.activation_parameters` list them once), receive
    gradients from every layer, and `.keras` save/load restores a single shared instance.
    The layer's own `bioact_parameters` is empty: g's weights are declared by g.

    Dtype policy: the default g is created with this layer's dtype policy (under
    `mixed_float16` it computes in float16 and keeps float32 weights). A g passed as `inner=`
    keeps its own policy, whatever the layers sharing it use: it computes in its own compute
    dtype, and each layer casts g's output to the layer's compute dtype.

    Args:
        units: number of two-argument units N (output width), positive int. The dense
            kernel has `arity * units` columns ("weight doubling").
        inner: the inner net g, an `InnerNonlinearity` (or a compatible layer with an `arity`
            attribute mapping `(..., arity)` to `(..., 1)`). Default None: a private
            `InnerNonlinearity(arity)` (2 -> 64 -> 64 -> 1) with this layer's dtype policy.
        arity: 1 or 2. Default None: the arity of `inner`, or 2. A value that contradicts the
            given `inner` raises `ValueError`.
        pairing: `"adjacent"` (default, the paper's) or `"split"`.
        normalize: apply LayerNorm without affine parameters before g. Default True (keeps the
            inputs of g in the range it was pre-trained on; see docs/reliability.md, Numerics).
        epsilon: LayerNorm epsilon. Default 1e-5.
        dropout: dropout rate on the outputs, in [0, 1). Default 0 (the paper uses 0.5).
        use_bias: add a bias to the pre-activations. Default True.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in `keras.layers.Dense`.
        seed: seed of the dropout noise.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    bioact_parameters = ()

    def __init__(
        self,
        units,
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
        self.units = _two_arg.check_positive_int(units, "units", name)
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
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    @property
    def preactivation_width(self):
        """Width of the pre-activations, `arity * units`."""
        return self.arity * self.units

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"{type(self).__name__}: the last input axis must be known, got {input_shape}.")
        self.kernel = self.add_weight(
            shape=(in_dim, self.preactivation_width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.preactivation_width,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        _two_arg.build_inner(self)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: in_dim})

    def _norm_axes(self, rank):
        return -1

    def call(self, inputs, training=False):
        z = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = z + self.bias
        return _two_arg.apply_inner(self, z, training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
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
