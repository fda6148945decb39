"""End-to-end neuroevolution runs (single_backend: slow, backend-independent logic). Resuming
after SIGKILL: tests/search/test_kill_harness.py."""

import os

import keras
import numpy as np
import pytest
from helpers.evolution import TARGET_N, TARGET_S, classification_data, classifier, teacher_problem

from keras_bioact.search.evolution import ALGORITHMS, PopulationEvaluator, evolve

pytestmark = pytest.mark.single_backend
TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(TESTS, "helpers")
ROOT = os.path.dirname(TESTS)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_improves_on_teacher_problem(algorithm):
    student, data = teacher_problem(128)
    start = PopulationEvaluator(student, *data, metric="mse").evaluate(
        np.concatenate([np.full(4, 1.5), np.full(4, 0.5)])[None]
    )[0]
    result = evolve(
        student,
        data,
        target="gamma",
        algorithm=algorithm,
        popsize=16,
        generations=12,
        metric="mse",
        progress=False,
        seed=0,
    )
    assert result.best_fitness < 0.5 * start, (algorithm, start, result.best_fitness)
    assert len(result.history) == 12
    assert result.history[-1]["best_so_far"] == result.best_fitness


def test_snes_recovers_teacher_gamma_parameters():
    student, data = teacher_problem(256)
    result = evolve(
        student,
        data,
        target="gamma",
        algorithm="snes",
        popsize=24,
        generations=60,
        metric="mse",
        stdev_init=0.5,
        progress=False,
        seed=0,
    )
    assert result.best_fitness < 1e-4
    n, s = result.best_parameters["gamma/n"], result.best_parameters["gamma/s"]
    np.testing.assert_allclose(n, TARGET_N, rtol=0.05)
    np.testing.assert_allclose(s, TARGET_S, atol=0.03)
    # apply_best wrote the solution into the model
    np.testing.assert_allclose(keras.ops.convert_to_numpy(student.get_layer("gamma").n), n)


def test_resume_refuses_changed_settings(tmp_path):
    student, data = teacher_problem(32)
    evolve(
        student,
        data,
        target="gamma",
        popsize=6,
        generations=3,
        metric="mse",
        out_dir=str(tmp_path),
        progress=False,
        stop_after=1,
    )
    with pytest.raises(ValueError, match="popsize"):
        evolve(
            student,
            data,
            target="gamma",
            popsize=8,
            generations=3,
            metric="mse",
            out_dir=str(tmp_path),
            resume=True,
            progress=False,
        )
    result = evolve(
        student,
        data,
        target="gamma",
        popsize=6,
        generations=3,
        metric="mse",
        out_dir=str(tmp_path),
        resume=True,
        progress=False,
    )
    assert [row["generation"] for row in result.history] == [1, 2, 3]


@pytest.mark.parametrize("mode", ["baldwinian", "lamarckian"])
def test_learning_modes(mode):
    model = classifier()
    x, y = classification_data(64)
    before = [np.array(w) for w in model.get_weights()]
    result = evolve(
        model,
        (x[32:], y[32:]),
        train_data=(x[:32], y[:32]),
        target="gamma",
        granularity="parameter",
        mode=mode,
        popsize=4,
        generations=2,
        metric="crossentropy",
        train_epochs=1,
        learning_rate=0.1,
        progress=False,
        seed=0,
    )
    assert np.isfinite(result.best_fitness)
    # the caller's outer weights are untouched (candidates train a private copy)
    after = model.get_weights()
    for i in (0, 1, 4, 5):  # dense_a and dense_b kernels / biases
        np.testing.assert_array_equal(before[i], after[i])


def test_two_ray_actors_give_the_results_of_one_process():
    """Each of 2 local Ray actors trains and evaluates its slice of the population vectorised
    (Baldwinian mode: the frozen mode's evaluation plus training); the search is the one a single
    process runs, generation by generation. One mode: starting Ray and its actors (each imports
    Keras) is the expensive part, and the frozen mode differs only in passing no training data."""
    pytest.importorskip("ray")
    import ray

    x, y = classification_data(64)

    def run(num_actors):
        keras.utils.set_random_seed(0)
        return evolve(
            classifier(),
            (x[32:], y[32:]),
            train_data=(x[:32], y[:32]),
            target="gamma",
            granularity="parameter",
            mode="baldwinian",
            popsize=6,
            generations=2,
            metric="crossentropy",
            seed=3,
            num_actors=num_actors,
            progress=False,
        )

    try:
        alone = run(0)
        actors = run(2)
        assert len(actors.history) == 2 and np.isfinite(actors.best_fitness)
        for a, b in zip(alone.history, actors.history, strict=True):
            np.testing.assert_allclose([b["best"], b["mean"]], [a["best"], a["mean"]], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(actors.best_fitness, alone.best_fitness, rtol=1e-5, atol=1e-6)
    finally:
        ray.shutdown()
