import keras
from keras import activations, initializers, ops, regularizers

from keras_bioact.layers import _params

ARITIES = (1, 2)


@keras.saving.register_keras_serializable(package="keras_bioact")
class InnerNonlinearity(keras.layers.Layer):
    """The shared inner network g: R^arity -> R of two-argument ("dendritic") units.

    Yoon, Orhan, Kim & Pitkow, "Two-argument activation functions learn soft XOR operations
    like cortical neurons" (arXiv:2110.06871): every unit of the outer network applies the
    same small MLP to its `arity` pre-activations. With the default hidden sizes (64, 64):
    ```python
    h1 = relu(z @ kernel_0 + bias_0)        # z: (..., arity)
    h2 = relu(h1 @ kernel_1 + bias_1)
    g  = h2 @ kernel_2 + bias_2             # (..., 1)
    ```
    which has `2*64+64 + 64*64+64 + 64+1 = 4,417` weights for arity 2. The evaluation is one
    batched contraction per layer over all leading axes (units, positions, batch), never a
    loop over units.

    Sharing: pass ONE instance as `inner=` to any number of `TwoArgDense` / `TwoArgConv2D`
    layers. The layers hold a reference to it, its weights exist once, and `.keras`
    save/load keeps them shared (Keras' shared-object serialization, active inside
    `model.save` / `keras.saving.load_model`, restores one instance). Outside that scope
    (e.g. `Model.from_config(model.get_config())`, `model_from_json`) each two-argument
    layer gets its own copy of g; go through a `.keras` file to keep one shared g.

    Called on its own, the layer maps `(..., arity)` to `(..., 1)`, so it can be pre-trained
    with `model.fit` (see `keras_bioact.nin.pretrain_inner`). Its weights are stored as
    `kernel_0, bias_0, kernel_1, ...` and listed in `bioact_parameters`, so the activation-
    parameter view (`keras_bioact.params.ParameterView`) can read and evolve them.

    Groups (KAT-style, Yang & Wang 2025): with `groups=G > 1` the layer holds G independent
    nets of the same shape, stacked (`kernel_i` has shape `(G, n_in, n_out)`, `bias_i` shape
    `(G, n_out)`). It then maps `(..., G, arity)` to `(..., G, 1)`, net k acting on index k of
    axis -2, all G at once in one batched contraction (`einsum`), never a loop over groups.

    Args:
        arity: number of arguments, 1 or 2. Default 2 (1 gives the paper's "1-arg" control).
        hidden_units: sizes of the hidden layers (any depth >= 0). Default `(64, 64)`.
        activation: hidden activation. Default `"relu"`.
        kernel_initializer: initializer of every kernel. Default `"glorot_uniform"` (Xavier).
        bias_initializer: initializer of every bias. Default `"zeros"`.
        kernel_regularizer: optional regularizer of every kernel.
        bias_regularizer: optional regularizer of every bias.
        groups: number of independent nets, positive int. Default 1 (one net for all units).
        **kwargs: base layer keyword arguments, such as `name`, `dtype` and `trainable`.
    """

    def __init__(
        self,
        arity=2,
        hidden_units=(64, 64),
        activation="relu",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        groups=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        if isinstance(arity, bool) or arity not in ARITIES:
            raise ValueError(f"{name}: `arity` must be 1 or 2, got {arity!r}.")
        if isinstance(hidden_units, int) and not isinstance(hidden_units, bool):
            hidden_units = (hidden_units,)
        try:
            hidden_units = tuple(hidden_units)
        except TypeError:
            hidden_units = (hidden_units,)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden_units):
            raise ValueError(
                f"{name}: `hidden_units` must be a sequence of positive ints, got {hidden_units!r}."
            )
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: `groups` must be a positive int, got {groups!r}.")
        self.arity = int(arity)
        self.groups = int(groups)
        self.hidden_units = tuple(int(h) for h in hidden_units)
        self.activation = _params.activation(activation, "activation", name)
        self.kernel_initializer = _params.initializer(kernel_initializer, "kernel_initializer", name)
        self.bias_initializer = _params.initializer(bias_initializer, "bias_initializer", name)
        self.kernel_regularizer = _params.regularizer(kernel_regularizer, "kernel_regularizer", name)
        self.bias_regularizer = _params.regularizer(bias_regularizer, "bias_regularizer", name)
        if self.groups == 1:
            self.input_spec = keras.layers.InputSpec(min_ndim=1, axes={-1: self.arity})
        else:
            self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: self.arity, -2: self.groups})

    @property
    def sizes(self):
        """Widths of all layers of g, input and output included: `(arity, *hidden_units, 1)`."""
        return (self.arity, *self.hidden_units, 1)

    @property
    def depth(self):
        """Number of weight layers (kernels) of g."""
        return len(self.hidden_units) + 1

    @property
    def bioact_parameters(self):
        names = []
        for i in range(self.depth):
            names += [f"kernel_{i}", f"bias_{i}"]
        return tuple(names)

    def count_params_formula(self):
        """Number of weights of g: `groups * sum(n_in * n_out + n_out)` over its layers."""
        sizes = self.sizes
        return self.groups * sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None and input_shape[-1] != self.arity:
            raise ValueError(
                f"{type(self).__name__}: the last input axis must have size `arity`={self.arity}, "
                f"got input shape {tuple(input_shape)}."
            )
        if self.groups > 1 and input_shape is not None and len(input_shape) >= 2:
            if input_shape[-2] is not None and input_shape[-2] != self.groups:
                raise ValueError(
                    f"{type(self).__name__}: with `groups`={self.groups} the input axis -2 must have "
                    f"size {self.groups} (one entry per group), got input shape {tuple(input_shape)}."
                )
        sizes = self.sizes
        lead = () if self.groups == 1 else (self.groups,)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
            kernel = self.add_weight(
                shape=(*lead, n_in, n_out),
                name=f"kernel_{i}",
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            )
            bias = self.add_weight(
                shape=(*lead, n_out),
                name=f"bias_{i}",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
            )
            setattr(self, f"kernel_{i}", kernel)
            setattr(self, f"bias_{i}", bias)
        self.built = True

    def call(self, inputs):
        # One contraction over the last axis for all leading axes at once: flatten to 2-D,
        # matmul, restore (every backend lowers this to a single GEMM); with groups, flatten
        # to (N, G, n_in) and contract every group with its own kernel (a batched GEMM).
        lead = ops.shape(inputs)[:-1]
        if self.groups == 1:
            h = ops.reshape(inputs, (-1, self.arity))
        else:
            h = ops.reshape(inputs, (-1, self.groups, self.arity))
        for i in range(self.depth):
            kernel = getattr(self, f"kernel_{i}")
            if self.groups == 1:
                h = ops.matmul(h, kernel)
            else:
                h = ops.einsum("ngi,gio->ngo", h, kernel)
            h = h + getattr(self, f"bias_{i}")
            if i < self.depth - 1:
                h = self.activation(h)
        return ops.reshape(h, (*lead, 1))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "arity": self.arity,
                "hidden_units": list(self.hidden_units),
                "activation": activations.serialize(self.activation),
                "groups": self.groups,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            }
        )
        return config
