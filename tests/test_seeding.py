"""`keras_bioact.seeding.set_random_seed`: the draws of `keras.utils.set_random_seed`, without
importing TensorFlow under the JAX and torch backends."""

import os
import random
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_bioact.seeding import set_random_seed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _draws():
    out = []
    if keras.backend.backend() == "torch":  # first: some Keras ops reseed torch's generator
        import torch

        out.append(torch.rand(3).numpy())
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    out += [
        random.random(),
        np.random.random(),  # noqa: NPY002
        keras.ops.convert_to_numpy(keras.random.uniform((3,))),  # Keras' global seed generator
        keras.ops.convert_to_numpy(dense.kernel),
    ]
    return out


def test_same_draws_as_keras_set_random_seed():
    """In this process (TensorFlow imported or not); a fresh process: the last test."""
    keras.utils.set_random_seed(11)
    _draws()  # moves every generator on
    set_random_seed(5)
    ours = _draws()
    keras.utils.set_random_seed(5)
    theirs = _draws()
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    set_random_seed(6)
    assert not np.array_equal(_draws()[-1], theirs[-1])


def test_a_bad_seed_is_refused():
    with pytest.raises(ValueError, match="seed must be an int"):
        set_random_seed(1.5)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="TensorFlow is the backend")
def test_tensorflow_is_not_imported_and_the_draws_are_the_same():
    """In a fresh process (here TensorFlow may be imported already, and then it is seeded too)."""
    code = (
        "import sys, keras, numpy as np\n"
        "from tests.test_seeding import _draws\n"
        "from keras_bioact.seeding import set_random_seed\n"
        "set_random_seed(3)\n"
        "ours = _draws()\n"
        "m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "m.compile(optimizer='sgd', loss='mse')\n"
        "m.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0)\n"
        "print('tensorflow' in sys.modules)\n"
        "keras.utils.set_random_seed(3)\n"
        "for a, b in zip(ours, _draws(), strict=True):\n"
        "    np.testing.assert_array_equal(a, b)\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=keras.backend.backend())
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
