"""The JAX test processes draw Keras' random tensors in size buckets (`helpers.jax_random`, installed
by conftest.py to save compiling): the values must be bit for bit Keras' own."""

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX test helper")

# Below the smallest bucket, a rank-3 shape, and just past a power of two. Every shape costs one
# compile of Keras' own (unbucketed) draw per function and dtype, so the half-precision dtypes
# (a cast after the draw) are checked on one shape.
SHAPES = {"float32": [(1,), (2, 3, 4), (1025,)], "float16": [(3, 7)], "bfloat16": [(3, 7)]}


@pytest.mark.parametrize("dtype", sorted(SHAPES))
@pytest.mark.parametrize("name", ["normal", "uniform", "truncated_normal"])
def test_bucketed_draws_equal_keras_draws(name, dtype):
    from keras.src.backend.jax import random as keras_jax_random

    bucketed = getattr(keras_jax_random, name)
    assert hasattr(bucketed, "unbucketed")  # conftest.py installed it
    params = {"normal": (0.5, 2.0), "uniform": (-1.0, 3.0), "truncated_normal": (0.0, 0.1)}[name]
    for shape in SHAPES[dtype]:
        for seed in (0, 7):
            key = keras.random.SeedGenerator(seed).next()
            ours = bucketed(shape, *params, dtype=dtype, seed=key)
            theirs = bucketed.unbucketed(shape, *params, dtype=dtype, seed=key)
            assert ours.shape == theirs.shape == shape and ours.dtype == theirs.dtype
            ours, theirs = np.asarray(ours, "float32"), np.asarray(theirs, "float32")
            np.testing.assert_array_equal(ours, theirs, err_msg=str(shape))
