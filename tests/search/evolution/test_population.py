"""PopulationTrainer: vectorised training of a population equals the per-candidate fit loop."""

import keras
import numpy as np
import pytest
from helpers.evolution import classification_data, classifier, teacher_problem

from keras_bioact.layers import GammaActivation
from keras_bioact.search.evolution import PopulationTrainer, select_parameters
from keras_bioact.search.evolution.runtime import _Runtime


def _population(view, size, seed=0, spread=0.4):
    rng = np.random.default_rng(seed)
    u = view.get_vector("unconstrained") + spread * rng.normal(size=(size, view.size))
    return view.to_natural(u, "unconstrained")


def _classifier_setup(n=70):
    model = classifier()
    x, y = classification_data(n + 40)
    params = select_parameters(model, "all")
    kw = dict(learning_rate=0.1, epochs=2, batch_size=32, val_data=(x[n:], y[n:]), metric="crossentropy")
    return model, params, (x[:n], y[:n]), kw


def _assert_same(a, b):
    np.testing.assert_allclose(a.learned, b.learned, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_vectorized_training_equals_fit_loop(momentum):
    model, params, (x, y), kw = _classifier_setup()  # 70 samples: two full batches and a partial one
    start = [np.array(w) for w in model.get_weights()]
    vec = PopulationTrainer(model, params, x, y, vectorized=True, momentum=momentum, **kw)
    loop = PopulationTrainer(model, params, x, y, vectorized=False, momentum=momentum, **kw)
    pop = _population(vec.view, 4)
    a = vec.train(pop, return_weights=True)
    b = loop.train(pop, return_weights=True)
    _assert_same(a, b)
    for wa, wb in zip(a.weights[0], b.weights[0], strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-5)
    # training really happened: parameters and outer weights moved, and differently per candidate
    assert np.max(np.abs(a.learned - pop)) > 1e-3
    kernel = a.weights[0][0]
    assert kernel.shape[0] == 4 and np.max(np.abs(kernel - start[0])) > 1e-3
    assert np.ptp(a.scores) > 0
    # the model itself is left as it was
    for w0, w1 in zip(start, model.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
    # same inputs, same results (the loop resets its optimizer; the vectorised path is pure)
    _assert_same(vec.train(pop), a)
    _assert_same(loop.train(pop), b)


def test_mse_teacher_problem_and_constraints():
    student, (x, y) = teacher_problem(48)
    params = select_parameters(student, "gamma")
    kw = dict(loss="mse", learning_rate=0.5, epochs=1, batch_size=16, val_data=(x, y), metric="mse")
    vec = PopulationTrainer(student, params, x, y, vectorized=True, **kw)
    loop = PopulationTrainer(student, params, x, y, vectorized=False, **kw)
    pop = _population(vec.view, 3, spread=1.0)
    a, b = vec.train(pop), loop.train(pop)
    _assert_same(a, b)
    low, high = vec.view.bounds()
    assert np.all(a.learned >= low) and np.all(a.learned <= high)  # s in [0, 1] after every step


def test_regularisers_and_batchnorm_state_match_the_loop():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4))
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(6, kernel_regularizer=keras.regularizers.L2(0.05), name="dense")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = GammaActivation(n_regularizer=keras.regularizers.L2(0.1), name="gamma")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))
    x, y = classification_data(48)
    kw = dict(learning_rate=0.1, batch_size=16, val_data=(x, y), metric="crossentropy")
    vec = PopulationTrainer(model, None, x, y, vectorized=True, **kw)
    pop = _population(vec.view, 3)
    a = vec.train(pop, return_weights=True)
    b = PopulationTrainer(model, None, x, y, vectorized=False, **kw).train(pop, return_weights=True)
    _assert_same(a, b)
    assert a.weights[1], "BatchNormalization has non-trainable moving statistics"
    start = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    for wa, wb, w0 in zip(a.weights[1], b.weights[1], start, strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-5)
        assert np.max(np.abs(wa - w0)) > 1e-4  # the moving statistics were updated per candidate


def test_chunking_gives_the_same_results():
    model, params, (x, y), kw = _classifier_setup()
    whole = PopulationTrainer(model, params, x, y, **kw)
    pop = _population(whole.view, 5)
    a = whole.train(pop)
    assert whole.vectorized, whole.fallback_reason
    chunked = PopulationTrainer(model, params, x, y, population_chunk=2, **kw)
    assert chunked.chunk_size(5) == 2
    _assert_same(chunked.train(pop), a)
    # a memory budget of 2.5 candidates: chunks of 2 (same trainer, so nothing is recompiled)
    chunked.population_chunk, chunked.memory_budget = None, 2.5 * chunked.bytes_per_candidate()
    assert chunked.chunk_size(5) == 2
    assert chunked.chunk_size(1) == 1
    _assert_same(chunked.train(pop), a)


def test_dropout_falls_back_to_the_loop():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4))
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(6, name="dense")(h)
    h = GammaActivation(name="gamma")(h)
    h = keras.layers.Dropout(0.3, name="drop")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))
    x, y = classification_data(48)
    kw = dict(learning_rate=0.1, batch_size=16, val_data=(x, y))
    auto = PopulationTrainer(model, None, x, y, **kw)
    assert auto.vectorized is False
    assert "drop" in auto.fallback_reason
    result = auto.train(_population(auto.view, 2))
    assert result.learned.shape == (2, auto.view.size) and np.all(np.isfinite(result.scores))
    with pytest.raises(ValueError, match="vectorized=True"):
        PopulationTrainer(model, None, x, y, vectorized=True, **kw)


def test_auto_falls_back_when_the_backend_cannot_vectorise(monkeypatch):
    model, params, (x, y), kw = _classifier_setup(40)

    def fail(self):
        raise NotImplementedError("no batching rule")

    for name in ("_build_jax", "_build_torch", "_build_tensorflow"):
        monkeypatch.setattr(PopulationTrainer, name, fail)
    auto = PopulationTrainer(model, params, x, y, **kw)
    pop = _population(auto.view, 2)
    result = auto.train(pop)
    assert auto.vectorized is False and "no batching rule" in auto.fallback_reason
    _assert_same(result, PopulationTrainer(model, params, x, y, vectorized=False, **kw).train(pop))
    with pytest.raises(NotImplementedError, match="no batching rule"):
        PopulationTrainer(model, params, x, y, vectorized=True, **kw).train(pop)


def _runtime(mode, vectorized="auto"):
    model = classifier()
    x, y = classification_data(64)
    config = {
        "mode": mode,
        "target": "gamma",
        "granularity": "parameter",
        "metric": "crossentropy",
        "learning_rate": 0.1,
        "train_epochs": 1,
        "train_batch_size": 16,
        "vectorized": vectorized,
    }
    return _Runtime(model, {"val": (x[32:], y[32:]), "train": (x[:32], y[:32])}, config)


def test_lamarckian_returns_learned_genes_and_baldwinian_does_not():
    lam = _runtime("lamarckian")
    assert lam.trainer.vectorized
    genes = np.stack([lam.genome.current() + d for d in (-0.3, 0.0, 0.3)])
    scores, new_genes = lam.evaluate(genes)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    assert new_genes.shape == genes.shape and np.max(np.abs(new_genes - genes)) > 1e-4
    learned = lam.trainer.train(lam.genome.natural(genes)).learned
    np.testing.assert_allclose(new_genes, lam.genome.genes_from_natural(learned), rtol=1e-6, atol=1e-6)
    bald_scores, none = _runtime("baldwinian").evaluate(genes)
    assert none is None
    np.testing.assert_allclose(bald_scores, scores, rtol=1e-6, atol=1e-6)


def test_loop_path_trains_with_the_learning_rate_it_was_given():
    # The loop used to zero every optimizer variable, the learning rate included: nothing learned.
    rt = _runtime("lamarckian", vectorized=False)
    assert not rt.trainer.vectorized
    genes = np.stack([rt.genome.current()] * 2)
    start = [np.array(w) for w in rt.model.get_weights()]
    result = rt.trainer.train(rt.genome.natural(genes), return_weights=True)
    assert float(keras.ops.convert_to_numpy(rt.model.optimizer.learning_rate)) == pytest.approx(0.1)
    assert np.max(np.abs(result.weights[0][0] - start[0])) > 1e-4  # dense_a kernel moved
    scores, new_genes = rt.evaluate(genes)
    assert np.max(np.abs(new_genes - genes)) > 1e-4
    np.testing.assert_allclose(new_genes[0], new_genes[1], rtol=1e-6, atol=1e-6)  # same start, same result
    vec_scores, vec_genes = _runtime("lamarckian").evaluate(genes)
    np.testing.assert_allclose(vec_scores, scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vec_genes, new_genes, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"vectorized": "yes"}, "vectorized"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"epochs": 0}, "epochs"),
        ({"population_chunk": 0}, "population_chunk"),
        ({"memory_budget": -1}, "memory_budget"),
        ({"loss": "hinge"}, "loss"),
        ({"metric": "f1"}, "metric"),
    ],
)
def test_bad_arguments(kwargs, match):
    model = classifier()
    x, y = classification_data(16)
    with pytest.raises(ValueError, match=match):
        PopulationTrainer(model, None, x, y, **kwargs)


def test_wrong_vector_length():
    model = classifier()
    with pytest.raises(ValueError, match="vectors of length"):
        PopulationTrainer(model, None, *classification_data(16)).train(np.zeros((2, 3)))
