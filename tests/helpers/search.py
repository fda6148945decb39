"""Helpers for the search tests: a model template importable by worker subprocesses as
`helpers.search:slow_mlp` (tests/ on PYTHONPATH), and a keras-free objective."""

import time

from keras_bioact.search import mlp
from keras_bioact.search import space as space_lib


def slow_mlp(activation, input_shape, num_classes, hidden=(8,), delay=0.0):
    """`keras_bioact.search.mlp` that first sleeps `delay` seconds (to kill a worker mid-trial),
    in short naps: a signal that the kernel hands to another thread (JAX's, TensorFlow's) wakes
    no sleep of the main thread, which sees it only after its nap, as training sees it after a batch."""
    end = time.monotonic() + float(delay)
    while time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))
    return mlp(activation, input_shape, num_classes, hidden=hidden)


def sleepy_objective(space, delay=0.05):
    """A keras-free objective: samples an activation config and scores it quickly."""

    def objective(trial):
        from keras_bioact.search.optuna.objective import worker_identity

        trial.set_user_attr("worker", worker_identity())  # first, as make_objective does
        config = space_lib.sample(space, trial)
        trial.set_user_attr("activation", config)
        time.sleep(delay)
        return float(config.get("n", 1.0)) + float(config.get("s", 0.0))

    return objective
