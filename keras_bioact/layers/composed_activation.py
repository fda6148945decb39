import keras
from keras import ops

from keras_bioact import expressions
from keras_bioact.constraints import Bounds
from keras_bioact.layers import _params
from keras_bioact.layers._primitives import FUNCTIONS
from keras_bioact.reference import COMPOSED_VALUE_BOUND

_HALF = ("float16", "bfloat16")
_HALF_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38}


@keras.saving.register_keras_serializable(package="keras_bioact")
class ComposedActivation(keras.layers.Layer):
    """An activation composed of unary and binary primitives, given as an expression string.

    Formula: the expression, e.g.
    ```python
    ComposedActivation("mul(x, sigmoid(x))")        # x * sigmoid(x), i.e. SiLU
    ComposedActivation("tanh(softplus(x))")
    ComposedActivation("wsum(gelu(x), sin(x))")     # w gelu(x) + (1 - w) sin(x), w learned
    ```
    The grammar, the 26 unary and 6 binary primitives (with formulas, learnable scalars and
    their ranges) are those of `keras_bioact.expressions` and docs/families.md. The
    expression is parsed by that module's own parser, never evaluated as Python; a bad one
    raises `keras_bioact.expressions.ExpressionError` (a `ValueError`) naming the bad token
    and its column, at construction.

    Learnable scalars (`gamma`'s `n`, `s`; `eru`'s and `oru`'s `r`; `leaky`'s `a`; `swish`'s
    `beta`; `scale`'s `a`; `shift`'s `b`; `wsum`'s `w`) are one weight per occurrence in the
    expression, named `f"{primitive}{i}_{scalar}"` with `i` the call's pre-order index
    (`"wsum(gamma(x), x)"` has `wsum0_w`, `gamma1_n`, `gamma1_s`). Each starts at the
    primitive's initial value and is kept in its legal range by a
    `keras_bioact.constraints.Bounds` constraint applied after every update.

    Bounds: the input and the output of every primitive that is not bounded by construction
    are clipped to `[-1e6, 1e6]` (`keras_bioact.reference.COMPOSED_VALUE_BOUND`); `exp` sees
    at most 10 and `square` an input within `[-1000, 1000]`; calls nest at most 4 deep. With
    these, value and gradient are finite for every finite input and every legal value of the
    scalars (float32 and above). Under mixed precision the expression is evaluated in float32
    and the output saturates at the largest finite value of the half-precision dtype.

    Parameter sharing follows `keras.layers.PReLU`'s `shared_axes`, except that the default
    is `"all"`: one value of each scalar for the whole layer. `shared_axes=None` gives one
    per element of `input_shape[1:]` (per neuron), `shared_axes=[1, 2]` on
    `(batch, H, W, C)` feature maps one per channel.

    Args:
        expression: the expression string (e.g. `"max(relu(x), sin(x))"`).
        shared_axes: `"all"` (default), None, an int or a list of ints (see above).
        **kwargs: base layer keyword arguments, such as `name`, `dtype` and `trainable`.
    """

    def __init__(self, expression, shared_axes="all", **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        try:
            self.tree = expressions.parse(expression)
        except expressions.ExpressionError as error:  # same error, prefixed with the layer and argument
            name = type(self).__name__
            error.args = (f"{name}: `expression` must be a formula of the grammar above; {error}",)
            raise
        self.expression = str(self.tree)
        self.shared_axes = _params.normalize_shared_axes(shared_axes, type(self).__name__)
        self._scalar_names = tuple(name for name, _, _ in expressions.parameter_names(self.tree))

    @property
    def bioact_parameters(self):
        """Names of the learnable scalars (attributes holding the weights)."""
        return self._scalar_names

    def build(self, input_shape):
        shape = _params.param_shape(input_shape, self.shared_axes, type(self).__name__)
        for name, _, param in expressions.parameter_names(self.tree):
            weight = self.add_weight(
                shape=shape,
                name=name,
                initializer=keras.initializers.Constant(param.init),
                constraint=Bounds(param.low, param.high),
                autocast=False,
            )
            setattr(self, name, weight)

    def call(self, inputs):
        x = ops.convert_to_tensor(inputs)
        out_dtype = keras.backend.standardize_dtype(x.dtype)
        dtype = "float32" if out_dtype in _HALF or "float" not in out_dtype else out_dtype
        bound = COMPOSED_VALUE_BOUND
        x = ops.clip(ops.cast(x, dtype), -bound, bound)
        index = 0

        def evaluate(node):
            nonlocal index
            if node.op == "x":
                return x
            prim = expressions.PRIMITIVES[node.op]
            i = index
            index += 1
            values = [evaluate(a) for a in node.args]
            scalars = [ops.cast(getattr(self, f"{node.op}{i}_{p.name}"), dtype) for p in prim.params]
            y = FUNCTIONS[node.op](*values, *scalars)
            return y if prim.bounded else ops.clip(y, -bound, bound)

        y = evaluate(self.tree)
        if out_dtype in _HALF:
            top = _HALF_MAX[out_dtype]
            y = ops.clip(y, -top, top)
        return y if keras.backend.standardize_dtype(y.dtype) == out_dtype else ops.cast(y, out_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"expression": self.expression, "shared_axes": self.shared_axes})
        return config
