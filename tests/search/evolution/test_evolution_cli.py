"""`bioact evolve`: spec validation and an end-to-end run."""

import json
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_bioact.cli import main
from keras_bioact.search import data
from keras_bioact.search.evolution import load_best
from keras_bioact.search.spec import SpecError, load_spec

pytestmark = pytest.mark.single_backend  # backend-independent: spec, CLI and data plumbing

SEARCH_DIR = str(pathlib.Path(__file__).resolve().parents[3] / "search")


@pytest.mark.parametrize(
    "text, key",
    [
        ("[evolution]\npopsise = 8\n", "evolution.popsise"),
        ("[evolution]\npopsize = 'big'\n", "evolution.popsize"),
        ("[evolution]\npopsize = 1\n", "evolution.popsize"),
        ("[evolution]\nalgorithm = 'adam'\n", "evolution.algorithm"),
        ("[evolution]\nmode = 'lamarckian'\nnum_actors = 2\n", "lamarckian"),
        ("[evolution]\n[model]\nhidden = [0]\n", "model.hidden"),
        ("[evolution]\n[modle]\n", "modle"),
        ("[evolution]\n[data]\nvalidation_fraction = 1.5\n", "data.validation_fraction"),
        ("[evolution\n", "TOML"),
        ("[evolution]\n[data]\nname = 'idx:/etc'\n", "data.name"),
        ("[evolution]\n[data]\nname = 'imagenet'\n", "data.name"),
        ("[evolution]\n[model]\npath = '/etc/passwd'\n", "model.path"),
        ("[evolution.activation]\nfamily = 'bru'\nr = -3.0\n", "evolution.activation.r"),
        ("[evolution.activation]\nfamily = 'gamma'\nbogus = 1\n", "evolution.activation.bogus"),
        ("[evolution.activation]\nfamily = 'mish'\n", "evolution.activation.family"),
        ("[evolution]\nalgorithm_options = { bogus = 1 }\n", "evolution.algorithm_options"),
        ("[evolution]\ngenerations = 1000000000000\n", "evolution.generations"),
        ("[evolution]\npopsize = 1000000000000\n", "evolution.popsize"),
        ("[evolution]\ntarget = 'everything'\n", "evolution.target"),
        ("[evolution]\n[space]\nfamilies = ['relu']\n", "space"),
        ("[evolution]\n[model]\nactivation = 'bru'\n", "model.activation"),  # earlier format
    ],
)
def test_bad_spec_fails_early_naming_key_and_file(tmp_path, capsys, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=key) as info:
        load_spec(str(path))
    assert str(path) in str(info.value)
    assert main(["evolve", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert key in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_dir_fails_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "load_splits", lambda spec: pytest.fail("data loaded"))
    path = tmp_path / "ok.toml"
    path.write_text("[evolution]\npopsize = 4\n")
    assert main(["evolve", str(path), "--out", "/proc/bioact-cannot-write-here"]) == 2
    assert "output.dir" in capsys.readouterr().err


def test_shipped_specs_are_valid():
    names = sorted(f for f in os.listdir(SEARCH_DIR) if f.startswith("evolve_") and f.endswith(".toml"))
    assert {"evolve_gamma.toml", "evolve_bru.toml", "evolve_inner.toml"} <= set(names)
    for name in names:
        assert load_spec(os.path.join(SEARCH_DIR, name)).engine == "evolution"


def test_cli_end_to_end_and_resume(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        """
[data]
name = "digits"
max_train = 300
[model]
hidden = [8]
[budget]
epochs = 1
verdict_seeds = 0
[evolution.activation]
family = "bru"
trainable_r = true
[evolution]
target = "bru"
granularity = "element"
algorithm = "xnes"
popsize = 4
generations = 2
metric = "crossentropy"
"""
    )
    out = tmp_path / "run"
    args = ["evolve", str(spec), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    # the summary shows the evolved values that best.json holds (few: as they are)
    printed = capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())
    lines = printed.split("best parameters (all in best.json and best_parameters.npz):\n")[1].splitlines()
    assert best["parameters"] and len(lines) >= len(best["parameters"])
    for (path, values), line in zip(best["parameters"].items(), lines, strict=False):
        assert line == f"  {path}: [" + ", ".join(f"{v:.4g}" for v in np.ravel(values)) + "]"
    for name in ("checkpoint.npz", "history.csv", "best_parameters.npz", "best.json", "best_model.keras"):
        assert (out / name).exists(), name
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("generation,best,mean,spread") and len(rows) == 3
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(out / "tensorboard" / "evolution"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 2 and 0.0 <= summary["best_test_accuracy"] <= 1.0
    # the exported parameters load into the start model and give the saved best model
    best = keras.saving.load_model(str(out / "best_model.keras"), compile=False)
    start = load_best(keras.saving.load_model(str(out / "start_model.keras"), compile=False), str(out))
    x = np.random.default_rng(0).random((5, 8, 8)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(best(x)), keras.ops.convert_to_numpy(start(x)), rtol=1e-5
    )
    # resuming a finished run does no more work and keeps the history
    assert main([*args, "--resume"]) == 0
    assert (out / "history.csv").read_text().splitlines() == rows


@pytest.mark.parametrize("mode", ["baldwinian", "lamarckian"])
def test_learning_modes_score_the_best_solution_after_its_learning(tmp_path, mode):
    # The fitness of a learning mode is measured after each candidate's brief SGD; the reported
    # test score and the saved model must be the best solution after that same learning, so
    # its validation accuracy equals the best fitness (not the un-learned start model's).
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f"""
[data]
name = "digits"
max_train = 400
[model]
hidden = [16]
[budget]
epochs = 1
verdict_seeds = 0
[evolution.activation]
family = "gamma"
regime = "homogeneous"
[evolution]
target = "gamma"
granularity = "parameter"
algorithm = "snes"
popsize = 4
generations = 2
mode = "{mode}"
train_epochs = 2
learning_rate = 0.1
metric = "accuracy"
"""
    )
    out = tmp_path / "run"
    assert main(["search", str(spec), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    if mode == "baldwinian":
        after = summary["best_val_accuracy_after_learning"]
        assert after == pytest.approx(summary["best_val_fitness"], abs=1e-6)
    # the saved best model is the learned one: its weights differ from the start model's
    best = keras.saving.load_model(str(out / "best_model.keras"), compile=False)
    start = keras.saving.load_model(str(out / "start_model.keras"), compile=False)
    moved = [
        float(np.max(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b))))
        for a, b in zip(best.trainable_variables, start.trainable_variables, strict=True)
    ]
    assert max(moved) > 1e-3
