"""The primitives of composed activations in `keras.ops` (private to
`keras_bioact.layers.ComposedActivation`). Grammar, parameter ranges and formulas:
`keras_bioact.expressions`; float64 references: `keras_bioact.reference.COMPOSED_PRIMITIVES`.

Every function takes float32 (or float64) tensors and the primitive's learnable scalars in the
order of its `Param`s. Branches are masked before they are evaluated (`elu`, `selu`), and the
operations that overflow see a clipped input (`exp`: at most `COMPOSED_EXP_MAX`; `square`:
within +-`COMPOSED_SQUARE_MAX`), so no unused branch produces Inf or NaN. `gamma` is the one
`keras_bioact.layers.GammaActivation` trains (`ops._trained_gamma`: the hand-written backward pass
on TensorFlow and JAX, same values as `ops.gamma`, gradients equal to round-off).
"""

from keras import ops

from keras_bioact import ops as bioact_ops
from keras_bioact.reference import COMPOSED_EXP_MAX, COMPOSED_SQUARE_MAX, SELU_ALPHA, SELU_SCALE


def _elu(x, alpha=1.0):
    return ops.where(x > 0, x, alpha * ops.expm1(ops.minimum(x, 0.0)))


def _square(x):
    c = ops.clip(x, -COMPOSED_SQUARE_MAX, COMPOSED_SQUARE_MAX)
    return c * c


FUNCTIONS = {
    "identity": lambda x: x,
    "neg": lambda x: -x,
    "abs": ops.abs,
    "relu": ops.relu,
    "leaky": lambda x, a: ops.where(x >= 0, x, a * x),
    "elu": _elu,
    "selu": lambda x: SELU_SCALE * _elu(x, SELU_ALPHA),
    "gelu": lambda x: ops.gelu(x, approximate=False),
    "silu": ops.silu,
    "swish": lambda x, beta: x * ops.sigmoid(beta * x),
    "mish": lambda x: x * ops.tanh(ops.softplus(x)),
    "softplus": ops.softplus,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "erf": ops.erf,
    "sin": ops.sin,
    "cos": ops.cos,
    "softsign": lambda x: x / (1.0 + ops.abs(x)),
    "square": _square,
    "exp": lambda x: ops.exp(ops.minimum(x, COMPOSED_EXP_MAX)),
    "log1p_abs": lambda x: ops.log1p(ops.abs(x)),
    "gamma": bioact_ops._trained_gamma,  # as GammaActivation trains it: same values
    "eru": bioact_ops.eru,
    "oru": bioact_ops.oru,
    "scale": lambda x, a: a * x,
    "shift": lambda x, b: x + b,
    "add": ops.add,
    "sub": ops.subtract,
    "mul": ops.multiply,
    "max": ops.maximum,
    "min": ops.minimum,
    "wsum": lambda u, v, w: w * u + (1.0 - w) * v,
}
