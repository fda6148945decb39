import keras
import numpy as np
from keras import constraints, initializers, ops, regularizers

from keras_bioact import _checks
from keras_bioact.layers import _params, _two_arg

VARIANCE_PRESERVING = "variance_preserving"
_PROBE_POINTS = 4096  # Gaussian probe pairs on which the second moment of g is measured


@keras.saving.register_keras_serializable(package="keras_bioact")
class TwoArgFeedForward(keras.layers.Layer):
    """A transformer feed-forward block of two-argument units: `W2 g(pair(W1 x))`.

    The feed-forward (MLP) block of a transformer with its activation replaced by the
    two-argument units of Yoon, Orhan, Kim & Pitkow (arXiv:2110.06871), optionally with one
    inner net per group of channels as in KAT (Yang & Wang, "Kolmogorov-Arnold
    Transformer", ICLR 2025). For `hidden` = H, `arity` = 2 and model width d:
    ```python
    z   = x @ kernel + bias                   # (..., 2H) pre-activations, x: (..., d)
    z   = (z - mean(z)) / sqrt(var(z) + eps)  # LayerNorm over the 2H features, no affine
    a_j, b_j = z[..., 2j], z[..., 2j+1]       # pairing="adjacent" ("split": z[j], z[H+j])
    h_j = g_{j mod G}(a_j, b_j)               # G = groups inner nets (one shared g if G = 1)
    h   = Dropout(dropout)(h)                 # (..., H)
    y   = h @ output_kernel + output_bias     # (..., output_dim), output_dim = d by default
    ```
    It accepts any input of rank >= 2: `(batch, width)` or `(batch, tokens, width)`. The
    inner nets are one `InnerNonlinearity(groups=G)`, evaluated for all units and groups at
    once (a batched contraction, no loop over groups). Unit j uses net `j mod G`
    (interleaved; at initialisation any assignment of units to groups is equivalent).
    With the same H the block has the weights of a GLU block (`FeedForward(gated=True)`),
    plus those of g: `H (arity d + arity + d_out) + d_out + G |g|` (`use_bias=True`);
    `keras_bioact.feed_forward.feed_forward_hidden` picks H for a parameter budget.

    Initialisation (variance preserving, as KAT's): `kernel` defaults to LeCun normal, so a
    unit-variance input gives unit-variance pre-activations (LayerNorm makes them exactly
    standardised with `normalize=True`). `output_kernel_initializer="variance_preserving"`
    (default) draws row j of the output kernel from `N(0, 1 / (H m_k))`, where
    `m_k = E[g_k(a, b)^2]` for independent standard normal a, b is measured on a fixed
    probe of 4,096 Gaussian pairs when the layer is built; then the block's output has
    about unit variance at initialisation, the variance of a unit-variance (pre-normed)
    input. For a g shared with a layer built earlier, m_k is measured on its current
    weights.

    Sharing g: pass one `InnerNonlinearity` (with the same `groups` and `arity`) as `inner=`
    to several blocks; its weights exist once and `.keras` save/load keeps one instance
    (see `TwoArgDense`). Dtype policy: as `TwoArgDense`.

    Args:
        hidden: number of two-argument units H, positive int, divisible by `groups`. The
            input kernel has `arity * hidden` columns.
        output_dim: width of the output, positive int. Default None: the input's last axis.
        inner: the inner net(s) g, an `InnerNonlinearity` with `groups` nets (or its config).
            Default None: a private `InnerNonlinearity(arity, groups=groups)`
            (2 -> 64 -> 64 -> 1 per group) with this layer's dtype policy.
        arity: 1 or 2. Default None: the arity of `inner`, or 2 (1 is the one-argument
            control: a learned scalar function per unit).
        groups: number of inner nets G (KAT-style groups of units), positive int dividing
            `hidden`. Default 1 (one shared g). Must equal `inner.groups` for a given `inner`.
        pairing: `"adjacent"` (default) or `"split"`.
        normalize: LayerNorm without affine parameters on the pre-activations before g.
            Default True.
        epsilon: LayerNorm epsilon, > 0. Default 1e-5.
        dropout: dropout rate on the hidden units, in [0, 1). Default 0.
        use_bias: add `bias` and `output_bias`. Default True.
        kernel_initializer: initializer of the input kernel. Default `"lecun_normal"`.
        output_kernel_initializer: `"variance_preserving"` (default, above) or any Keras
            initializer of the output kernel.
        bias_initializer: initializer of both biases. Default `"zeros"`.
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint: as in
            `keras.layers.Dense`, applied to both kernels (both biases).
        seed: seed of the dropout noise.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    bioact_parameters = ()

    def __init__(
        self,
        hidden,
        output_dim=None,
        inner=None,
        arity=None,
        groups=1,
        pairing="adjacent",
        normalize=True,
        epsilon=1e-5,
        dropout=0.0,
        use_bias=True,
        kernel_initializer="lecun_normal",
        output_kernel_initializer=VARIANCE_PRESERVING,
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
        if output_dim is not None:
            output_dim = _two_arg.check_positive_int(output_dim, "output_dim", name)
        self.output_dim = output_dim
        self.groups = _two_arg.check_positive_int(groups, "groups", name)
        if self.hidden % self.groups:
            raise ValueError(
                f"{name}: `groups` must be a positive int that divides `hidden`={self.hidden} "
                f"(every group has hidden // groups units), got {self.groups}."
            )
        self.inner = _two_arg.resolve_inner(inner, arity, name, self.dtype_policy, groups=self.groups)
        self.arity = self.inner.arity
        self.pairing = _checks.choice(pairing, _two_arg.PAIRINGS, "pairing", name)
        self.normalize = bool(normalize)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"{name}: `epsilon` must be a number > 0, got {epsilon!r}.")
        self.epsilon = float(epsilon)
        self.dropout = _two_arg.check_dropout(dropout, name)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _params.initializer(kernel_initializer, "kernel_initializer", name)
        if output_kernel_initializer == VARIANCE_PRESERVING:
            self.output_kernel_initializer = VARIANCE_PRESERVING
        else:
            self.output_kernel_initializer = _params.initializer(
                output_kernel_initializer, "output_kernel_initializer", name
            )
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
        """Width of the pre-activations, `arity * hidden`."""
        return self.arity * self.hidden

    def inner_second_moment(self):
        """`E[g_k(a, b)^2]` per group k (a NumPy array of shape `(groups,)`), a, b independent
        standard normal, on a fixed probe of 4,096 points: the scale of the variance-
        preserving output initialisation."""
        _two_arg.build_inner(self)
        probe = np.random.default_rng(0).standard_normal((_PROBE_POINTS, self.groups, self.arity))
        probe = probe.astype("float32")
        if self.groups == 1:
            probe = probe[:, 0]
        g = ops.convert_to_numpy(ops.cast(self.inner(probe), "float32"))
        return np.mean(np.square(g.reshape(_PROBE_POINTS, self.groups).astype("float64")), axis=0)

    def _output_initializer(self):
        if self.output_kernel_initializer != VARIANCE_PRESERVING:
            return self.output_kernel_initializer
        moment = np.maximum(self.inner_second_moment(), 1e-12)
        # Unit j uses net j mod G (see `call`).
        std = 1.0 / np.sqrt(self.hidden * moment[np.arange(self.hidden) % self.groups])
        base = keras.initializers.RandomNormal(stddev=1.0)

        def initializer(shape, dtype=None):
            return base(shape, dtype=dtype) * ops.cast(ops.convert_to_tensor(std[:, None]), dtype)

        return initializer

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"{type(self).__name__}: the last input axis must be known, got {input_shape}.")
        out_dim = self.output_dim or in_dim
        _two_arg.build_inner(self)
        self.kernel = self.add_weight(
            shape=(in_dim, self.preactivation_width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.output_kernel = self.add_weight(
            shape=(self.hidden, out_dim),
            name="output_kernel",
            initializer=self._output_initializer(),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = self.output_bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.preactivation_width,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
            self.output_bias = self.add_weight(
                shape=(out_dim,),
                name="output_bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: in_dim})

    def call(self, inputs, training=False):
        z = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = z + self.bias
        if self.normalize:
            z = _two_arg.layer_norm(z, -1, self.epsilon)
        pairs = _two_arg.pair(z, self.arity, self.pairing)  # (..., H, arity)
        if self.groups > 1:  # unit j -> net j mod G: (..., H // G, G, arity)
            lead = ops.shape(pairs)[:-2]
            pairs = ops.reshape(pairs, (*lead, self.hidden // self.groups, self.groups, self.arity))
        h = ops.cast(self.inner(pairs), self.compute_dtype)
        h = ops.reshape(h, (*ops.shape(z)[:-1], self.hidden))
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
        out_init = self.output_kernel_initializer
        config.update(
            {
                "hidden": self.hidden,
                "output_dim": self.output_dim,
                "inner": _two_arg.serialize_inner(self.inner),
                "arity": self.arity,
                "groups": self.groups,
                "pairing": self.pairing,
                "normalize": self.normalize,
                "epsilon": self.epsilon,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "output_kernel_initializer": (
                    out_init if out_init == VARIANCE_PRESERVING else initializers.serialize(out_init)
                ),
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
