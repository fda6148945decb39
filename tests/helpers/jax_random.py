"""Keras' random draws under JAX, compiled once per size bucket instead of once per shape.

Under the JAX backend Keras draws every random tensor (each weight's initial values) with
`jax.random.<distribution>(key, shape)`, a program XLA compiles anew for every shape. That
compile (threefry and the distribution's transform) took about 1.3 s per new shape on this
2-core machine, and the layer tests build many small layers of many shapes: the two-argument
layer files took 319 s before and 122 s with bucketed draws (one process, a loaded machine).
`install()` makes Keras draw the flat size rounded up to a power of two (at least
`MIN_BUCKET`) and keep the first elements. With JAX's partitionable threefry (the default since
JAX 0.5), element `i` of a draw depends only on the key and `i`, and the distributions' transforms
are element-wise, so the values are bit for bit the ones Keras draws itself:
`tests/test_jax_random_buckets.py` checks that for every patched function, several shapes and
the three float dtypes, and fails if a JAX release changes it. Draws it cannot prove equal (array
parameters, an unknown size, threefry not partitionable) go to Keras unchanged.
"""

import math

import jax
import numpy as np

MIN_BUCKET = 1024
PATCHED = ("normal", "uniform", "truncated_normal")


def bucket(n):
    """The size drawn for `n` elements: the next power of two, at least `MIN_BUCKET`."""
    return max(MIN_BUCKET, 1 << (n - 1).bit_length())


def _bucketed(draw):
    def bucketed_draw(shape, *args, **kwargs):
        params = [*args, *(v for k, v in kwargs.items() if k not in ("dtype", "seed"))]
        try:
            dims = tuple(int(d) for d in shape)
        except TypeError:
            return draw(shape, *args, **kwargs)
        n = math.prod(dims)
        scalars = all(isinstance(p, (int, float)) for p in params)
        if n == 0 or not scalars or not jax.config.jax_threefry_partitionable:
            return draw(shape, *args, **kwargs)
        flat = draw((bucket(n),), *args, **kwargs)
        if isinstance(flat, jax.core.Tracer):
            return flat[:n].reshape(dims)
        # On the host: slicing and reshaping on the device would compile again per shape.
        return jax.numpy.asarray(np.asarray(flat)[:n].reshape(dims))

    bucketed_draw.unbucketed = draw
    return bucketed_draw


def install():
    """Patch `keras.src.backend.jax.random`'s draws (idempotent); Keras calls them at call time."""
    from keras.src.backend.jax import random as keras_jax_random

    for name in PATCHED:
        draw = getattr(keras_jax_random, name)
        if not hasattr(draw, "unbucketed"):
            setattr(keras_jax_random, name, _bucketed(draw))
