"""keras_bioact.robustness on every backend: noise sweep, FGSM, PGD, tables."""

import keras
import numpy as np
import pytest

from keras_bioact import datasets, robustness
from keras_bioact.layers import BRU, GammaActivation


@pytest.fixture(scope="module")
def digits():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(seed=0)
    return (x_train.reshape(len(x_train), -1), y_train), (x_test[:200].reshape(200, -1), y_test[:200])


def centroid_model(x, y, softmax=False):
    """A trained linear classifier without fit: nearest class centroid (logit_k = x.mu_k - |mu_k|^2 / 2)."""
    mu = np.stack([x[y == k].mean(axis=0) for k in range(10)]).astype("float32")
    model = keras.Sequential(
        [keras.Input((x.shape[1],)), keras.layers.Dense(10, activation="softmax" if softmax else None)]
    )
    model.layers[-1].set_weights([mu.T, -0.5 * (mu**2).sum(axis=1)])
    return model, mu


def test_gradient_matches_numpy(digits):
    (x, y), (xt, yt) = digits
    for softmax in (False, True):
        model, mu = centroid_model(x, y, softmax=softmax)
        xb, yb = xt[:16], yt[:16]
        g = keras.ops.convert_to_numpy(robustness.input_gradient_fn(model)(xb, yb))
        logits = xb @ mu.T - 0.5 * (mu**2).sum(axis=1)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        expected = (p - np.eye(10)[yb]) @ mu
        np.testing.assert_allclose(g, expected, rtol=1e-3, atol=1e-5)


def test_eps_zero_gives_clean_accuracy(digits):
    (x, y), (xt, yt) = digits
    model, _ = centroid_model(x, y)
    clean = robustness.accuracy(model, xt, yt)
    assert clean > 0.8
    for attack in ("fgsm", "pgd"):
        table = robustness.attack_sweep(model, xt, yt, [0.0], attack=attack)
        assert table.accuracies == [clean]
    np.testing.assert_array_equal(robustness.pgd(model, xt, yt, 0.0), xt)
    assert robustness.noise_sweep(model, xt, yt, [0.0]).accuracies == [clean]


def test_attacks_reduce_accuracy_and_respect_ball(digits):
    (x, y), (xt, yt) = digits
    model, _ = centroid_model(x, y)
    clean = robustness.accuracy(model, xt, yt)
    eps = 0.1
    x_fgsm = robustness.fgsm(model, xt, yt, eps)
    x_pgd = robustness.pgd(model, xt, yt, eps, steps=10, seed=0)
    acc_fgsm = robustness.accuracy(model, x_fgsm, yt)
    acc_pgd = robustness.accuracy(model, x_pgd, yt)
    assert acc_fgsm < clean - 0.2
    assert acc_pgd <= acc_fgsm + 0.02
    for xa in (x_fgsm, x_pgd):
        assert xa.shape == xt.shape and xa.dtype == np.float32
        assert np.max(np.abs(xa - xt)) <= eps + 1e-6
        assert xa.min() >= 0.0 and xa.max() <= 1.0
    # FGSM moves every pixel with a nonzero gradient by exactly eps unless clipped to [0, 1].
    moved = np.abs(x_fgsm - xt)
    inside = (xt >= eps) & (xt <= 1 - eps)
    assert np.mean(np.isclose(moved[inside], eps, atol=1e-6)) > 0.9


def test_custom_clip_range(digits):
    (x, y), (xt, yt) = digits
    model, _ = centroid_model(x, y)
    xa = robustness.pgd(model, xt, yt, 0.3, steps=3, clip=(0.1, 0.8))
    assert xa.min() >= 0.1 - 1e-7 and xa.max() <= 0.8 + 1e-7
    xn = robustness.pgd(model, xt, yt, 0.3, steps=3, clip=None)
    assert np.max(np.abs(xn - xt)) <= 0.3 + 1e-6
    assert xn.min() < 0.0 or xn.max() > 1.0  # nothing clips to [0, 1] without a range


def test_deterministic_with_seed(digits):
    (x, y), (xt, yt) = digits
    model, _ = centroid_model(x, y)
    a = robustness.pgd(model, xt, yt, 0.05, steps=2, seed=3, batch_size=64)
    b = robustness.pgd(model, xt, yt, 0.05, steps=2, seed=3, batch_size=64)
    c = robustness.pgd(model, xt, yt, 0.05, steps=2, seed=4, batch_size=64)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    n1 = robustness.noise_sweep(model, xt, yt, [0.0, 0.3, 1.0], seed=1)
    n2 = robustness.noise_sweep(model, xt, yt, [0.0, 0.3, 1.0], seed=1)
    assert n1.accuracies == n2.accuracies
    assert n1.accuracies[2] < n1.accuracies[0]


def test_evaluate_tables_and_format(digits):
    (x, y), (xt, yt) = digits
    model, _ = centroid_model(x, y)
    tables = robustness.evaluate(
        model, xt, yt, noise=[0, 0.5], fgsm_eps=[0, 0.1], pgd_eps=[0, 0.1], pgd_steps=3
    )
    assert list(tables) == ["gaussian_noise", "fgsm", "pgd"]
    for t in tables.values():
        assert t.accuracies[1] < t.accuracies[0]
        assert robustness.RobustnessTable.from_dict(t.to_dict()) == t
        assert [r["strength"] for r in t.rows()] == t.strengths
    text = robustness.format_tables(tables)
    assert "pgd" in text and "fgsm" in text and "sigma" in text
    assert robustness.evaluate(model, xt, yt, noise=None, fgsm_eps=[], pgd_eps=[0.0]).keys() == {"pgd"}


def test_trained_bioact_model(digits):
    """A small fitted network with keras-bioact activations: gradients finite, attacks hurt it."""
    (x, y), (xt, yt) = digits
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32),
            BRU("eru", r=2.0),
            keras.layers.Dense(16),
            GammaActivation(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:512], y[:512], epochs=4, batch_size=128, verbose=0)
    g = keras.ops.convert_to_numpy(robustness.input_gradient_fn(model, from_logits=True)(xt[:32], yt[:32]))
    assert np.all(np.isfinite(g)) and np.any(g != 0)
    clean = robustness.accuracy(model, xt, yt)
    assert clean > 0.6
    table = robustness.attack_sweep(model, xt, yt, [0.0, 0.2], attack="pgd", steps=5)
    assert table.accuracies[0] == clean
    assert table.accuracies[1] < clean - 0.2


def test_bad_arguments(digits):
    (x, y), (xt, yt) = digits
    model, _ = centroid_model(x, y)
    with pytest.raises(ValueError, match="eps"):
        robustness.pgd(model, xt, yt, -0.1)
    with pytest.raises(ValueError, match="steps"):
        robustness.pgd(model, xt, yt, 0.1, steps=0)
    with pytest.raises(ValueError, match="differ in length"):
        robustness.fgsm(model, xt, yt[:-1], 0.1)
    with pytest.raises(ValueError, match="clip"):
        robustness.fgsm(model, xt, yt, 0.1, clip=(1, 0))
    with pytest.raises(ValueError, match="attack"):
        robustness.attack_sweep(model, xt, yt, [0.1], attack="cw")
    with pytest.raises(ValueError, match="sigmas"):
        robustness.noise_sweep(model, xt, yt, [-1.0])
