import os

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
ALL_BACKENDS = os.environ.get("KERAS_BIOACT_ALL_BACKENDS") == "1"


def pytest_collection_modifyitems(config, items):
    if ALL_BACKENDS or BACKEND == "jax":
        return
    skip = pytest.mark.skip(reason="single_backend test: runs under the jax backend only")
    for item in items:
        if "single_backend" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_and_clear():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session(free_memory=False)  # a full gc.collect() per test costs ~2 s


@pytest.fixture
def rng():
    return np.random.default_rng(0)
