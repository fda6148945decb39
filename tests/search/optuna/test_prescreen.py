"""The training-free pre-screen (`[space] prescreen`): features of an expression, the Fisher
spectrum from the Gram matrix against the exact p x p matrix, the ridge regressor's ranking,
Spearman's rho against SciPy, the spec's checks and a tiny study that trains the top-ranked
candidates and reports the rank correlation."""

import numpy as np
import optuna
import pytest

from keras_bioact import expressions, stats
from keras_bioact.search import Activation, mlp, parse_spec, run_spec
from keras_bioact.search.optuna import prescreen as ps
from keras_bioact.search.spec import SpecError

optuna.logging.set_verbosity(optuna.logging.WARNING)

HOSTILE = [
    "exp(exp(x))",
    "square(square(x))",
    "mul(exp(x), square(x))",
    "sub(identity(x), identity(x))",  # constant 0
    "min(relu(x), neg(relu(x)))",
    "max(sin(x), cos(x))",
    "gamma(gamma(x))",
    "identity(x)",
]


@pytest.mark.single_backend
def test_output_features_are_finite_and_tell_functions_apart():
    rows = [ps.output_features(e) for e in HOSTILE]
    assert all(r.shape == (9,) and np.all(np.isfinite(r)) for r in rows)
    assert len({tuple(np.round(r, 9)) for r in rows}) == len(HOSTILE)
    assert np.all(rows[3][:7] == 0.0)  # the constant 0: mean, std, quantiles
    # odd identity: mean and median about 0, std about 1 (squashed: log(2))
    assert abs(rows[-1][0]) < 0.05 and abs(rows[-1][1] - np.log(2)) < 0.02


def _tiny_model(expression="tanh(softplus(x))", hidden=(3,)):
    return mlp(Activation({"family": "composed", "expression": expression}), (8,), 4, hidden=hidden)


def _batch(n=6):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 8)).astype("float32"), rng.integers(0, 4, n)


def test_per_example_gradients_are_those_of_the_log_likelihood():
    # the mean of the per-example gradients is minus the gradient of the mean cross-entropy
    import keras

    model = _tiny_model()
    x, y = _batch()
    g = ps.per_example_gradients(model, x, y)
    p = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert g.shape == (len(x), p) and np.all(np.isfinite(g))
    # first-order check along a random direction d: log p(y|x; w + h d) - log p(y|x; w - h d)
    rng = np.random.default_rng(1)
    d = rng.standard_normal(p)
    w = [keras.ops.convert_to_numpy(v).astype("float64") for v in model.trainable_variables]

    def loglik(sign, h=1e-3):
        start = 0
        for v, w0 in zip(model.trainable_variables, w, strict=True):
            size = w0.size
            v.assign((w0 + sign * h * d[start : start + size].reshape(w0.shape)).astype("float32"))
            start += size
        probs = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
        return np.log(probs[np.arange(len(x)), y])

    numeric = (loglik(1) - loglik(-1)) / 2e-3
    np.testing.assert_allclose(g @ d, numeric, rtol=2e-2, atol=2e-3)


@pytest.mark.single_backend
def test_the_gram_shortcut_gives_the_exact_fisher_eigenvalues():
    model = _tiny_model()
    x, y = _batch()
    g = ps.per_example_gradients(model, x, y)
    exact = np.sort(np.linalg.eigvalsh(g.T @ g / len(g)))[::-1]  # the p x p matrix
    shortcut = ps.fisher_eigenvalues(g)
    assert g.shape[1] > 3 * len(g)
    np.testing.assert_allclose(shortcut, exact[: len(g)], rtol=1e-4, atol=1e-12)
    assert np.all(np.abs(exact[len(g) :]) < 1e-9 * exact[0])  # the rest are zero
    f = ps.fisher_features(shortcut)
    assert f.shape == (5,) and np.all(np.isfinite(f))
    assert ps.fisher_features(np.zeros(4)) == pytest.approx([-12.0] * 5)


@pytest.mark.single_backend
def test_the_regressor_ranks_a_known_linear_relation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4))
    y = 3 * x[:, 0] - x[:, 2] + 0.5
    new = rng.standard_normal((12, 4))
    truth = 3 * new[:, 0] - new[:, 2]
    reg = ps.Regressor(alpha=1e-6).fit(x, y)
    assert reg.rank(new) == list(np.argsort(-truth))  # best first
    assert ps.Regressor(alpha=1e-6, maximize=False).fit(x, y).rank(new) == list(np.argsort(truth))
    assert stats.spearman(reg.predict(new), truth) == pytest.approx(1.0)
    few = ps.Regressor().fit(x[: ps.MIN_FIT - 1], y[: ps.MIN_FIT - 1])
    assert not few.fitted and few.rank(new) == list(range(12))  # proposal order


BASE = """
[optuna]
study = "{name}"
storage = "sqlite:///{tmp}/{name}.db"
n_trials = 6
[optuna.sampler]
name = "random"
seed = 0
[optuna.pruner]
name = "none"
[data]
name = "digits"
max_train = 200
max_val = 100
[model]
hidden = [8]
[budget]
epochs = 1
batch_size = 32
learning_rate = 0.01
seed = 0
verdict_seeds = 0
[space]
families = {families}
baselines = []
prescreen = {prescreen}
[space.composed]
schemas = ["u(x)", "u1(u2(x))"]
unary = ["identity", "relu", "tanh", "sin", "square", "exp", "sigmoid", "softsign"]
"""


def _text(tmp_path, name="ps", families='["composed"]', prescreen="{propose = 8, train = 2}"):
    return BASE.format(name=name, tmp=tmp_path, families=families, prescreen=prescreen)


@pytest.mark.single_backend
@pytest.mark.parametrize(
    "families, prescreen, key, needle",
    [
        ('["composed"]', "{propose = 0, train = 1}", "space.prescreen.propose", "[1, 100000]"),
        ('["composed"]', "{propose = 10, train = 1.5}", "space.prescreen.train", "got 1.5"),
        (
            '["composed"]',
            "{propose = 4, train = 5}",
            "space.prescreen.train",
            "at most space.prescreen.propose",
        ),
        ('["composed"]', "{propose = 4, train = 2, top = 1}", "space.prescreen.top", "unknown key"),
        ('["composed"]', "5", "space.prescreen", "must be a table"),
        ('["composed", "gamma"]', "{propose = 4, train = 2}", "space.prescreen", "composed"),
        ('["gamma"]', "{propose = 4, train = 2}", "space.prescreen", "composed"),
    ],
)
def test_bad_prescreen_names_the_key(tmp_path, families, prescreen, key, needle):
    import tomllib

    with pytest.raises(SpecError) as e:
        parse_spec(tomllib.loads(_text(tmp_path, families=families, prescreen=prescreen)))
    assert e.value.key == key and needle in str(e.value)


def _screen(propose=6, train=4):
    from keras_bioact.search import SearchSpace

    space = SearchSpace.from_dict(
        {
            "families": ["composed"],
            "composed": {
                "schemas": ["u(x)", "u1(u2(x))"],
                "unary": ["identity", "relu", "tanh", "sin", "exp"],
            },
        }
    )
    x, y = _batch(8)
    return ps.Prescreen(lambda a: mlp(a, (8,), 4, hidden=(3,)), x, y, space, propose, train, fisher_batch=8)


def _run(study, screen, value):
    """Ask and tell the waiting trials, each scored `value(features)` (no training)."""
    while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        trial = study.ask()
        config = ps._sample(screen.space, trial)  # the enqueued values, as the objective asks them
        trial.set_user_attr("activation", {"family": "composed", **config})
        trial.set_user_attr("fingerprint", expressions.fingerprint(config["expression"]))
        study.tell(trial, value(screen.features(config)))


@pytest.mark.single_backend
def test_rounds_enqueue_the_top_ranked_proposals():
    screen = _screen()
    study = optuna.create_study(direction="maximize")
    assert not screen.refill(study, 4, remaining=0)  # the study has its trials: no round
    assert screen.refill(study, 4) and not screen.refill(study, 4)  # 4 waiting: no second round
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["prescreen_fitted_on"] for t in waiting] == [0] * 4
    assert all("prescreen_prediction" not in t.user_attrs for t in waiting)  # proposal order
    _run(study, screen, value=lambda f: float(f[1]))  # the value: the outputs' (squashed) std
    assert len({t.value for t in study.trials}) == 4  # four different functions

    def proposals(round_number):  # drawn as `Prescreen.round` draws them, minus trained functions
        rng = np.random.default_rng([screen.seed, round_number])
        seen = {t.user_attrs["fingerprint"] for t in study.trials}
        out = []
        for _ in range(screen.propose):
            config = ps._sample(screen.space, ps._Proposer(rng))
            fp = expressions.fingerprint(config["expression"])
            if fp not in seen:
                seen.add(fp)
                out.append(config)
        return out

    expected = proposals(1)
    assert screen.refill(study, 1)
    enqueued = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["prescreen_fitted_on"] for t in enqueued] == [4] * len(enqueued)
    assert [t.user_attrs["prescreen_rank"] for t in enqueued] == list(range(len(enqueued)))
    rows = [
        screen.features({k: v for k, v in t.user_attrs["activation"].items() if k != "family"})
        for t in study.trials
        if t.state.is_finished()
    ]
    reg = ps.Regressor().fit(rows, [t.value for t in study.trials if t.state.is_finished()])
    predicted = reg.predict([screen.features(c) for c in expected])
    best_first = [expected[i]["expression"] for i in np.argsort(-predicted, kind="mergesort")]
    got = [ps._config_of(ps.waiting_params(t), screen.space)["expression"] for t in enqueued]
    assert got == best_first[: len(got)] and len(got) == min(4, len(expected))
    preds = [t.user_attrs["prescreen_prediction"] for t in enqueued]
    assert preds == sorted(preds, reverse=True) and preds[0] > preds[-1]
    _run(study, screen, value=lambda f: float(f[1]))
    rho, n = ps.report(study)
    assert n == len(enqueued) and study.user_attrs["prescreen_spearman"]["n"] == n


@pytest.mark.single_backend
def test_a_prescreened_study_runs_end_to_end_and_reports(tmp_path):
    import tomllib

    text = _text(tmp_path, prescreen="{propose = 4, train = 2}").replace("n_trials = 6", "n_trials = 3")
    spec = parse_spec(tomllib.loads(text))
    assert spec.prescreen == {"propose": 4, "train": 2}
    lines = []
    study = run_spec(spec, progress=False, log=lines.append).study
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3  # none left waiting
    # rounds of `train` trials (batches never span two), refitted before each round
    assert [t.user_attrs["prescreen_round"] for t in study.trials] == [0, 0, 1]
    assert [t.user_attrs["prescreen_fitted_on"] for t in study.trials] == [0, 0, 2]
    assert len({t.user_attrs["fingerprint"] for t in study.trials}) == 3  # no function trained twice
    assert study.user_attrs["prescreen_spearman"] == {"rho": None, "n": 0}
    assert (
        "pre-screen: Spearman rho n/a (fewer than 3) between predicted and trained val_accuracy on 0 "
        in "\n".join(lines)
    )


@pytest.mark.single_backend
def test_a_round_skips_functions_in_the_study_but_not_for_a_waiting_baseline():
    from keras_bioact.search import SearchSpace

    unary = ["relu", "tanh", "sin", "softsign"]  # no two give one function
    space = SearchSpace.from_dict(
        {"families": ["composed", "relu"], "composed": {"schemas": ["u(x)"], "unary": unary}}
    )
    every = {expressions.fingerprint(f"{u}(x)") for u in unary}
    x, y = _batch(4)
    screen = ps.Prescreen(lambda a: mlp(a, (8,), 4, hidden=(3,)), x, y, space, 300, 300, fisher_batch=4)
    study = optuna.create_study()
    trained = study.ask({"family": optuna.distributions.CategoricalDistribution(["composed", "relu"])})
    trained.set_user_attr("fingerprint", expressions.fingerprint("tanh(x)"))  # already in the study
    study.tell(trained, 0.5)
    study.enqueue_trial({"family": "relu"})  # a baseline waiting: its parameters are not composed
    enqueued = screen.round(study)  # unfitted (one trial): proposal order, no features computed
    assert all(p["family"] == "composed" for p in enqueued)
    got = [expressions.fingerprint(ps._config_of(p, space)["expression"]) for p in enqueued]
    assert len(got) == len(set(got)) and set(got) == every - {expressions.fingerprint("tanh(x)")}
