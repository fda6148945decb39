"""End-to-end neuroevolution runs (single_backend: slow, backend-independent logic)."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from helpers import evolution as evolution_utils
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


def _read_rows(path):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return max(0, len(f.read().strip().splitlines()) - 1)


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    script = os.path.join(HERE, "evolution.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")])}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, script, str(killed), "--generations", "10", "--sleep", "0.4"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 400  # the child imports keras/jax/evotorch first: slow on a busy machine
    while _read_rows(killed / "history.csv") < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    done_before = _read_rows(killed / "history.csv")
    assert 2 <= done_before < 10
    assert not (killed / "final.json").exists()
    resumed = subprocess.run(
        [sys.executable, script, str(killed), "--generations", "10", "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    uninterrupted = tmp_path / "straight"
    assert evolution_utils.main([str(uninterrupted), "--generations", "10"]) == 0  # in this process
    a = json.loads((killed / "final.json").read_text())
    b = json.loads((uninterrupted / "final.json").read_text())
    np.testing.assert_allclose(a["best_genes"], b["best_genes"], rtol=1e-6, atol=1e-7)
    assert a["best_fitness"] == pytest.approx(b["best_fitness"], rel=1e-6)
    rows_a = (killed / "history.csv").read_text().splitlines()
    rows_b = (uninterrupted / "history.csv").read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 11
    for ra, rb in zip(rows_a[1:], rows_b[1:], strict=True):  # same best/mean/spread each generation
        np.testing.assert_allclose(
            [float(v) for v in ra.split(",")[:6]], [float(v) for v in rb.split(",")[:6]], rtol=1e-6
        )


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


@pytest.mark.parametrize("mode", ["frozen", "baldwinian"])
def test_two_ray_actors_give_the_results_of_one_process(mode):
    """Each of 2 local Ray actors evaluates (and in the learning modes trains) its slice of the
    population vectorised; the search is the one a single process runs, generation by generation."""
    pytest.importorskip("ray")
    import ray

    x, y = classification_data(64)

    def run(num_actors):
        keras.utils.set_random_seed(0)
        return evolve(
            classifier(),
            (x[32:], y[32:]),
            train_data=(x[:32], y[:32]) if mode != "frozen" else None,
            target="gamma",
            granularity="parameter",
            mode=mode,
            popsize=6,
            generations=2,
            metric="crossentropy",
            seed=3,
            num_actors=num_actors,
            progress=False,
        )

    alone = run(0)
    try:
        actors = run(2)
    finally:
        ray.shutdown()
    assert len(actors.history) == 2 and np.isfinite(actors.best_fitness)
    for a, b in zip(alone.history, actors.history, strict=True):
        np.testing.assert_allclose([b["best"], b["mean"]], [a["best"], a["mean"]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(actors.best_fitness, alone.best_fitness, rtol=1e-5, atol=1e-6)
