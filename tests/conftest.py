import os

# One intra-op thread for every backend, here and in the processes the tests start (they inherit
# the environment): the tests' models are tiny, and on a 2-core CI machine a thread pool per
# process costs more in synchronisation than it gains (measured: the same four files take 44 s
# instead of 119 s). Set before Keras imports its backend; an explicit setting wins.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
# JAX: one persistent compilation cache for this checkout's test processes (the pytest-xdist
# workers and the processes tests start), every compilation of 0.1 s or more cached (writing the
# ~1,000 tiny eager-op programs of three layer files too cost ~4 % of their time). Keras jits a
# new function per model, so equal models in other tests, other workers and later runs compile once; about two
# thirds of a JAX layer test's time is compiling (two files: 76 s with a cold cache, 27 s warm).
# A clean checkout starts cold. `.jax_cache` is ignored by git; delete it to start cold again.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(_ROOT, ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_bioact.seeding import set_random_seed  # noqa: E402

BACKEND = keras.backend.backend()
ALL_BACKENDS = os.environ.get("KERAS_BIOACT_ALL_BACKENDS") == "1"
# single_backend tests run under eager torch: no compilation, so the fastest backend for the
# small end-to-end trainings most of them are
SINGLE_BACKEND = "torch"

if BACKEND == "torch":
    import torch

    torch.set_num_threads(1)
if BACKEND == "jax":
    # Keras' random draws (every weight's initial values) compiled once per size bucket instead
    # of once per shape, with bit-identical values (helpers/jax_random.py; checked by
    # test_jax_random_buckets.py): about half of the JAX layer tests' time was these compiles.
    from helpers import jax_random

    jax_random.install()


def pytest_collection_modifyitems(config, items):
    """Skip a `single_backend` test unless this is its backend: `SINGLE_BACKEND`, or the one the
    marker names (`@pytest.mark.single_backend("jax")` for a test that needs a compiling backend)."""
    if ALL_BACKENDS:
        return
    for item in items:
        marker = item.get_closest_marker("single_backend")
        wanted = marker.args[0] if marker and marker.args else SINGLE_BACKEND
        if marker and BACKEND != wanted:
            reason = f"single_backend test: runs under the {wanted} backend only"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _seed_and_clear():
    set_random_seed(1234)  # no TensorFlow import under jax and torch
    yield
    keras.backend.clear_session(free_memory=False)  # a full gc.collect() per test costs ~2 s


@pytest.fixture
def rng():
    return np.random.default_rng(0)
