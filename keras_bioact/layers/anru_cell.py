import keras
from keras import initializers, ops, regularizers

from keras_bioact import ops as bioact_ops
from keras_bioact.initializers import GammaGain
from keras_bioact.layers import _params, _rnn

CONTROLLER_PARAMETERS = (
    "controller_input_kernel",
    "controller_recurrent_kernel",
    "controller_bias",
    "n_kernel",
    "n_bias",
    "s_kernel",
    "s_bias",
)


def _xavier_normal(gain):
    # PyTorch's xavier_normal_(gain): std = gain * sqrt(2 / (fan_in + fan_out)).
    return keras.initializers.VarianceScaling(
        scale=gain * gain, mode="fan_avg", distribution="untruncated_normal"
    )


def _tanh(z):
    """`tanh` in z's own dtype: Keras' `ops.tanh` returns float32 for float64 inputs unless
    `floatx` is float64 (which broke the scan carry of a float64 ANRU); then use
    `expm1(2z) / (expm1(2z) + 2)`, exact in relative terms near 0 and clipped where tanh = +-1."""
    t = ops.tanh(z)
    if t.dtype == z.dtype:
        return t
    e = ops.expm1(2.0 * ops.clip(z, -40.0, 40.0))
    return e / (e + 2.0)


def _controller(a, g, u, w, b, wns, bns):
    """One controller step for every neuron at once (shared weights, private states), as 2-D
    matmuls on the `batch * N` rows (one `(M, M)` and one `(M, 2)` product).

    a: (batch, N) pre-activations; g: (batch * N, M) controller states, one row per neuron;
    u: (1, M), w: (M, M), b: (M,); wns: (M, 2) = [n_kernel, s_kernel]; bns: (2,) = [n_bias, s_bias].
    Returns the new states `(batch * N, M)` and the read-outs `[n, s]`, `(batch * N, 2)`.
    """
    z = ops.reshape(a, (-1, 1)) * u + ops.matmul(g, w) + b
    g = _tanh(z)
    return g, ops.matmul(g, wns) + bns


def _controller_backward(a, g, g_new, u, w, wns, dg_new, dns):
    """Gradients of `_controller` w.r.t. `(a, g, u, w, b, wns, bns)` from its inputs and its new
    state: `dz = (dg_new + dns wns^T) (1 - g_new^2)`, then one matmul or column sum per input."""
    dz = (dg_new + ops.matmul(dns, ops.transpose(wns))) * (1.0 - g_new * g_new)
    return (
        ops.reshape(ops.matmul(dz, ops.transpose(u)), (-1, a.shape[-1])),
        ops.matmul(dz, ops.transpose(w)),
        ops.sum(ops.reshape(a, (-1, 1)) * dz, axis=0, keepdims=True),
        ops.matmul(ops.transpose(g), dz),
        ops.sum(dz, axis=0),
        # (M, 2) read-out gradient as two column sums: measured ~5x faster than the
        # (M, batch * N) @ (batch * N, 2) matmul on XLA CPU.
        ops.stack([ops.sum(g_new * dns[:, :1], axis=0), ops.sum(g_new * dns[:, 1:], axis=0)], axis=1),
        ops.sum(dns, axis=0),
    )


def _controller_with_backward(a, g, u, w, b, wns, bns):
    """`_controller` with the hand-written backward pass `_controller_backward`, for
    `ops.custom_gradient` (TensorFlow and JAX): the same values; the only residuals are the
    step's inputs and its new state."""
    g_new, ns = _controller(a, g, u, w, b, wns, bns)

    def grad(*args, upstream=None):
        # JAX passes the output cotangents as one tuple, TensorFlow as one argument each.
        cotangents = upstream if upstream is not None else (args[0] if len(args) == 1 else args)
        dg_new, dns = cotangents
        if dg_new is None:
            dg_new = ops.zeros_like(g_new)
        if dns is None:
            dns = ops.zeros_like(ns)
        return _controller_backward(a, g, g_new, u, w, wns, dg_new, dns)

    return (g_new, ns), grad


def _controller_function(remat):
    """The controller step the cell traces: the hand-written backward pass on TensorFlow and
    JAX (where it measured faster), autodiff on torch; wrapped in `keras.remat` if asked."""
    custom = keras.backend.backend() in ("tensorflow", "jax")
    step = ops.custom_gradient(_controller_with_backward) if custom else _controller
    return keras.remat(step) if remat else step


@keras.saving.register_keras_serializable(package="keras_bioact")
class ANRUCell(keras.layers.Layer):
    """Adaptive Nonlinearity Recurrent Unit (ANRU / "ARUN") of Geadah et al. (2024, PLOS Comput Biol).

    Each of the `units` neurons of an Elman RNN with gamma activation has its own
    time-varying gain `n_t^i` and saturation `s_t^i`, emitted by a small controller RNN whose
    weights are shared by all neurons but whose state `g^i` (size `controller_units`) is private
    to each neuron and driven only by that neuron's own pre-activation:
    ```python
    a_t   = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias                      # (batch, N)
    g_t^i = tanh(a_t^i * controller_input_kernel + g_{t-1}^i @ controller_recurrent_kernel
                 + controller_bias)                                             # (batch, N, M)
    n_t^i = max(g_t^i @ n_kernel + n_bias, n_min)
    s_t^i = g_t^i @ s_kernel + s_bias
    h_t^i = gamma(a_t^i; n_t^i, s_t^i)
    ```
    The controller is evaluated for all neurons at once as 2-D matmuls on `(batch * N, M)` rows
    (no loop over neurons), with `n` and `s` read out by one `(M, 2)` matmul; on TensorFlow and
    JAX its step has a hand-written backward pass (same values as autodiff, tested). The two
    biases of each linear map in the authors' code (`U_xh`/`W_hh`, `U_ag`/`W_gg`) are merged
    into one (`bias`, `controller_bias`): the same function, 450 fewer redundant parameters at
    N = 400, M = 50.

    Use it inside `keras.layers.RNN`. States: `[h (batch, N), g (batch, N * M)]` — the
    controller state is stored flattened because `keras.layers.RNN` only supports 1-D states
    per example; reshape it to `(batch, N, M)` to inspect it (`return_state=True`).

    Trajectories: with `return_trajectories=True` the cell's output is
    `concat([h_t, n_t, s_t], axis=-1)` (width `3 * units`) in the same forward pass, so
    `keras.layers.RNN(cell, return_sequences=True)` returns all three over time; split them
    with `ANRUCell.split_trajectories(outputs)` -> `(h, n, s)`. The recurrence is unchanged.

    Initialisation (Geadah et al. 2024; the defaults): input kernels Kaiming normal; recurrent kernels
    Henaff orthogonal; biases 0; `n_kernel` Xavier-normal gain 0.1; `s_kernel` Xavier-normal
    gain 0.01; `n_bias = 5 + 2 U(0, 1)` (one draw); `s_bias = 0`. The network starts close to a
    softplus of gain 5-7 with s close to 0.

    Memory: the controller state is `(batch, N, M)` per step, which backpropagation through
    time keeps for every step. `remat=True` recomputes the controller step in the backward pass
    (`keras.remat`: `jax.checkpoint`, `tf.recompute_grad`, `torch.utils.checkpoint`) so only its
    inputs are kept; see `benchmarks/anru_memory.py` for measured peaks.

    Args:
        units: number of neurons N, >= 1.
        controller_units: controller state size M per neuron, >= 1 (default 50).
        use_bias: whether the main RNN has a bias (default True).
        kernel_initializer: input kernel init (default `"kaiming"`).
        recurrent_initializer: recurrent kernel init (default `"henaff"`).
        bias_initializer: main bias init (default `"zeros"`).
        controller_input_initializer: init of the controller's 1 -> M input kernel (default `"kaiming"`).
        controller_recurrent_initializer: init of its M -> M recurrent kernel (default `"henaff"`).
        controller_bias_initializer: default `"zeros"`.
        n_kernel_initializer: default Xavier normal with gain 0.1.
        s_kernel_initializer: default Xavier normal with gain 0.01.
        n_bias_initializer: default `GammaGain()` (5 + 2 U(0, 1)).
        s_bias_initializer: default `"zeros"`.
        n_min: floor applied to `n_t` (> 0, default 0.01) so that gamma never divides by a
            vanishing or negative gain. The authors did not clamp (their `n_t` stays near 5-7);
            below the floor the read-out gets no gradient through `n`.
        return_trajectories: output `[h, n, s]` instead of `h` (see above). Default False.
        remat: rematerialise the controller step in the backward pass. Default False.
        drive_input: as in `GammaRNNCell`: the last `units` input features are added to `a_t`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer, controller_regularizer:
            optional regularizers (`controller_regularizer` applies to all controller kernels).
        **kwargs: base layer keyword arguments.
    """

    bioact_parameters = CONTROLLER_PARAMETERS

    def __init__(
        self,
        units,
        controller_units=50,
        use_bias=True,
        kernel_initializer="kaiming",
        recurrent_initializer="henaff",
        bias_initializer="zeros",
        controller_input_initializer="kaiming",
        controller_recurrent_initializer="henaff",
        controller_bias_initializer="zeros",
        n_kernel_initializer=None,
        s_kernel_initializer=None,
        n_bias_initializer=None,
        s_bias_initializer="zeros",
        n_min=0.01,
        return_trajectories=False,
        remat=False,
        drive_input=False,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        controller_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = _rnn.check_units(units, "units", name)
        self.controller_units = _rnn.check_units(controller_units, "controller_units", name)
        try:
            n_min = float(n_min)
        except (TypeError, ValueError):
            n_min = float("nan")
        if not n_min > 0:
            raise ValueError(f"{name}: `n_min` must be a number > 0, got {n_min!r}.")
        self.n_min = n_min
        self.use_bias = bool(use_bias)
        initializers_ = {
            "kernel_initializer": kernel_initializer,
            "recurrent_initializer": recurrent_initializer,
            "bias_initializer": bias_initializer,
            "controller_input_initializer": controller_input_initializer,
            "controller_recurrent_initializer": controller_recurrent_initializer,
            "controller_bias_initializer": controller_bias_initializer,
            "n_kernel_initializer": n_kernel_initializer or _xavier_normal(0.1),
            "s_kernel_initializer": s_kernel_initializer or _xavier_normal(0.01),
            "n_bias_initializer": n_bias_initializer or GammaGain(),
            "s_bias_initializer": s_bias_initializer,
        }
        for arg, value in initializers_.items():
            setattr(self, arg, _params.initializer(value, arg, name))
        regularizers_ = {
            "kernel_regularizer": kernel_regularizer,
            "recurrent_regularizer": recurrent_regularizer,
            "bias_regularizer": bias_regularizer,
            "controller_regularizer": controller_regularizer,
        }
        for arg, value in regularizers_.items():
            setattr(self, arg, _params.regularizer(value, arg, name))
        self.return_trajectories = bool(return_trajectories)
        self.remat = bool(remat)
        self.drive_input = bool(drive_input)
        self.state_size = [self.units, self.units * self.controller_units]
        self.output_size = 3 * self.units if self.return_trajectories else self.units

    def build(self, input_shape):
        dim = _rnn.input_dim(input_shape, self.units, self.drive_input, type(self).__name__)
        n, m = self.units, self.controller_units
        reg = self.controller_regularizer
        self.kernel = self.add_weight(
            shape=(dim, n), name="kernel", initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(n, n), name="recurrent_kernel", initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(n,), name="bias", initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
            )
        self.controller_input_kernel = self.add_weight(
            shape=(1, m), name="controller_input_kernel",
            initializer=self.controller_input_initializer, regularizer=reg,
        )
        self.controller_recurrent_kernel = self.add_weight(
            shape=(m, m), name="controller_recurrent_kernel",
            initializer=self.controller_recurrent_initializer, regularizer=reg,
        )
        self.controller_bias = self.add_weight(
            shape=(m,), name="controller_bias", initializer=self.controller_bias_initializer,
        )
        self.n_kernel = self.add_weight(
            shape=(m, 1), name="n_kernel", initializer=self.n_kernel_initializer, regularizer=reg,
        )
        self.n_bias = self.add_weight(shape=(1,), name="n_bias", initializer=self.n_bias_initializer)
        self.s_kernel = self.add_weight(
            shape=(m, 1), name="s_kernel", initializer=self.s_kernel_initializer, regularizer=reg,
        )
        self.s_bias = self.add_weight(shape=(1,), name="s_bias", initializer=self.s_bias_initializer)

    def call(self, inputs, states, training=False):
        h_prev, g_prev = states[0], states[1]
        x, drive = _rnn.split_drive(inputs, self.units, self.drive_input)
        a = _rnn.preactivation(x, h_prev, self.kernel, self.recurrent_kernel, self.bias, drive)
        dtype = self.compute_dtype
        # Controller states as (batch * N, M) rows: one 2-D matmul per step, no 3-D contraction.
        g_prev = ops.reshape(ops.cast(g_prev, a.dtype), (-1, self.controller_units))
        # One (M, 2) read-out for n and s; the stored weights keep their names and shapes.
        wns = ops.concatenate([ops.cast(self.n_kernel, dtype), ops.cast(self.s_kernel, dtype)], axis=1)
        bns = ops.concatenate([ops.cast(self.n_bias, dtype), ops.cast(self.s_bias, dtype)], axis=0)
        weights = [
            ops.cast(v, dtype)
            for v in (self.controller_input_kernel, self.controller_recurrent_kernel, self.controller_bias)
        ]
        g, ns = _controller_function(self.remat)(a, g_prev, *weights, wns, bns)
        ns = ops.reshape(ns, (-1, self.units, 2))
        n = ops.maximum(ns[..., 0], ops.cast(self.n_min, ns.dtype))
        s = ns[..., 1]
        h = bioact_ops._trained_gamma(a, n, s)
        g_flat = ops.reshape(g, (-1, self.units * self.controller_units))
        output = ops.concatenate([h, n, s], axis=-1) if self.return_trajectories else h
        return output, [h, g_flat]

    @staticmethod
    def split_trajectories(outputs):
        """Split an output of a cell built with `return_trajectories=True` into `(h, n, s)`."""
        return tuple(ops.split(outputs, 3, axis=-1))

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
            ops.zeros((batch_size, self.units * self.controller_units), dtype=self.compute_dtype),
        ]

    def compute_output_shape(self, input_shape, states_shape=None):
        b = input_shape[0]
        return (b, self.output_size), [(b, self.units), (b, self.units * self.controller_units)]

    def get_config(self):
        config = super().get_config()
        ser = initializers.serialize
        config.update(
            {
                "units": self.units,
                "controller_units": self.controller_units,
                "use_bias": self.use_bias,
                "kernel_initializer": ser(self.kernel_initializer),
                "recurrent_initializer": ser(self.recurrent_initializer),
                "bias_initializer": ser(self.bias_initializer),
                "controller_input_initializer": ser(self.controller_input_initializer),
                "controller_recurrent_initializer": ser(self.controller_recurrent_initializer),
                "controller_bias_initializer": ser(self.controller_bias_initializer),
                "n_kernel_initializer": ser(self.n_kernel_initializer),
                "s_kernel_initializer": ser(self.s_kernel_initializer),
                "n_bias_initializer": ser(self.n_bias_initializer),
                "s_bias_initializer": ser(self.s_bias_initializer),
                "n_min": self.n_min,
                "return_trajectories": self.return_trajectories,
                "remat": self.remat,
                "drive_input": self.drive_input,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "controller_regularizer": regularizers.serialize(self.controller_regularizer),
            }
        )
        return config


