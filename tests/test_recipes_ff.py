"""End-to-end runs of the feed-forward paper recipes in tiny configurations, and their plumbing."""

import importlib.util
import json
import math
import pathlib

import numpy as np
import pytest

from keras_bioact import recipes_util as ru

pytestmark = pytest.mark.single_backend

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = [
    "--train-limit", "150", "--test-limit", "60", "--epochs", "2", "--batch-size", "50",
    "--noise", "0", "0.5", "--fgsm-eps", "0", "0.2", "--pgd-eps", "0.2", "--pgd-steps", "2",
]  # fmt: skip
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_recipe(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def check_tensorboard(directory):
    events = sorted(directory.rglob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event file under {directory}"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train = [e for e in events if e.parent.name == "train"][0]
    acc = EventAccumulator(str(train.parent))
    acc.Reload()
    tags = acc.Tags()
    assert "epoch_loss" in tags.get("scalars", []) + tags.get("tensors", [])


def test_bru_vs_relu_end_to_end(tmp_path, capsys):
    recipe = load_recipe("bru_vs_relu")
    out = tmp_path / "bru"
    argv = [*TINY, "--variants", "relu", "eru:3-1", "--depths", "4", "--width", "16", "--seeds", "3"]
    assert recipe.main([*argv, "--archs", "mlp", "cnn", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert not (out / "runs.partial.json").exists()
    assert {"recipe", "config", "data", "environment", "runs", "summary", "claims"} <= results.keys()
    assert set(results["summary"]) == {"mlp4", "cnn"}
    for group in ("mlp4", "cnn"):
        assert set(results["summary"][group]) == {"relu", "eru:3-1"}
        runs = results["runs"][group]["eru:3-1"]
        assert [r["seed"] for r in runs] == [3]
        assert len(runs[0]["history"]["loss"]) == 2 and len(runs[0]["history"]["val_accuracy"]) == 2
        assert 0.0 <= runs[0]["test_error"] <= 1.0
        s = results["summary"][group]["relu"]
        assert s["test_error"][1] >= 0
        assert set(s["robustness"]) == {"gaussian_noise", "fgsm", "pgd"}
        assert s["robustness"]["fgsm"]["strengths"] == [0.0, 0.2]
        assert isinstance(results["claims"][group]["trains_faster"]["held"], bool)
        for name in ("loss", "test_error", "robustness"):
            check_png(out / f"{name}_{group}.png")
    # r decreases linearly from 3 (first hidden layer) to 1 (last), per layer.
    assert results["runs"]["mlp4"]["eru:3-1"][0]["radii"] == pytest.approx([3.0, 7 / 3, 5 / 3, 1.0])
    check_tensorboard(out / "tensorboard" / "mlp4" / "eru_3-1" / "seed3")
    assert "| relu |" in capsys.readouterr().out


def test_gamma_mlp_end_to_end(tmp_path):
    recipe = load_recipe("gamma_mlp")
    out = tmp_path / "gamma"
    argv = [*TINY, "--grid-n", "2", "--grid-s", "0", "0.5", "--depth", "2", "--width", "8", "--seeds", "0"]
    assert recipe.main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert {"runs", "summary", "learned", "claims", "config", "environment"} <= results.keys()
    assert set(results["summary"]) == {"relu", "static:2,0", "static:2,0.5", "homogeneous", "heterogeneous"}
    het = results["runs"]["heterogeneous"][0]
    assert [len(layer["n"]) for layer in het["gamma_params"]] == [8, 8]
    assert [len(layer["n"]) for layer in results["runs"]["homogeneous"][0]["gamma_params"]] == [1, 1]
    assert len(het["trace"]) == 3  # before training and after each of 2 epochs
    assert all(n >= 0.01 for layer in het["gamma_params"] for n in layer["n"])
    assert results["learned"]["heterogeneous"]["count"] == 16
    claims = results["claims"]
    assert claims["optimum_differs_from_relu_sigmoid"]["best_static_point"]["n"] == 2.0
    assert isinstance(claims["adaptation_helps"]["held_error"], bool)
    for name in ("loss", "test_error", "robustness", "learned_ns", "trajectories", "static_grid"):
        check_png(out / f"{name}.png")
    check_tensorboard(out / "tensorboard" / "heterogeneous" / "seed0")


def test_paper_scale_presets_respect_explicit_flags():
    recipe = load_recipe("bru_vs_relu")
    args = ru.parse_args(recipe.make_parser(), ["--paper-scale", "--epochs", "3"], recipe.PAPER_SCALE)
    assert args.epochs == 3 and args.dataset == "fashion_mnist" and args.depths == [4, 6, 8]
    gamma = load_recipe("gamma_mlp")
    args = ru.parse_args(gamma.make_parser(), ["--paper-scale"], gamma.PAPER_SCALE)
    assert args.grid_n == gamma.PAPER_GRID_N and args.grid_s == gamma.PAPER_GRID_S


def test_bad_recipe_arguments(tmp_path):
    recipe = load_recipe("bru_vs_relu")
    with pytest.raises(SystemExit):
        recipe.main(["--variants", "eru:-1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        recipe.main(["--epochs", "0", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="radix"):
        recipe.parse_variant("oru:0")
    assert recipe.radii("eru:2", 3) == [2.0, 2.0, 2.0]
    assert recipe.radii("relu", 2) == [None, None]


def test_missing_idx_directory_is_reported(tmp_path):
    recipe = load_recipe("bru_vs_relu")
    from keras_bioact.datasets import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        recipe.main(["--dataset", f"idx:{tmp_path}", "--out", str(tmp_path / "o")])


def test_recipe_util_numbers_and_json(tmp_path):
    assert ru.mean_std([1.0, 3.0, float("nan")]) == (2.0, 1.0)
    assert all(math.isnan(v) for v in ru.mean_std([float("inf")]))
    assert ru.fmt_mean_std([0.1, 0.3, float("nan")], scale=100) == "20.00 ± 10.00 (1 diverged)"
    path = ru.write_json(tmp_path / "x" / "r.json", {"a": np.float32(0.5), "b": [np.nan, np.int64(3)]})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [None, 3]}
    table = ru.markdown_table(["a", "b"], [[1, 2]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    agg = ru.aggregate_robustness(
        [{"pgd": {"strengths": [0, 1], "accuracies": [1.0, 0.5]}},
         {"pgd": {"strengths": [0, 1], "accuracies": [0.8, 0.3]}}]
    )  # fmt: skip
    assert agg["pgd"]["mean"] == pytest.approx([0.9, 0.4]) and agg["pgd"]["std"] == pytest.approx([0.1, 0.1])
