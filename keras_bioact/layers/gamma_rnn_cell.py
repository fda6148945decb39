import keras
from keras import activations, constraints, initializers, regularizers

from keras_bioact import _checks
from keras_bioact import ops as bioact_ops
from keras_bioact.initializers import GammaGain
from keras_bioact.layers import _params, _rnn

REGIMES = ("heterogeneous", "homogeneous", "static")


@keras.saving.register_keras_serializable(package="keras_bioact")
class GammaRNNCell(keras.layers.Layer):
    """Elman RNN cell with the gamma activation of Geadah et al. (Geadah et al. 2020, arXiv:2006.12253).

    Formula (one step, `x_t` of shape `(batch, input_dim)`, `h` of shape `(batch, units)`):
    ```python
    a_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias      # (+ drive_t, see below)
    h_t = gamma(a_t; n, s) = (1 - s) * softplus(n a_t) / n + s * sigmoid(n a_t)
    ```
    Use it inside `keras.layers.RNN` (return_sequences, return_state, masking, stateful,
    go_backwards all work):
    ```python
    layer = keras.layers.RNN(GammaRNNCell(128, regime="heterogeneous"))
    ```

    Regimes (Geadah et al. 2020):
    * `"heterogeneous"`: one learned pair `(n_i, s_i)` per neuron (variables of shape `(units,)`).
    * `"homogeneous"`: one learned pair `(n, s)` shared by all neurons (scalar variables).
    * `"static"`: one fixed pair (scalar, non-trainable), e.g. from a grid search. The pair is
      still an activation parameter (`bioact_parameters`), so `keras_bioact.params.ParameterView`
      and the activation searches can set it.

    `n` is kept above a floor by `n_constraint` (default `Bounds(min_value=0.01)`, as in
    `GammaActivation`) after each optimizer update. `s` is unconstrained by default, as in
    the papers (learned `s` leaves [0, 1]).

    Args:
        units: number of hidden neurons, >= 1.
        regime: `"heterogeneous"` (default), `"homogeneous"` or `"static"`.
        n: initial gain, a number > 0 or an initializer. Default: the papers' `n0 = 5 + 2 U(0, 1)`
            (`keras_bioact.initializers.GammaGain`, one draw per neuron when heterogeneous).
        s: initial saturation, a number or an initializer (default 0).
        activation: optional Keras activation (e.g. `"relu"`) used *instead of* gamma; the cell
            then has no activation parameters. This gives the papers' RNN+ReLU / RNN+softplus
            baselines with the same initialisation and drive input. Default `None` (gamma).
        use_bias: whether to add `bias` (default True).
        kernel_initializer: input kernel init (default `"kaiming"`: `N(0, 2/fan_in)`, as the authors'
            psMNIST code; any Keras initializer or name works).
        recurrent_initializer: recurrent kernel init (default `"henaff"`, the orthogonal
            `expm(A - A^T)` rotation init of Geadah et al. 2020, `keras_bioact.initializers.Henaff`).
        bias_initializer: bias init (default `"zeros"`).
        kernel_regularizer, recurrent_regularizer, bias_regularizer, n_regularizer, s_regularizer:
            optional regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: optional constraints.
        n_constraint: constraint of `n` (default `"positive"`: `n >= 0.01`).
        s_constraint: constraint of `s` (default `None`; `"unit"` clips to [0, 1]).
        drive_input: if True, the last `units` features of every input step are an external
            drive added to the pre-activation `a_t` (the perturbation protocol of Geadah et al. 2024;
            build the inputs with `keras_bioact.layers.PreactivationDrive`). The kernels have the same shapes
            as without it, so weights transfer with `set_weights`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        units,
        regime="heterogeneous",
        n=None,
        s=0.0,
        activation=None,
        use_bias=True,
        kernel_initializer="kaiming",
        recurrent_initializer="henaff",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        n_regularizer=None,
        s_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        n_constraint="positive",
        s_constraint=None,
        drive_input=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = _rnn.check_units(units, "units", name)
        self.regime = _checks.choice(regime, REGIMES, "regime", name)
        self.n_initializer = _params.initializer(
            GammaGain() if n is None else n, "n", name, minimum=0.0
        )
        self.s_initializer = _params.initializer(s, "s", name)
        self.activation = None if activation is None else _params.activation(activation, "activation", name)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _params.initializer(kernel_initializer, "kernel_initializer", name)
        self.recurrent_initializer = _params.initializer(recurrent_initializer, "recurrent_initializer", name)
        self.bias_initializer = _params.initializer(bias_initializer, "bias_initializer", name)
        self.kernel_regularizer = _params.regularizer(kernel_regularizer, "kernel_regularizer", name)
        self.recurrent_regularizer = _params.regularizer(recurrent_regularizer, "recurrent_regularizer", name)
        self.bias_regularizer = _params.regularizer(bias_regularizer, "bias_regularizer", name)
        self.n_regularizer = _params.regularizer(n_regularizer, "n_regularizer", name)
        self.s_regularizer = _params.regularizer(s_regularizer, "s_regularizer", name)
        self.kernel_constraint = _params.constraint(kernel_constraint, "kernel_constraint", name)
        self.recurrent_constraint = _params.constraint(recurrent_constraint, "recurrent_constraint", name)
        self.bias_constraint = _params.constraint(bias_constraint, "bias_constraint", name)
        self.n_constraint = _params.constraint(n_constraint, "n_constraint", name)
        self.s_constraint = _params.constraint(s_constraint, "s_constraint", name)
        self.drive_input = bool(drive_input)
        self.state_size = self.units
        self.output_size = self.units

    @property
    def bioact_parameters(self):
        return () if self.activation is not None else ("n", "s")

    def build(self, input_shape):
        dim = _rnn.input_dim(input_shape, self.units, self.drive_input, type(self).__name__)
        self.kernel = self.add_weight(
            shape=(dim, self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        if self.activation is None:
            shape = (self.units,) if self.regime == "heterogeneous" else ()
            trainable = self.regime != "static"
            self.n = self.add_weight(
                shape=shape,
                name="n",
                initializer=self.n_initializer,
                regularizer=self.n_regularizer,
                constraint=self.n_constraint,
                trainable=trainable,
                autocast=False,
            )
            self.s = self.add_weight(
                shape=shape,
                name="s",
                initializer=self.s_initializer,
                regularizer=self.s_regularizer,
                constraint=self.s_constraint,
                trainable=trainable,
                autocast=False,
            )

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        x, drive = _rnn.split_drive(inputs, self.units, self.drive_input)
        a = _rnn.preactivation(x, h_prev, self.kernel, self.recurrent_kernel, self.bias, drive)
        if self.activation is not None:
            h = self.activation(a)
        else:
            h = bioact_ops._trained_gamma(a, self.n, self.s)
        return h, [h]

    def get_initial_state(self, batch_size=None):
        return [keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def compute_output_shape(self, input_shape, states_shape=None):
        return (input_shape[0], self.units), [(input_shape[0], self.units)]

    def get_config(self):
        config = super().get_config()
        ser = initializers.serialize
        config.update(
            {
                "units": self.units,
                "regime": self.regime,
                "n": ser(self.n_initializer),
                "s": ser(self.s_initializer),
                "activation": None if self.activation is None else activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": ser(self.kernel_initializer),
                "recurrent_initializer": ser(self.recurrent_initializer),
                "bias_initializer": ser(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "n_regularizer": regularizers.serialize(self.n_regularizer),
                "s_regularizer": regularizers.serialize(self.s_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "n_constraint": constraints.serialize(self.n_constraint),
                "s_constraint": constraints.serialize(self.s_constraint),
                "drive_input": self.drive_input,
            }
        )
        return config
