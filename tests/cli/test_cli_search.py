"""`bioact search` / `bioact show`: specification validation, summary, export."""

import json
import pathlib
import textwrap

import optuna
import pytest

from keras_bioact.cli import main
from keras_bioact.search import SearchSpace, create_study, load_spec, pruner_from_spec, sampler_from_spec
from keras_bioact.search.optuna import objective as objective_lib

pytestmark = pytest.mark.single_backend  # backend-independent: spec, CLI and data plumbing

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = pathlib.Path(__file__).resolve().parents[2]
# Optuna specs; the evolve_*.toml files are EvoTorch specs (tests/search/evolution/test_evolution_cli.py)
SPECS = sorted(p for p in (ROOT / "search").glob("*.toml") if not p.name.startswith("evolve_"))

GOOD = """
[optuna]
study = "t"
storage = "sqlite:///{tmp}/t.db"
n_trials = 2
[data]
name = "digits"
[model]
template = "mlp"
hidden = [8]
[budget]
epochs = 1
[space]
families = ["relu", "gamma"]
"""


def test_every_shipped_spec_parses_and_validates():
    assert {p.name for p in SPECS} >= {
        "quickstart.toml",
        "gamma.toml",
        "bru.toml",
        "two_arg.toml",
        "compare_families.toml",
    }
    for path in SPECS:
        spec = load_spec(path)
        assert spec.study_name and spec.n_trials >= 1
        sampler_from_spec(spec)
        pruner_from_spec(spec)
        assert SearchSpace.from_dict(spec.space.to_dict()) == spec.space
    assert load_spec(ROOT / "search" / "compare_families.toml").directions == ["maximize", "minimize"]


@pytest.mark.parametrize(
    "edit, key",
    [
        (("[budget]\nepochs = 1", "[budget]\nepochs = 1\nepoch = 3"), "budget.epoch"),
        (("[data]", "[datas]"), "datas"),
        (("epochs = 1", "epochs = 0"), "budget.epochs"),
        (('families = ["relu", "gamma"]', 'families = ["relu", "mish"]'), "space.families"),
        (
            ('families = ["relu", "gamma"]', 'families = ["gamma"]\n[space.gamma]\ns = [0.0, 2.0]'),
            "space.gamma.s",
        ),
        (("hidden = [8]", "hidden = [8]\nwidth = 3"), "model.width"),
        (('template = "mlp"', 'template = "os:system"'), "model.template"),
        (('name = "digits"', 'name = "fashion_mnist"\npath = "/etc/passwd"'), "data.path"),
        (('name = "digits"', 'name = "idx:/etc"'), "data.name"),
        (('name = "digits"', 'name = "digits"\nvalidation_fraction = 1.5'), "data.validation_fraction"),
        (('families = ["relu", "gamma"]', 'families = ["relu", "gamma"]\ngamma = 3'), "space.gamma"),
        (("n_trials = 2", 'n_trials = 2\nmetric = "val_acc"'), "optuna.metric"),
        (("epochs = 1", "epochs = 1000000000000"), "budget.epochs"),
        (("epochs = 1", "epochs = 1e12"), "budget.epochs"),
        (("epochs = 1", "epochs = 1\nbatch_size = 1000000000000"), "budget.batch_size"),
        (("n_trials = 2", "n_trials = 1000000000000000000"), "optuna.n_trials"),
        (('template = "mlp"', 'template = "resnet"'), "model.template"),
        (('name = "digits"', 'name = "imagenet"'), "data.name"),
        (("n_trials = 2", "n_trials = -1"), "optuna.n_trials"),
        (
            ('storage = "sqlite:///{tmp}/t.db"', 'storage = "sqlite:////nonexistent/dir/t.db"'),
            "optuna.storage",
        ),
        (('storage = "sqlite:///{tmp}/t.db"', 'storage = "nosuchdb://x/y"'), "optuna.storage"),
    ],
)
def test_bad_specs_fail_before_training_naming_key_and_file(tmp_path, capsys, monkeypatch, edit, key):
    def no_training(spec, data=None):
        raise AssertionError("training started for an invalid specification")

    monkeypatch.setattr(objective_lib, "objective_from_spec", no_training)
    text = GOOD.replace(*edit).format(tmp=tmp_path)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["search", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and key in err, err
    if key != "optuna.storage":
        assert not (tmp_path / "t.db").exists()  # rejected before the study file was created


def test_bad_command_line_values_and_unreadable_files(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(GOOD.format(tmp=tmp_path))
    assert main(["search", str(path), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    (tmp_path / "broken.toml").write_text("[study\nname=")
    assert main(["search", str(tmp_path / "broken.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["show", "t", "--storage", f"sqlite:///{tmp_path}/absent.db"]) == 2
    assert "absent.db" in capsys.readouterr().err


def test_create_only_makes_the_study_once_for_later_workers(tmp_path, monkeypatch):
    def no_training(spec, data=None):
        raise AssertionError("--create-only must not train")

    monkeypatch.setattr(objective_lib, "objective_from_spec", no_training)
    path = tmp_path / "good.toml"
    path.write_text(GOOD.format(tmp=tmp_path))
    assert main(["search", str(path), "--create-only"]) == 0
    assert main(["search", str(path), "--create-only"]) == 0  # idempotent: loads the same study
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path}/t.db")
    # nothing ran: only the default baselines wait, enqueued once
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.WAITING] * 3
    assert [t.system_attrs["fixed_params"] for t in study.trials] == [
        {"family": f} for f in ("relu", "gelu", "swish")
    ]
    assert study.user_attrs["objective_names"] == ["val_accuracy"]


def _synthetic_study(tmp_path):
    from helpers.search import sleepy_objective

    url = f"sqlite:///{tmp_path}/show.db"
    study = create_study("show", url, ["maximize"], sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(
        sleepy_objective(SearchSpace.from_dict({"families": ["gamma", "relu"]}), delay=0.0), n_trials=8
    )
    return url, study


def test_show_prints_best_trials_and_exports_csv_json_and_plots(tmp_path, capsys):
    url, study = _synthetic_study(tmp_path)
    out_dir = tmp_path / "out"
    assert main(["show", "show", "--storage", url, "--top", "3", "--export", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "number" in out and "value" in out and "best activation" in out
    assert f"{study.best_trial.number}" in out.split("------")[-1].split()[0:1][0]
    rows = json.loads((out_dir / "trials.json").read_text())
    assert len(rows["trials"]) == 8 and rows["best_activation"] == study.best_trial.user_attrs["activation"]
    csv_text = (out_dir / "trials.csv").read_text().splitlines()
    assert csv_text[0].startswith("number,state,value,family") and len(csv_text) == 9
    # 8 trials, one parameter (`family`) shared by all: no importance plot, a note instead
    assert "importances need >= 10 complete trials" in (out_dir / "importance.txt").read_text()
    assert "importance: not plotted" in out and not (out_dir / "importance.png").exists()
    for stem in ("history", "parallel_coordinates", "parallel_coordinates_gamma"):
        assert (out_dir / f"{stem}.html").stat().st_size > 1000
        html = (out_dir / f"{stem}.html").read_text()
        assert "cdn.plot.ly" not in html and 'src="plotly.min.js"' in html  # works offline
        assert (out_dir / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    assert (out_dir / "plotly.min.js").stat().st_size > 1_000_000
    runs = sorted(p.name for p in (out_dir / "tensorboard").iterdir())
    assert runs == sorted(f"trial_{t.number:05d}" for t in study.trials)  # one HParams session per trial
    assert main(["show", "nope", "--storage", url]) == 2


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "search" in out and "show" in out
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "--storage" in capsys.readouterr().out


def test_spec_text_is_data(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(textwrap.dedent(GOOD.format(tmp=tmp_path)))
    spec = load_spec(path)
    assert spec.template == "mlp" and spec.template_options == {"hidden": [8]}
    assert spec.storage == f"sqlite:///{tmp_path}/t.db" and spec.directions == ["maximize"]


@pytest.mark.parametrize("path", sorted((ROOT / "search").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_spec_runs_through_the_one_command(path, tmp_path, capsys):
    """Each spec of search/, cut to a tiny budget (its own tables otherwise), runs to the end
    through `bioact search` and reports validation and test side by side."""
    import tomllib

    raw = tomllib.loads(path.read_text())
    raw.setdefault("data", {}).update(max_train=200, max_val=60, max_test=60)
    raw.setdefault("budget", {}).update(epochs=1, verdict_seeds=2)  # the verdict's own tests: tests/search
    raw.setdefault("output", {})["dir"] = str(tmp_path / "out")
    if "optuna" in raw:
        raw["optuna"].update(n_trials=1, storage=f"sqlite:///{tmp_path}/s.db", workers=1)
        raw["optuna"].pop("timeout", None)
    elif "mixture" in raw:
        raw["mixture"].update(epochs=1, shrink_start=0, seeds=2)
    else:
        raw["evolution"].update(generations=1, popsize=2)
        if raw["evolution"].get("target") != "expression":  # (keys of parameter evolutions only)
            raw["evolution"].update(train_epochs=1, num_actors=0)  # Ray: tested apart
    lines = []
    for table, values in raw.items():
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in scalars.items()]
        for sub, sub_values in values.items():
            if isinstance(sub_values, dict):
                lines.append(f"[{table}.{sub}]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in sub_values.items()]
    spec = tmp_path / path.name
    spec.write_text("\n".join(lines) + "\n")
    assert main(["search", str(spec), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test" in out and ("optimised:" in out or "mixture" in raw), out[-2000:]
