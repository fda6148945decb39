import importlib.util
import json
import pathlib

import pytest

RECIPE = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "two_arg_xor.py"


@pytest.mark.single_backend
def test_two_arg_xor_recipe_tiny_end_to_end(tmp_path):
    spec = importlib.util.spec_from_file_location("two_arg_xor", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
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
    assert saved["summary"] == json.loads(json.dumps(result["summary"]))
    assert len(saved["runs"]) == 1
    for name in ("2-arg", "1-arg", "relu"):
        acc = result["summary"][name]["acc_joint"]
        assert 0.0 <= acc["mean"] <= 1.0 and acc["std"] >= 0.0
    two, relu = result["summary"]["2-arg"], result["summary"]["relu"]
    assert abs(relu["params"] - two["params"]) / two["params"] <= 0.01
    assert 0.0 <= two["xor_learned"]["mean"] <= 1.0
    assert result["summary"]["2-arg"]["acc_frozen_g"] is not None
    assert (out / "g_learned_seed3.png").exists() and (out / "g_pretrained_seed3.png").exists()
    assert "| 2-arg |" in (out / "table.md").read_text()
    # --merge combines per-seed runs into one table
    merged = recipe.main(["--merge", str(out), str(out), "--out", str(tmp_path / "merged")])
    assert len(merged["runs"]) == 2
    assert merged["summary"]["relu"]["acc_joint"]["std"] == 0.0
    assert (tmp_path / "merged" / "table.md").exists()
