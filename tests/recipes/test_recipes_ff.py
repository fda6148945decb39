"""End-to-end runs of the feed-forward paper recipes in tiny configurations, and their plumbing
(`recipes.common.util`, `recipes.common.tables`)."""

import argparse
import json
import math

import keras
import numpy as np
import pytest

from recipes import bru_vs_relu, gamma_mlp
from recipes.common import util as ru
from recipes.common.tables import fmt_mean_std, table

pytestmark = pytest.mark.single_backend

TINY = [
    "--train-limit", "150", "--test-limit", "60", "--epochs", "2", "--batch-size", "50",
    "--noise", "0", "0.5", "--fgsm-eps", "0", "0.2", "--pgd-eps", "0.2", "--pgd-steps", "2",
]  # fmt: skip
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
    recipe = bru_vs_relu
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
        assert 0.0 <= s["test_error"][0] <= 1.0 and s["test_error"][1] is None  # one seed: no sample std
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
    recipe = gamma_mlp
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
    recipe = bru_vs_relu
    args = ru.parse_args(recipe.make_parser(), ["--paper-scale", "--epochs", "3"], recipe.PAPER_SCALE)
    assert args.epochs == 3 and args.dataset == "fashion_mnist" and args.depths == [4, 6, 8]
    args = ru.parse_args(gamma_mlp.make_parser(), ["--paper-scale"], gamma_mlp.PAPER_SCALE)
    assert args.grid_n == gamma_mlp.PAPER_GRID_N and args.grid_s == gamma_mlp.PAPER_GRID_S


def test_bad_recipe_arguments(tmp_path, capsys):
    recipe = bru_vs_relu
    with pytest.raises(SystemExit):
        recipe.main(["--variants", "eru:-1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        recipe.main(["--epochs", "0", "--out", str(tmp_path)])
    for bad in ("0", "1"):
        with pytest.raises(SystemExit):
            recipe.main(["--validation-fraction", bad, "--out", str(tmp_path)])
        assert "--validation-fraction must be in (0, 1)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="radix"):
        recipe.parse_variant("oru:0")
    assert recipe.radii("eru:2", 3) == [2.0, 2.0, 2.0]
    assert recipe.radii("relu", 2) == [None, None]


def test_missing_idx_directory_is_reported(tmp_path):
    recipe = bru_vs_relu
    from keras_bioact.datasets import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        recipe.main(["--dataset", f"idx:{tmp_path}", "--out", str(tmp_path / "o")])


def test_recipe_numbers_use_the_sample_std():
    # mean 2, sample std sqrt(((1-2)^2 + (3-2)^2) / (2 - 1)) = sqrt(2); the population std would be 1
    assert fmt_mean_std([0.01, 0.03, float("nan")], scale=100) == "2.00 ± 1.41 (1 diverged)"
    assert fmt_mean_std([0.5], digits=1) == "0.5 ± -"  # one seed: no std
    assert table(["a", "b"], [[1, 2]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    agg = ru.aggregate_robustness(
        [{"pgd": {"strengths": [0, 1], "accuracies": [1.0, 0.5]}},
         {"pgd": {"strengths": [0, 1], "accuracies": [0.8, 0.3]}}]
    )  # fmt: skip
    assert agg["pgd"]["mean"] == pytest.approx([0.9, 0.4])
    assert agg["pgd"]["std"] == pytest.approx([0.1 * math.sqrt(2)] * 2)


def test_validation_split_is_carved_from_the_training_data():
    x, y = np.arange(40, dtype="float32")[:, None], np.arange(40)
    (fx, fy), (vx, vy) = ru.split_validation((x, y), 0.25, seed=3)
    assert len(vy) == 10 and len(fy) == 30 and sorted([*fy, *vy]) == list(range(40))  # a partition
    assert (fx[:, 0] == fy).all() and (vx[:, 0] == vy).all()  # pairs kept together
    assert list(ru.split_validation((x, y), 0.25, seed=3)[1][1]) == list(vy)  # seeded
    assert list(ru.split_validation((x, y), 0.25, seed=4)[1][1]) != list(vy)
    assert len(ru.split_validation((x[:3], y[:3]), 0.1, seed=0)[1][1]) == 1  # at least one


def test_train_classifier_validates_on_the_split_and_tests_once():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 4)).astype("float32"), rng.integers(0, 3, 60)
    test = rng.normal(size=(30, 4)).astype("float32"), rng.integers(0, 3, 30)
    args = argparse.Namespace(optimizer="sgd", lr=0.1, momentum=0.0, epochs=2, batch_size=16, verbose=0,
                              validation_fraction=0.2)  # fmt: skip
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    record = ru.train_classifier(model, train, test, args, seed=5)
    assert len(record["history"]["val_accuracy"]) == 2
    _, val = ru.split_validation(train, 0.2, seed=5)
    on_val = model.evaluate(*val, verbose=0, return_dict=True)
    on_test = model.evaluate(*test, verbose=0, return_dict=True)
    assert record["history"]["val_loss"][-1] == pytest.approx(on_val["loss"], rel=1e-5)
    assert record["test_loss"] == pytest.approx(on_test["loss"], rel=1e-5)
    assert record["test_accuracy"] == pytest.approx(on_test["accuracy"])
    assert record["test_error"] == pytest.approx(1 - on_test["accuracy"])
