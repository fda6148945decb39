"""Runs that survive sessions: per-run JSON files (`recipes.common.run_results`), a recipe that
skips finished runs, the README report generated from the files, and the bounded-time
paper-scale script."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from keras_bioact import stats
from recipes import bru_vs_relu, gamma_mlp, report
from recipes.common import run_results as rr
from recipes.common.run_results import RunStore, load_run, safe_name, write_json_atomic
from recipes.common.tables import fmt, fmt_stat

pytestmark = pytest.mark.single_backend

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_store_writes_json_and_refuses_another_protocol(tmp_path):
    store = RunStore(tmp_path, "bru_vs_relu", {"epochs": 2, "lr": 0.05})
    assert store.existing("fashion_mnist-mlp6", "eru:3-1", 0) is None
    path = store.save(
        "fashion_mnist-mlp6", "eru:3-1", 0, metrics={"test_accuracy": 0.9}, curves={"loss": [1.0, 0.5]}
    )
    assert path == tmp_path / "bru_vs_relu" / "fashion_mnist-mlp6" / "eru_3-1" / "seed0.json"
    data = json.loads(path.read_text())  # plain JSON
    assert data["metrics"] == {"test_accuracy": 0.9} and data["config"] == {"epochs": 2, "lr": 0.05}
    assert store.existing("fashion_mnist-mlp6", "eru:3-1", 0)["curves"]["loss"] == [1.0, 0.5]
    other = RunStore(tmp_path, "bru_vs_relu", {"epochs": 3, "lr": 0.05})
    with pytest.raises(ValueError, match="different protocol"):
        other.existing("fashion_mnist-mlp6", "eru:3-1", 0)
    assert not list(path.parent.glob("*.tmp*"))  # atomic write leaves no temporary file
    assert safe_name("eru:3-1") == "eru_3-1"


def test_store_refuses_a_new_seed_beside_seeds_of_another_protocol(tmp_path):
    old = RunStore(tmp_path, "gamma_mlp", {"epochs": 2})  # made before the recipe recorded this key
    old.save("digits-mlp2x8", "relu", 0, metrics={"test_accuracy": 0.9}, curves={})
    new = RunStore(tmp_path, "gamma_mlp", {"epochs": 2, "validation_fraction": 0.1})
    with pytest.raises(ValueError, match=r"seed0.json was made with a different protocol .*validation_fr"):
        new.existing("digits-mlp2x8", "relu", 1)  # seed 1 is new, but seed 0 of this variant is not
    assert new.existing("digits-mlp2x8", "heterogeneous", 1) is None  # another variant: its own grid
    assert load_run(old.path("digits-mlp2x8", "relu", 0))["metrics"] == {"test_accuracy": 0.9}  # readable


def test_result_files_are_data_only(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "run.json"
    code = f"__import__('os').mkdir('{marker}')"
    fields = {"recipe": code, "setting": code, "variant": code, "seed": 0, "config": {}, "metrics": {}}
    write_json_atomic(path, {"schema": "keras_bioact.run/1", **fields})
    assert load_run(path)["recipe"] == code  # a string, never evaluated
    assert not marker.exists()
    path.write_bytes(b"\x80\x04\x95pickle")  # a pickle is not a result file
    with pytest.raises(ValueError):
        load_run(path)


def test_recipe_skips_finished_runs(tmp_path):
    recipe = bru_vs_relu
    tiny = ["--train-limit", "100", "--test-limit", "40", "--epochs", "1", "--batch-size", "50"]
    tiny += [
        "--noise",
        "0",
        "--fgsm-eps",
        "0",
        "--pgd-eps",
        "0",
        "--pgd-steps",
        "1",
        "--robustness-samples",
        "20",
    ]
    argv = [*tiny, "--variants", "relu", "--archs", "mlp", "--depths", "2", "--width", "8", "--seeds", "0"]
    results = tmp_path / "results"
    assert recipe.main([*argv, "--out", str(tmp_path / "a"), "--results", str(results)]) == 0
    (run,) = list(results.rglob("seed0.json"))
    stamp = run.stat().st_mtime_ns
    assert recipe.main([*argv, "--out", str(tmp_path / "b"), "--results", str(results)]) == 0
    assert run.stat().st_mtime_ns == stamp  # finished: read, not re-run
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    second = json.loads((tmp_path / "b" / "results.json").read_text())
    a = first["runs"]["mlp2"]["relu"][0]["test_error"]
    assert second["runs"]["mlp2"]["relu"][0]["test_error"] == a


def test_committed_readme_matches_the_committed_results():
    assert report.main(["--check"]) == 0


def test_report_script_runs_by_path_from_anywhere(tmp_path):
    """`python recipes/report.py` imports `recipes.common` without PYTHONPATH or an install of it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, str(ROOT / "recipes" / "report.py"), "--check"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    code = "import sys; from recipes import report; print('keras' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stdout + r.stderr  # the report needs no Keras import


def test_report_regenerates_tables_and_figures(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- report:begin -->\n<!-- report:end -->\n")
    figures = tmp_path / "figures"
    figures.mkdir()
    # the learned-g surfaces are drawn by the recipes, not the report
    for surface in (ROOT / "recipes" / "figures").glob("*-g-seed*.png"):
        shutil.copy(surface, figures / surface.name)
    assert report.main(["--readme", str(readme), "--figures", str(figures)]) == 0
    text = readme.read_text()
    assert "| claim |" in text and "Welch p" in text and "95 % t-interval" in text
    assert sorted(p.name for p in figures.glob("*.png"))
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in figures.glob("*.png"))
    assert report.main(["--readme", str(readme), "--figures", str(figures), "--check"]) == 0
    readme.write_text(text.replace("| claim |", "| claims |"))
    assert report.main(["--readme", str(readme), "--figures", str(figures), "--check"]) == 1


def test_paper_scale_script_records_throughput_and_accuracy(tmp_path):
    out = tmp_path / "anru.json"
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"), PYTHON=sys.executable)
    cmd = [
        "bash",
        str(ROOT / "scripts" / "paper_scale.sh"),
        "anru",
        "--max-seconds",
        "3",
        "--dataset",
        "digits",
    ]
    cmd += ["--units", "8", "--controller", "4", "--batch", "16", "--segments", "4", "--train-limit", "64"]
    cmd += ["--eval-samples", "16", "--out", str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    assert data["model"] == "anru" and data["device"]["backend"] == env["KERAS_BACKEND"]
    assert data["config"]["units"] == 8 and data["config"]["steps"] == 64  # 8x8 digits, pixel by pixel
    # Training stopped by the budget (counted after the first, compiling batch), not by epochs.
    assert data["train_s"] - data["first_batch_s"] >= 3.0
    assert data["batches"] >= 2 and data["throughput"]["measured_batches"] == data["batches"] - 1
    th = data["throughput"]
    assert th["samples_per_s"] > 0 and th["steps_per_s"] == pytest.approx(th["samples_per_s"] * 64)
    assert 0.0 <= data["test_accuracy"] <= 1.0 and data["test_samples"] == 16
    assert data["train_loss_so_far"] > 0 and 0.0 <= data["train_accuracy_so_far"] <= 1.0


def test_report_formats_diverged_values_and_left_out_seeds():
    assert fmt(0.11614, 4) == "0.1161" and fmt(0.8863, 2, 100) == "88.63"
    assert fmt(1.485959e33, 4) == "1.49e+33" and fmt(float("nan")) == fmt(None) == "-"
    d = stats.describe([0.2976, float("nan"), None, float("inf")])
    assert fmt_stat(d, 4) == "0.2976 ± - [-, -] (n=1; 3 not finite, left out)"


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"value": 1})

    def crash(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(rr.os, "fsync", crash)  # fails after the temporary file is written
    with pytest.raises(OSError, match="disk gone"):
        write_json_atomic(path, {"value": 2})
    assert json.loads(path.read_text()) == {"value": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    monkeypatch.undo()
    with pytest.raises(TypeError):  # not JSON data: refused before anything is written
        write_json_atomic(tmp_path / "other.json", {"value": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    write_json_atomic(tmp_path / "nan.json", {"value": float("nan")})  # non-finite: stored as null
    assert json.loads((tmp_path / "nan.json").read_text()) == {"value": None}


def test_gamma_mlp_writes_run_files_skips_them_and_feeds_the_claims(tmp_path):
    recipe = gamma_mlp
    argv = ["--train-limit", "100", "--test-limit", "40", "--epochs", "1", "--batch-size", "50"]
    argv += ["--noise", "0", "0.5", "--fgsm-eps", "0", "--pgd-eps", "0", "--pgd-steps", "1"]
    argv += ["--robustness-samples", "20", "--depth", "2", "--width", "8", "--grid-n", "2", "--grid-s", "0"]
    argv += ["--seeds", "0", "--no-tensorboard"]
    results = tmp_path / "results"
    assert recipe.main([*argv, "--out", str(tmp_path / "a"), "--results", str(results)]) == 0
    setting = results / "gamma_mlp" / "digits-mlp2x8"
    files = sorted(p.relative_to(setting).as_posix() for p in setting.rglob("*.json"))
    assert files == [f"{v}/seed0.json" for v in ("heterogeneous", "homogeneous", "relu", "static_2,0")]
    het = load_run(setting / "heterogeneous" / "seed0.json")
    assert het["config"]["width"] == 8 and het["architecture"] == "MLP 2x8"
    assert [len(layer["n"]) for layer in het["gamma_params"]] == [8, 8] and len(het["trace"]) == 2
    noise = het["robustness"]["gaussian_noise"]
    assert het["metrics"]["noise_max_sigma_accuracy"] == noise["accuracies"][-1]
    assert 0.0 <= het["metrics"]["test_error"] <= 1.0 and len(het["curves"]["loss"]) == 1
    assert "gamma_params" not in load_run(setting / "relu" / "seed0.json")
    stamps = {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")}
    assert recipe.main([*argv, "--out", str(tmp_path / "b"), "--results", str(results)]) == 0
    assert {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")} == stamps  # read, not re-run
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    second = json.loads((tmp_path / "b" / "results.json").read_text())
    assert second["summary"]["heterogeneous"]["test_error"] == first["summary"]["heterogeneous"]["test_error"]
    assert second["learned"] == first["learned"]
    with pytest.raises(ValueError, match="different protocol"):  # other epochs: not silently reused
        recipe.main([*argv, "--epochs", "2", "--out", str(tmp_path / "c"), "--results", str(results)])
    other = [*argv, "--validation-fraction", "0.2", "--results", str(results), "--out", str(tmp_path / "d")]
    with pytest.raises(ValueError, match="validation_fraction"):  # the validation split is protocol too
        recipe.main(other)

    runs, _ = report.collect(results)
    gamma = [c for c in report.CLAIMS if c["recipe"] == "gamma_mlp"]
    assert {c["metric"] for c in gamma} == {"test_error", "mean_train_loss", "noise_max_sigma_accuracy"}
    picked = {}
    for claim in gamma:
        r = report.evaluate_claim(dict(claim, setting="digits-mlp2x8"), runs)
        assert r["verdict"] == "no verdict (n < 2)"  # one seed: statistics, but no verdict
        picked[(claim["metric"], claim["baselines"])] = (r["candidate"][0], r["baseline"][0])
    assert picked[("test_error", ("static:",))] == ("heterogeneous", "static:2,0")
    assert picked[("test_error", ("relu",))] == ("heterogeneous", "relu")


def test_report_draws_early_stopped_runs_and_runs_without_validation_curves(tmp_path):
    store = RunStore(tmp_path / "results", "two_arg_xor", {"epochs": 40, "patience": 5})
    for seed, n_epochs in ((0, 3), (1, 5)):  # early stopping: runs of different lengths
        curves = {"loss": [1.0 / (e + 1) for e in range(n_epochs)], "val_accuracy": [0.5] * n_epochs}
        for variant, err in (("2-arg", 0.10), ("relu", 0.12)):
            extra = {"xor_score": 0.3 + seed / 10, "xor_score_pretrained": 0.05}
            extra["frozen_g_test_accuracy"] = 0.875
            store.save("fashion_mnist-mlp120-120-120", variant, seed, curves=curves,
                       metrics={"test_accuracy": 1 - err - seed / 100, "test_error": err + seed / 100,
                                "mean_train_loss": 0.5, "final_train_loss": 0.2,
                                **(extra if variant == "2-arg" else {})})  # fmt: skip
    store = RunStore(tmp_path / "results", "adaptive_rnn", {"epochs": 1})
    store.save("fashion_mnist-rows28", "lstm", 0, metrics={"test_accuracy": 0.8}, curves={"loss": [0.7]})
    for seed in (0, 1):  # robustness sweeps in the run's record: drawn as accuracy against strength
        record = {"step_drive": {"0.0": 0.8, "5.0": 0.4 + seed / 10}, "sinusoidal": {"0.0": 0.8, "1.0": 0.6}}
        metrics = {"test_accuracy": 0.8, "drive_accuracy_drop": 0.4 - seed / 10}
        store.save("fashion_mnist-rows28", "anru", seed, metrics=metrics, curves={"loss": [0.7]},
                   extra={"record": record})  # fmt: skip
    readme = tmp_path / "README.md"
    readme.write_text("<!-- report:begin -->\n<!-- report:end -->\n")
    argv = ["--results", str(tmp_path / "results"), "--readme", str(readme), "--figures", str(tmp_path / "f")]
    assert report.main(argv) == 0
    stems = {p.name for p in (tmp_path / "f").glob("*.png")}
    assert "two_arg_xor-fashion_mnist-mlp120-120-120-curves.png" in stems
    assert "adaptive_rnn-fashion_mnist-rows28-curves.png" in stems
    robustness = tmp_path / "f" / "adaptive_rnn-fashion_mnist-rows28-robustness.png"
    assert robustness.read_bytes()[:4] == b"\x89PNG"
    text = readme.read_text()
    # Recipe-specific columns and every learned g's xor_score, seed by seed.
    assert "| frozen g, fresh outer net: test accuracy % | xor_score of the learned g |" in text
    assert "87.50 ± 0.00" in text and "| relu | - | 2 | 0, 1 |" in text  # params: none stored
    assert "xor_score of g after joint training: 2-arg: 0.30 (seed 0), 0.40 (seed 1)." in text
    assert "| accuracy drop at the largest step drive |" in text and "0.350 ± 0.071" in text
    assert "| 2-arg | - | 2 | 0, 1 | 89.50 ± 0.71 [83.15, 95.85] | 0.11 |" in text  # Welch p vs relu
    row = next(line for line in text.splitlines() if "beats the parameter-matched ReLU" in line)
    # Welch t = -2.83 on 2 degrees of freedom (scipy: two-sided p = 0.106, one-sided 0.053): not held;
    # 2 of the 3 planned seeds.
    assert "2-arg: 0.1050" in row and "relu: 0.1250" in row and "**no (so far: 2 of 3 seeds)**" in row
