"""Neuroevolution building blocks that must hold on every backend (fast)."""

import json
import os

import keras
import numpy as np
import pytest
from helpers.evolution import classification_data, classifier, teacher_problem

from keras_bioact.params import ParameterView
from keras_bioact.search import evolution
from keras_bioact.search.evolution import Genome, PopulationEvaluator, evolve, load_best, select_parameters


def _population(view, size, seed=0, spread=0.4):
    rng = np.random.default_rng(seed)
    u = view.get_vector("unconstrained") + spread * rng.normal(size=(size, view.size))
    return view.to_natural(u, "unconstrained")


@pytest.mark.parametrize("metric", ["accuracy", "crossentropy"])
def test_vectorized_equals_loop(metric):
    model = classifier()
    x, y = classification_data()
    vec = PopulationEvaluator(model, x, y, metric=metric, vectorized=True, batch_size=64)
    loop = PopulationEvaluator(model, x, y, metric=metric, vectorized=False, batch_size=64)
    pop = _population(vec.view, 4)
    before = vec.view.get_vector()
    a = vec.evaluate(pop)
    b = loop.evaluate(pop)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if metric == "crossentropy":  # (an untrained net may give every candidate the same accuracy)
        assert np.ptp(a) > 0  # the candidates really differ
    np.testing.assert_array_equal(vec.view.get_vector(), before)  # nothing was assigned for good
    # population chunks give the same answer
    chunked = PopulationEvaluator(model, x, y, metric=metric, vectorized=True, population_chunk=4)
    np.testing.assert_allclose(chunked.evaluate(pop), a, rtol=1e-5, atol=1e-6)


def test_vectorized_auto_uses_vmap_and_mse_matches():
    student, (x, y) = teacher_problem(64)
    vec = PopulationEvaluator(student, x, y, metric="mse")
    assert vec.vectorized is True, getattr(vec, "fallback_reason", "")
    pop = _population(vec.view, 5)
    loop = PopulationEvaluator(student, x, y, metric="mse", vectorized=False)
    np.testing.assert_allclose(vec.evaluate(pop), loop.evaluate(pop), rtol=1e-5, atol=1e-7)


def test_accuracy_counts_ties_as_wrong():
    # A dead network (constant logits) must not score: ties are wrong.
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(3, kernel_initializer="zeros", name="d")(inputs)
    from keras_bioact.layers import GammaActivation

    outputs = GammaActivation(shared_axes="all", name="g")(outputs)
    model = keras.Model(inputs, outputs)
    x = np.ones((5, 2), "float32")
    y = np.array([0, 1, 2, 0, 1])
    ev = PopulationEvaluator(model, x, y, metric="accuracy")
    np.testing.assert_array_equal(ev.evaluate(ev.view.get_vector()[None]), [0.0])


def test_select_parameters_targets():
    model = classifier()
    assert [p.path for p in select_parameters(model, "gamma")] == ["gamma_a/n", "gamma_a/s"]
    assert [p.path for p in select_parameters(model, "bru")] == ["bru_b/r"]
    assert len(select_parameters(model, "all")) == 3
    with pytest.raises(ValueError, match="target"):
        select_parameters(model, "relu")
    with pytest.raises(ValueError, match="inner"):
        select_parameters(model, "inner")
    with pytest.raises(ValueError, match="nope"):
        select_parameters(model, "gamma", layers=["nope"])


def test_genome_granularity_roundtrip():
    model = classifier(per_neuron_r=True)
    view = ParameterView(model, parameters=select_parameters(model, "all"))
    per_layer = Genome(view, "parameter")
    assert per_layer.size == 3
    natural = per_layer.natural(np.array([[0.0, 1.0, -0.5]]))[0]
    n, s, r = view.split(natural)
    assert np.all(n == n.flat[0]) and np.all(s == s.flat[0]) and np.all(r == r.flat[0])
    assert r.flat[0] >= 1.0  # BRU's trainable r is bounded below by 1
    element = Genome(view, "element")
    genes = element.current()
    np.testing.assert_allclose(element.natural(genes), view.get_vector(), rtol=1e-6, atol=1e-6)


class _TinyInner(keras.layers.Layer):
    """A layer whose activation parameters are weights (like the shared inner MLP g)."""

    bioact_parameters = ("kernel", "bias")

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 1), name="kernel", initializer="ones")
        self.bias = self.add_weight(shape=(1,), name="bias", initializer="zeros")

    def call(self, x):
        return keras.ops.tanh(x * keras.ops.reshape(self.kernel, (-1,)) + self.bias)


def test_inner_target_generic_weights():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    h = keras.layers.Dense(3, name="d")(inputs)
    h = _TinyInner(name="inner_g")(h)
    outputs = keras.layers.Dense(2, name="out")(h)
    model = keras.Model(inputs, outputs)
    params = select_parameters(model, "inner")
    assert [p.path for p in params] == ["inner_g/kernel", "inner_g/bias"]
    x = np.random.default_rng(1).normal(size=(40, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    vec = PopulationEvaluator(model, x, y, parameters=params, metric="crossentropy", vectorized=True)
    loop = PopulationEvaluator(model, x, y, parameters=params, metric="crossentropy", vectorized=False)
    pop = _population(vec.view, 4)
    np.testing.assert_allclose(vec.evaluate(pop), loop.evaluate(pop), rtol=1e-5, atol=1e-6)
    start = vec.evaluate(vec.view.get_vector()[None])[0]
    result = evolve(
        model, (x, y), target="inner", popsize=8, generations=4, metric="crossentropy", progress=False, seed=1
    )
    assert result.best_fitness < start
    assert set(result.best_parameters) == {"inner_g/kernel", "inner_g/bias"}


def test_result_save_and_load_best(tmp_path):
    student, data = teacher_problem(64)
    result = evolve(student, data, target="gamma", popsize=6, generations=2, metric="mse", progress=False)
    path = result.save(str(tmp_path))
    fresh, _ = teacher_problem(64)
    load_best(fresh, str(tmp_path))
    for p in select_parameters(fresh, "gamma"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(p.variable), result.best_parameters[p.path])
    assert os.path.exists(path) and os.path.exists(tmp_path / "best.json")
    # best.json holds the evolved values themselves (as in the .npz), and the repr is short
    best = json.loads((tmp_path / "best.json").read_text())
    assert set(best["parameters"]) == set(result.best_parameters)
    for k, v in result.best_parameters.items():
        np.testing.assert_array_equal(np.asarray(best["parameters"][k], dtype="float32"), v)
        assert best["shapes"][k] == list(v.shape)
    text = repr(result)
    assert text.startswith("EvolutionResult(best_fitness=") and len(text) < 400 and "array" not in text
    assert "gamma/n: [" in text.replace("'", "")  # 4 values: shown as they are
    with pytest.raises(ValueError, match="no activation parameters"):
        load_best(classifier(), str(tmp_path))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"algorithm": "adam"}, "algorithm"),
        ({"mode": "darwinian"}, "mode"),
        ({"popsize": 1}, "popsize"),
        ({"generations": 0}, "generations"),
        ({"stdev_init": 0}, "stdev_init"),
        ({"mode": "baldwinian"}, "train_data"),
        ({"mode": "lamarckian", "num_actors": 2, "train_data": ([0], [0])}, "lamarckian"),
        ({"resume": True}, "out_dir"),
        ({"metric": "f1"}, "metric"),
        ({"metric": lambda y, p: p}, "sense"),
    ],
)
def test_bad_arguments(kwargs, match):
    student, data = teacher_problem(16)
    with pytest.raises(ValueError, match=match):
        evolve(student, data, progress=False, **kwargs)


def test_problem_has_seed_for_ray_actors():
    # EvoTorch 0.6.1's actors call `problem.seed(...)`; Problem only defines manual_seed.
    cls = evolution.ActivationProblem
    problem = cls(
        config={}, genome_size=3, center=np.zeros(3), stdev_init=1.0, sense="min", seed=1, num_actors=0
    )
    problem.seed(5)
    a = problem.make_gaussian(4)
    problem.seed(5)
    np.testing.assert_array_equal(a.numpy(), problem.make_gaussian(4).numpy())


def test_inner_target_two_argument_layers():
    from keras_bioact.layers import InnerNonlinearity, TwoArgDense

    keras.utils.set_random_seed(0)
    inner = InnerNonlinearity(hidden_units=(4,), name="g")
    inputs = keras.Input((3,))
    h = TwoArgDense(4, inner=inner, name="two_a")(inputs)
    h = TwoArgDense(3, inner=inner, name="two_b")(h)  # g shared by both layers
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(h))
    params = select_parameters(model, "inner")
    assert [p.path for p in params] == ["g/kernel_0", "g/bias_0", "g/kernel_1", "g/bias_1"]
    x = np.random.default_rng(2).normal(size=(48, 3)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype("int32")
    vec = PopulationEvaluator(model, x, y, parameters=params, metric="crossentropy", vectorized=True)
    loop = PopulationEvaluator(model, x, y, parameters=params, metric="crossentropy", vectorized=False)
    pop = _population(vec.view, 3)
    np.testing.assert_allclose(vec.evaluate(pop), loop.evaluate(pop), rtol=1e-5, atol=1e-6)


def test_vectorized_follows_weight_updates():
    # The compiled call reads the variables at every call (JAX training deletes old buffers).
    model = classifier()
    x, y = classification_data(32)
    vec = PopulationEvaluator(model, x, y, metric="crossentropy", vectorized=True)
    pop = _population(vec.view, 2)
    first = vec.evaluate(pop)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    second = vec.evaluate(pop)
    loop = PopulationEvaluator(model, x, y, metric="crossentropy", vectorized=False)
    np.testing.assert_allclose(second, loop.evaluate(pop), rtol=1e-5, atol=1e-6)
    assert not np.allclose(first, second)


@pytest.mark.single_backend
def test_tensorboard_writes_the_documented_tags(tmp_path):
    # evolve's TensorBoard logs are EvolutionTensorBoardLogger's scheme (docs/tensorboard.md),
    # computed from the population's fitness, and agree with history.csv.
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    student, data = teacher_problem(64)
    result = evolve(
        student,
        data,
        target="gamma",
        popsize=6,
        generations=3,
        metric="mse",
        out_dir=str(tmp_path),
        progress=False,
    )
    acc = EventAccumulator(
        str(tmp_path / "tensorboard" / "evolution"), size_guidance={"scalars": 0, "histograms": 0}
    )
    acc.Reload()
    tags = acc.Tags()
    assert set(tags["scalars"]) == {
        f"fitness/{k}" for k in ("best", "mean", "median", "worst", "std", "failed", "best_so_far")
    }
    assert tags["histograms"] == ["fitness"]
    for tag, key in (("best", "best"), ("mean", "mean"), ("std", "spread"), ("best_so_far", "best_so_far")):
        events = acc.Scalars(f"fitness/{tag}")
        assert [e.step for e in events] == [1, 2, 3]
        np.testing.assert_allclose([e.value for e in events], [row[key] for row in result.history], rtol=1e-6)
    worst = [e.value for e in acc.Scalars("fitness/worst")]
    assert all(w > row["best"] for w, row in zip(worst, result.history, strict=True))  # mse is minimised
    assert [h.histogram_value.num for h in acc.Histograms("fitness")] == [6, 6, 6]
