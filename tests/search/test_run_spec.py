"""`keras_bioact.search.run_spec`, the one library entry point of both engines, and `bioact
search` as a thin wrapper of it."""

import json
import pathlib

import optuna
import pytest

from keras_bioact import search
from keras_bioact.cli import main
from keras_bioact.errors import BioactError
from keras_bioact.search.spec import SpecError

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = pathlib.Path(__file__).resolve().parents[2]

OPTUNA = """
[optuna]
study = "{name}"
storage = "sqlite:///{tmp}/{name}.db"
n_trials = 3
[optuna.sampler]
name = "random"
seed = 7
[optuna.pruner]
name = "none"
[data]
name = "digits"
max_train = 200
max_val = 80
[model]
hidden = [8]
[budget]
epochs = 1
seed = 3
verdict_seeds = 2
[space]
families = ["relu", "gamma"]
"""

EVOLUTION = """
[data]
name = "digits"
max_train = 200
max_val = 60
[model]
hidden = [8]
[budget]
epochs = 1
verdict_seeds = 2
[evolution.activation]
family = "gamma"
[evolution]
target = "gamma"
algorithm = "snes"
popsize = 4
generations = 1
seed = 1
"""


def _spec(tmp_path, name, text=OPTUNA):
    path = tmp_path / f"{name}.toml"
    path.write_text(text.format(name=name, tmp=tmp_path))
    return path


def test_run_spec_runs_an_optuna_spec_end_to_end(tmp_path):
    lines = []
    result = search.run_spec(
        _spec(tmp_path, "lib"), export=tmp_path / "out", progress=False, log=lines.append
    )
    assert isinstance(result, search.SearchResult)
    assert search.count_finished(result.study) == 3 and result.study.study_name == "lib"
    assert result.best_trial.number == result.study.best_trial.number
    assert 0.0 <= result.test_score <= 1.0 and result.test_error is None
    assert result.test_scores[result.best_trial.number]["metric"] == "test_accuracy"
    assert (tmp_path / "out" / "trials.csv").exists() and str(result.export_dir) == str(tmp_path / "out")
    text = repr(result)
    assert text.startswith("SearchResult(study='lib', finished=3, best=trial ") and "test_accuracy=" in text
    assert any(line.startswith("number") for line in lines)  # the summary table went to `log`
    # the verdict: in the result, the summary, verdict.json and the study (2 fresh seeds per arm)
    v = result.verdict
    assert v is not None and v.seeds == [1_000_003, 1_000_004] and len(v.best_scores) == 2
    assert f"  {v.verdict}" in lines and any(line.startswith("verdict (2 fresh seeds") for line in lines)
    assert json.loads((tmp_path / "out" / "verdict.json").read_text()) == v.to_dict()
    assert result.study.user_attrs["verdict"] == v.to_dict() and "verdict=" in text
    search.best_activation(result.study)  # a layer
    # run again: nothing to do, the same study and scores (the best trial is scored once)
    lines.clear()
    again = search.run_spec(_spec(tmp_path, "lib"), progress=False, log=lines.append)
    assert any("nothing to do" in line for line in lines) and again.test_scores == result.test_scores


def test_run_spec_and_bioact_search_run_the_same_trials(tmp_path):
    """Same spec and seeds: the library and the command line give the same trials."""
    lib = search.run_spec(_spec(tmp_path, "same_a"), progress=False, log=lambda line: None).study
    assert main(["search", str(_spec(tmp_path, "same_b")), "--quiet"]) == 0
    cli = search.load_study("same_b", f"sqlite:///{tmp_path}/same_b.db")
    a, b = lib.get_trials(), cli.get_trials()
    assert len(a) == len(b) == 3
    assert [t.params for t in a] == [t.params for t in b]
    assert [t.value for t in a] == pytest.approx([t.value for t in b], abs=1e-6)
    test = [s.user_attrs["verdict"] for s in (lib, cli)]
    assert test[0]["best_scores"] == pytest.approx(test[1]["best_scores"], abs=1e-6)
    assert test[0]["best_trial"] == test[1]["best_trial"]


def test_run_spec_takes_a_loaded_spec_and_leaves_it_unchanged(tmp_path):
    spec = search.load_spec(_spec(tmp_path, "loaded"))
    result = search.run_spec(spec, n_trials=1, study_name="other", progress=False, log=lambda line: None)
    assert result.study.study_name == "other" and search.count_finished(result.study) == 1
    assert (spec.n_trials, spec.study_name) == (3, "loaded")


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"workers": 0}, "workers"),
        ({"n_trials": 0}, "n_trials"),
        ({"timeout": -1.0}, "timeout"),
        ({"study_name": "a b"}, "study_name"),
        ({"resume": True}, "resume"),
        ({"settings": {"evolution.popsize": 4}}, "evolution.popsize"),
        ({"settings": {"data.name": "digits"}}, "data.name"),
        ({"allow_code": ["no_such_module_xyz"]}, "allow_code"),
    ],
)
def test_run_spec_refuses_bad_keywords_naming_them_before_anything_is_written(tmp_path, kwargs, key):
    path = _spec(tmp_path, "bad")
    with pytest.raises(SpecError) as info:
        search.run_spec(path, progress=False, **kwargs)
    assert info.value.key == key and isinstance(info.value, BioactError)
    assert not (tmp_path / "bad.db").exists()


def test_run_spec_runs_an_evolution_spec_and_resumes(tmp_path, monkeypatch):
    path = _spec(tmp_path, "evo", EVOLUTION)
    out = tmp_path / "evo-out"
    result = search.run_spec(path, settings={"output.dir": str(out)}, progress=False, log=lambda line: None)
    assert isinstance(result, search.EvolutionResult) and len(result.history) == 1
    assert result.summary["generations"] == 1 and 0.0 <= result.summary["best_test_accuracy"] <= 1.0
    assert json.loads((out / "summary.json").read_text()) == result.summary
    # the verdict: the evolved activation against the best baseline network, 2 fresh seeds each
    v = result.verdict
    assert v.best.startswith("evolved gamma") and v.baseline in ("relu", "gelu", "swish")
    assert len(v.best_scores) == len(v.baseline_scores) == 2 and v.seeds == [1_000_000, 1_000_001]
    assert json.loads((out / "verdict.json").read_text()) == v.to_dict() == result.summary["verdict"]
    with pytest.raises(BioactError, match="checkpoint"):  # a checkpoint there: resume or overwrite
        search.run_spec(path, settings={"output.dir": str(out)}, progress=False, log=lambda line: None)
    import keras_bioact.search.evolution.verdict as evolution_verdict

    def no_retraining(*args, **kwargs):
        raise AssertionError("the verdict was recomputed")

    monkeypatch.setattr(evolution_verdict, "train_and_score", no_retraining)
    resumed = search.run_spec(
        path, settings={"output.dir": str(out)}, resume=True, progress=False, log=lambda line: None
    )
    assert resumed.history == result.history and resumed.verdict == v  # read back, not retrained
    with pytest.raises(SpecError, match="n_trials: does not apply to an evolution spec"):
        search.run_spec(path, n_trials=3)


def test_resuming_an_evolution_with_other_settings_exits_2_without_a_traceback(tmp_path, capsys):
    path = _spec(tmp_path, "evo2", EVOLUTION.replace("verdict_seeds = 2", "verdict_seeds = 0"))
    out = tmp_path / "run"
    assert main(["evolve", str(path), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evolve", str(path), "--out", str(out), "--quiet", "--resume", "--popsize", "6"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "the settings changed" in err and "popsize" in err, err
    assert "Traceback" not in err


def test_bioact_search_exits_1_when_the_held_out_score_fails(tmp_path, capsys, monkeypatch):
    from keras_bioact.search.optuna import holdout

    def broken(*args, **kwargs):
        raise RuntimeError("the test split went away")

    monkeypatch.setattr(holdout, "retrain_on_test", broken)
    assert main(["search", str(_spec(tmp_path, "held")), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "study 'held'" in out and "best activation" in out  # the summary is kept
    assert "could not compute the verdict on the test split: RuntimeError: the test split went away" in err
    assert main(["show", "held", "--storage", f"sqlite:///{tmp_path}/held.db"]) == 1


def test_bioact_search_is_a_thin_wrapper_of_run_spec(tmp_path, monkeypatch):
    import keras_bioact.cli.search as cli_search

    source = pathlib.Path(cli_search.__file__).read_text()
    for machinery in ("subprocess", "Popen", "recover_dead_trials", "tqdm", "open_study", "preflight"):
        assert machinery not in source, machinery
    calls = []
    monkeypatch.setattr(search, "run_spec", lambda spec, **kwargs: calls.append((spec, kwargs)))
    argv = ["search", "s.toml", "--workers", "3", "--n-trials", "9", "--storage", "sqlite:///x.db"]
    argv += ["--study-name", "n", "--timeout", "5", "--export", "e", "--top", "2", "--quiet"]
    argv += ["--allow-code", "m", "--create-only", "--popsize", "4", "--out", "o", "--resume"]
    assert main(argv) == 0
    ((spec, kwargs),) = calls
    assert spec == "s.toml" and kwargs == dict(
        workers=3,
        n_trials=9,
        storage="sqlite:///x.db",
        study_name="n",
        timeout=5.0,
        export="e",
        resume=True,
        overwrite=False,
        progress=False,
        allow_code=["m"],
        top=2,
        create_only=True,
        settings={"evolution.popsize": 4, "output.dir": "o"},
    )


def test_run_spec_documents_both_engines():
    doc = search.run_spec.__doc__
    assert "[optuna]" in doc and "[evolution]" in doc and "SearchResult" in doc and "EvolutionResult" in doc
