import keras
from keras import ops

from keras_bioact.layers import _params


@keras.saving.register_keras_serializable(package="keras_bioact")
class TabulatedInner(keras.layers.Layer):
    """A frozen inner net `g` evaluated from a table: the fast path for a fixed `g`.

    ```python
    g_fast = TabulatedInner.from_inner(g)        # g: a trained InnerNonlinearity, now frozen
    g_fast.max_error                             # measured max |g_fast - g| on [-bound, bound]^arity
    ```
    `g` is sampled on a regular grid of `grid` points per axis over `[-bound, bound]^arity`
    (the domain of the layer-normalised pre-activations two-argument units feed it) and
    evaluated by bilinear (arity 2) or linear (arity 1) interpolation: four (two) gathers and
    a few multiply-adds per pair instead of the MLP's matmuls.
    Inputs outside the box are computed by the exact `g`, which the layer keeps: whenever a
    batch has any such input, that call evaluates the exact `g` for the whole batch and uses
    its values outside the box (so the result is exact there and interpolated inside). The
    interpolation is differentiable in the inputs, so outer weights train through it (session
    III of the two-argument protocol, `keras_bioact.nin`); the table itself does not train.

    It is never used automatically: the MLP `g` stays the default everywhere, and the table
    replaces it only where you ask for it. Use it only for a frozen `g`: share one instance
    by passing it as `inner=` to `TwoArgDense` / `TwoArgConv2D`, or swap it into a model
    with `model, tables = keras_bioact.nin.tabulate_inner(model)` (which refuses a trainable
    `g`). `max_error` is measured when the table is built from `g`, on the grid's cell
    midpoints and random points; with ReLU `g` the error sits at the kinks and falls about
    linearly with the grid spacing.

    Args:
        inner: the exact inner net (an `InnerNonlinearity`, or its config).
        grid: grid points per axis, >= 2. Default 1025 (a 4 MiB float32 table for arity 2).
        bound: half-width of the tabulated box, > 0. Default 5.0.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, inner, grid=1025, bound=5.0, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        name = type(self).__name__
        legal = "an InnerNonlinearity (arity 1 or 2) or its config"
        inner = _params.deserialized(inner, "inner", name, legal)
        if not isinstance(inner, keras.layers.Layer) or getattr(inner, "arity", None) not in (1, 2):
            raise ValueError(f"{name}: `inner` must be {legal}, got {inner!r}.")
        if getattr(inner, "groups", 1) != 1:
            raise ValueError(
                f"{name}: `inner` must have groups=1 (one net to tabulate), got groups={inner.groups}."
            )
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
            raise ValueError(f"{name}: `grid` must be an integer >= 2, got {grid!r}.")
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0:
            raise ValueError(f"{name}: `bound` must be a number > 0, got {bound!r}.")
        self.inner = inner
        self.inner.trainable = False
        self.arity = int(inner.arity)
        self.grid = int(grid)
        self.bound = float(bound)
        self.max_error = None

    @classmethod
    def from_inner(cls, inner, grid=1025, bound=5.0, check_points=200_000, seed=0, **kwargs):
        """Build the table from a built `inner` and measure `max_error` against it."""
        layer = cls(inner, grid=grid, bound=bound, **kwargs)
        layer.build()
        layer.fill()
        layer.max_error = layer.measure_error(check_points, seed)
        return layer

    def build(self, input_shape=None):
        if not self.inner.built:
            self.inner.build((None, self.arity))
        self.table = self.add_weight(
            shape=(self.grid**self.arity,), name="table", initializer="zeros", trainable=False
        )
        self.built = True

    def _nodes(self):
        return ops.linspace(-self.bound, self.bound, self.grid)

    def fill(self):
        """(Re)compute the table from the exact `inner` (after changing `inner`'s weights)."""
        t = self._nodes()
        if self.arity == 2:
            a, b = ops.meshgrid(t, t, indexing="ij")
            points = ops.stack([ops.reshape(a, (-1,)), ops.reshape(b, (-1,))], axis=-1)
        else:
            points = ops.reshape(t, (-1, 1))
        values = ops.reshape(self.inner(ops.cast(points, self.inner.compute_dtype)), (-1,))
        self.table.assign(ops.cast(values, self.table.dtype))

    def measure_error(self, points=200_000, seed=0):
        """Max |table - g| over cell midpoints of the grid and `points` uniform random points."""
        import numpy as np

        rng = np.random.default_rng(seed)
        x = rng.uniform(-self.bound, self.bound, size=(points, self.arity)).astype("float32")
        nodes = np.linspace(-self.bound, self.bound, self.grid)
        mids = (nodes[:-1] + nodes[1:]) / 2
        if self.arity == 2:
            mids = np.stack(np.meshgrid(mids, mids, indexing="ij"), -1).reshape(-1, 2)[::7]
        else:
            mids = mids[:, None]
        x = np.concatenate([x, mids.astype("float32")])
        diff = ops.abs(self._interpolate(ops.convert_to_tensor(x)) - self.inner(x)[..., 0])
        return float(ops.convert_to_numpy(ops.max(diff)))

    def _interpolate(self, x):
        """Interpolated g at `x` (..., arity), clipped into the box; returns (...)."""
        dtype = self.table.dtype
        x = ops.cast(x, dtype)
        step = 2.0 * self.bound / (self.grid - 1)
        u = (ops.clip(x, -self.bound, self.bound) + self.bound) / step
        i = ops.clip(ops.floor(u), 0, self.grid - 2)
        f = u - i  # in [0, 1]
        i = ops.cast(i, "int32")
        table = self.table
        if self.arity == 1:
            i0, f0 = i[..., 0], f[..., 0]
            return ops.take(table, i0) * (1 - f0) + ops.take(table, i0 + 1) * f0
        ia, ib, fa, fb = i[..., 0], i[..., 1], f[..., 0], f[..., 1]
        base = ia * self.grid + ib
        v00, v01 = ops.take(table, base), ops.take(table, base + 1)
        v10, v11 = ops.take(table, base + self.grid), ops.take(table, base + self.grid + 1)
        return (v00 * (1 - fb) + v01 * fb) * (1 - fa) + (v10 * (1 - fb) + v11 * fb) * fa

    def call(self, inputs):
        y = self._interpolate(inputs)
        any_outside = ops.any(ops.abs(inputs) > self.bound)

        def exact():
            outside = ops.any(ops.abs(inputs) > self.bound, axis=-1)
            return ops.where(outside, ops.cast(self.inner(inputs)[..., 0], y.dtype), y)

        concrete = _concrete_bool(any_outside)
        if concrete is None:  # traced (jit / graph): decide at run time
            y = ops.cond(any_outside, exact, lambda: y)
        elif concrete:  # eager: a Python branch (an eager `cond` would re-trace g every call)
            y = exact()
        return ops.cast(ops.expand_dims(y, -1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"inner": keras.saving.serialize_keras_object(self.inner), "grid": self.grid, "bound": self.bound}
        )
        return config


def _concrete_bool(flag):
    """`bool(flag)` for an eager tensor; None while tracing (jax.jit, tf.function), where the
    value is unknown and converting it raises (jax: a TypeError, TensorFlow: NotImplementedError)."""
    try:
        return bool(ops.convert_to_numpy(flag))
    except (TypeError, RuntimeError):
        return None
