import numbers

import keras
from keras import constraints, regularizers

from keras_bioact import _checks
from keras_bioact import constraints as bioact_constraints
from keras_bioact import ops as bioact_ops
from keras_bioact.layers import _params

FORMS = {"eru": bioact_ops.eru, "oru": bioact_ops.oru}


@keras.saving.register_keras_serializable(package="keras_bioact")
class BRU(keras.layers.Layer):
    """Bionodal root unit of Bhumbra ("Deep learning improved by biological activation functions").

    Formulas, with radix `r > 0`:
    ```python
    # form="eru" (exponential root unit)
    f(x) = (r**2 * x + 1) ** (1 / r) - 1 / r    for x >= 0
    f(x) = exp(r * x) - 1 / r                   for x < 0
    # form="oru" (odd root unit)
    f(x) = sign(x) * ((r**2 * abs(x) + 1) ** (1 / r) - 1)
    ```
    Both are C1 at 0 with slope `r`. ERU with `r = 1` is ELU; ORU with `r = 1` is the
    identity. For `r > 1` the positive branch grows like `x ** (1/r)`. In the paper `r` is a
    fixed per-layer hyper-parameter (larger in early layers); pair the preceding layer with
    `keras_bioact.initializers.BRUInitializer(r, form)` for the paper's r-dependent init.

    Every `r > 0` is supported: for `r < 1` the positive branch grows like `x ** (1/r)` and
    exceeds the float range at moderate inputs (`r = 0.5`: `x > 1020` in float16, `x > 7e19`
    in float32). There the output saturates at the largest finite value of the compute dtype,
    and the gradients are those of the unsaturated formula, themselves saturated where they
    exceed the range (never inf or NaN; `keras_bioact.ops.eru`). `r` is stored in the
    variable dtype (float32 under mixed precision).

    Args:
        form: `"eru"` (default) or `"oru"`.
        r: initial (or fixed) radix, > 0. Default 2.
        trainable_r: learn `r` by gradient descent. Default False (as in the paper).
        shared_axes: axes along which `r` is shared, as in `keras.layers.PReLU`. The default
            `"all"` gives one `r` for the layer (the paper's choice); `None` gives one `r`
            per element of `input_shape[1:]`, `[1, 2]` one per channel of a feature map.
        r_regularizer: optional regularizer for `r`.
        r_constraint: constraint for `r`. Default keeps `r >= 1` when `r` is trainable (the
            paper's regime; `r < 1` makes the positive branch super-linear) and `r > 0`
            otherwise.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    bioact_parameters = ("r",)

    def __init__(
        self,
        form="eru",
        r=2.0,
        trainable_r=False,
        shared_axes="all",
        r_regularizer=None,
        r_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        _checks.choice(form, tuple(FORMS), "form", name)
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0 < r < float("inf"):
            raise ValueError(f"{name}: `r` must be a finite number > 0, got {r!r}.")
        self.form = form
        self.r_value = float(r)
        self.trainable_r = bool(trainable_r)
        if r_constraint is None and self.trainable_r:
            if self.r_value < 1.0:
                raise ValueError(
                    f"{name}: a trainable `r` is kept >= 1 by default, so `r` must be >= 1, got "
                    f"{r}; pass `r_constraint=keras_bioact.constraints.Bounds(min_value=...)` "
                    "to learn a smaller radix."
                )
            r_constraint = bioact_constraints.Bounds(min_value=1.0)
        self.r_constraint = _params.constraint(r_constraint, "r_constraint", name)
        self.r_regularizer = _params.regularizer(r_regularizer, "r_regularizer", name)
        self.shared_axes = _params.normalize_shared_axes(shared_axes, name)
        self.supports_masking = True

    def build(self, input_shape):
        shape = _params.param_shape(input_shape, self.shared_axes, type(self).__name__)
        self.r = self.add_weight(
            shape=shape,
            name="r",
            initializer=keras.initializers.Constant(self.r_value),
            regularizer=self.r_regularizer,
            constraint=self.r_constraint,
            trainable=self.trainable_r,
            autocast=False,
        )

    def call(self, inputs):
        return FORMS[self.form](inputs, self.r)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "form": self.form,
                "r": self.r_value,
                "trainable_r": self.trainable_r,
                "shared_axes": self.shared_axes,
                "r_regularizer": regularizers.serialize(self.r_regularizer),
                "r_constraint": constraints.serialize(self.r_constraint),
            }
        )
        return config
