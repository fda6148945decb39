"""What the exports hold: every number the summary shows (the test score included), the metric
named as in the spec, compile time apart from training time, per-trial curves in TensorBoard,
and plots that show only what they can support (importances, parallel coordinates)."""

import csv
import json

import optuna
import pytest

from keras_bioact.search import SearchSpace, create_study, objective_from_spec, parse_spec
from keras_bioact.search.optuna import export, holdout
from keras_bioact.search.optuna.study import open_study
from keras_bioact.search.verdict import compare
from tests.helpers.search import sleepy_objective

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _scalars(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.single_backend("jax")  # its first epoch includes compiling; eager torch compiles nothing
def test_exports_name_the_metric_hold_the_test_score_curves_and_compile_time(tmp_path):
    pytest.importorskip("tensorboard")
    spec = parse_spec(
        {
            "optuna": {"study": "e", "storage": f"sqlite:///{tmp_path}/e.db", "pruner": {"name": "none"}},
            "data": {"name": "digits", "max_train": 240},
            "model": {"template": "mlp", "hidden": [8]},
            "budget": {"epochs": 4, "batch_size": 64, "seed": 1, "verdict_seeds": 2},
            "space": {"families": ["relu", "gamma"], "baselines": ["relu"]},  # no trial left waiting
        },
        source="e.toml",
    )
    study = open_study(spec)
    assert study.metric_names == ["val_accuracy"]  # optuna-dashboard shows the spec's name
    study.optimize(objective_from_spec(spec), n_trials=2)
    holdout.study_verdict(spec, study)
    scores = holdout.test_scores(study)  # the verdict's arms: the mean over its 2 seeds
    assert scores
    out = tmp_path / "out"
    export.export_results(study, out, log=lambda *a: None)

    with open(out / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[2:4] == ["val_accuracy", "test_accuracy"]
    for row in rows:
        n = int(row["number"])
        assert row["test_accuracy"] == (str(scores[n]["value"]) if n in scores else "")
        assert row["verdict_arm"] == (scores[n]["arm"] if n in scores else "")
        assert row["verdict_test_scores"] == (json.dumps(scores[n]["scores"]) if n in scores else "")
        assert float(row["val_accuracy"]) == study.trials[n].value
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert [t["test_accuracy"] for t in trials] == [
        scores[t["number"]]["value"] if t["number"] in scores else None for t in trials
    ]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict == json.loads((out / "trials.json").read_text())["verdict"] == study.user_attrs["verdict"]
    verdict_tb = _scalars(out / "tensorboard" / "verdict")
    assert [v for _, v in verdict_tb["verdict/best/test_accuracy"]] == pytest.approx(verdict["best_scores"])
    assert all({"val_accuracy", "compile_seconds", "fit_seconds"} <= set(t) for t in trials)

    # compile time apart: the first (compiling) trial trains faster than its first epoch took
    first = study.trials[0].user_attrs
    assert first["compile_seconds"] > 0 and first["fit_seconds"] > 0
    assert first["fit_seconds"] < first["epoch_seconds"][0]

    for t in study.trials:
        scalars = _scalars(out / "tensorboard" / f"trial_{t.number:05d}")
        assert scalars["val_accuracy"][-1][1] == pytest.approx(t.value)
        assert "value" not in scalars
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            curve = scalars[f"epoch/{key}"]
            assert [s for s, _ in curve] == [0, 1, 2, 3]
            assert [v for _, v in curve] == pytest.approx(t.user_attrs["history"][key])
        assert ("test_accuracy" in scalars) == (t.number in scores)
        if t.number in scores:
            assert scalars["test_accuracy"][0][1] == pytest.approx(scores[t.number]["value"])


def test_test_score_reaches_tensorboard_sessions_written_before_scoring(tmp_path):
    pytest.importorskip("tensorboard")
    study = create_study("s", f"sqlite:///{tmp_path}/s.db", metric_names=["val_accuracy"])
    study.optimize(sleepy_objective(SearchSpace.from_dict({"families": ["relu"]}), delay=0.0), n_trials=2)
    export.export_results(study, tmp_path / "out", log=lambda *a: None)  # sessions on disk, no test score
    verdict = compare("relu", [0.4, 0.6], metric="test_accuracy", best_trial=1)
    study.set_user_attr(holdout.ATTR, verdict.to_dict())
    for _ in range(2):  # written once
        export.export_results(study, tmp_path / "out", log=lambda *a: None)
    assert _scalars(tmp_path / "out" / "tensorboard" / "trial_00001")["test_accuracy"] == [(0, 0.5)]
    assert "test_accuracy" not in _scalars(tmp_path / "out" / "tensorboard" / "trial_00000")


def test_a_study_without_metric_names_exports_the_spec_objective_names(tmp_path):
    study = create_study("o", f"sqlite:///{tmp_path}/o.db")
    study.set_user_attr("objective_names", ["val_loss"])  # what open_study always stored
    study.optimize(sleepy_objective(SearchSpace.from_dict({"families": ["relu"]}), delay=0.0), n_trials=1)
    export.export_trials(study, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().startswith("number,state,val_loss,family")


def _mixed_study(n_trials):
    study = create_study(
        "m",
        optuna.storages.InMemoryStorage(),
        sampler=optuna.samplers.RandomSampler(seed=0),
        metric_names=["val_accuracy"],
    )
    sample = sleepy_objective(SearchSpace.from_dict({"families": ["gamma", "bru", "relu"]}), delay=0.0)

    def objective(trial):
        return sample(trial) + trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)

    study.optimize(objective, n_trials=n_trials)
    return study


def test_importance_needs_enough_trials_and_is_computed_within_families(tmp_path):
    few = _mixed_study(6)
    written = export.save_plots(few, tmp_path / "few", log=lambda *a: None)
    assert not any(p.name.startswith("importance") and p.suffix in (".png", ".html") for p in written)
    note = (tmp_path / "few" / "importance.txt").read_text()
    assert f"importances need >= {export.MIN_IMPORTANCE_TRIALS} complete trials" in note
    assert note.startswith("importance: not plotted: 6 complete trials")

    many = _mixed_study(60)
    export.save_plots(many, tmp_path / "many", log=lambda *a: None)
    groups = {suffix: params for suffix, _, params in export.plot_groups(many)}
    assert groups[""] == ["family", "learning_rate"]  # no conditional parameter among all trials
    assert groups["_gamma"] == ["gamma_n", "gamma_regime", "gamma_s", "learning_rate"]
    html = (tmp_path / "many" / "importance.html").read_text()
    assert "gamma_n" not in html and "bru_form" not in html and "val_accuracy" in html
    assert "gamma_n" in (tmp_path / "many" / "importance_gamma.html").read_text()
    for stem in ("importance", "importance_gamma", "parallel_coordinates", "parallel_coordinates_gamma"):
        assert (tmp_path / "many" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"


def test_parallel_coordinates_show_no_absent_parameter(tmp_path):
    study = _mixed_study(20)
    export.save_plots(study, tmp_path, png=False, log=lambda *a: None)
    for path in tmp_path.glob("parallel_coordinates*.html"):
        html = path.read_text()
        assert '"None"' not in html, path.name
    assert "gamma_n" not in (tmp_path / "parallel_coordinates.html").read_text()
    assert "gamma_s" in (tmp_path / "parallel_coordinates_gamma.html").read_text()
