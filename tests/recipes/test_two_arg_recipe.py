import json
import math

import pytest

from recipes import two_arg_xor as recipe
from recipes.common.run_results import load_run


@pytest.mark.single_backend
def test_two_arg_xor_recipe_tiny_end_to_end(tmp_path):
    out = tmp_path / "run"
    argv = ["--seeds", "3", "--epochs", "1", "--pretrain-epochs", "1", "--pretrain-grid", "21"]
    argv += [
        "--widths",
        "40",
        "40",
        "--inner-hidden",
        "8",
        "--train-limit",
        "200",
        "--test-limit",
        "100",
        "--out",
        str(out),
    ]
    result = recipe.main(argv)
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["runs"]) == 1
    for name in ("2-arg", "1-arg", "relu", "geglu", "swiglu"):
        acc = result["summary"][name]["acc_joint"]
        assert 0.0 <= acc["mean"] <= 1.0 and acc["n"] == 1 and math.isnan(acc["std"])  # one seed: no std
        assert saved["summary"][name]["acc_joint"] == dict(acc, std=None, ci95=[None, None])  # NaN: null
    two, relu = result["summary"]["2-arg"], result["summary"]["relu"]
    assert abs(relu["params"] - two["params"]) / two["params"] <= 0.01
    for glu in ("geglu", "swiglu"):  # the gated MLPs: matched to the 2-arg MLP within 2 %
        assert abs(result["summary"][glu]["params"] - two["params"]) / two["params"] <= 0.02
    assert 0.0 <= two["xor_learned"]["mean"] <= 1.0
    assert two["acc_frozen_g"]["n"] == 1 and relu["acc_frozen_g"]["n"] == 0  # ReLU has no session III
    assert (out / "g_learned_seed3.png").exists() and (out / "g_pretrained_seed3.png").exists()
    table = (out / "table.md").read_text()
    assert "| 2-arg |" in table and " ± - |" in table  # one seed: no std printed
    # --merge combines per-seed runs into one table
    merged = recipe.main(["--merge", str(out), str(out), "--out", str(tmp_path / "merged")])
    assert len(merged["runs"]) == 2
    assert merged["summary"]["relu"]["acc_joint"]["std"] == 0.0  # the same seed twice: sample std 0
    assert (tmp_path / "merged" / "table.md").exists()


@pytest.mark.single_backend
def test_two_arg_xor_run_files_early_stopping_and_skipping(tmp_path):
    argv = ["--seeds", "0", "--epochs", "30", "--pretrain-epochs", "1", "--pretrain-grid", "21"]
    argv += ["--widths", "20", "20", "--inner-hidden", "4", "--train-limit", "120", "--test-limit", "40"]
    argv += ["--patience", "1", "--validation-split", "0.25", "--learning-rate", "0.3"]
    results = tmp_path / "results"
    first = recipe.main([*argv, "--results", str(results)])
    setting = results / "two_arg_xor" / "digits-mlp20-20"
    names = sorted(p.parent.name for p in setting.rglob("seed0.json"))
    assert names == ["1-arg", "2-arg", "geglu", "relu", "swiglu"]
    two = load_run(setting / "2-arg" / "seed0.json")
    m = two["metrics"]
    assert m["test_accuracy"] == first["runs"][0]["2-arg"]["acc_joint"]
    assert m["test_error"] == 1 - m["test_accuracy"]
    assert m["xor_score"] == two["record"]["xor_learned"]["score"] and 0.0 <= m["xor_score"] <= 1.0
    assert "xor_score_pretrained" in m and "frozen_g_test_accuracy" in m
    # Early stopping on the validation split: an absurd learning rate stops long before 30 epochs.
    assert 1 <= m["epochs_trained"] < 30 and len(two["curves"]["val_loss"]) == m["epochs_trained"]
    assert "xor_score" not in load_run(setting / "relu" / "seed0.json")["metrics"]
    stamps = {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")}
    again = recipe.main([*argv, "--results", str(results)])
    assert {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")} == stamps  # read, not re-run
    assert again["summary"] == first["summary"]
    with pytest.raises(ValueError, match="different protocol"):
        recipe.main([*argv, "--patience", "2", "--results", str(results)])
    with pytest.raises(SystemExit):
        recipe.main([*argv, "--validation-split", "1.5"])
