import importlib.util
import json
import os

import pytest

RECIPE = os.path.join(os.path.dirname(__file__), os.pardir, "recipes", "adaptive_rnn.py")


@pytest.mark.single_backend
def test_adaptive_rnn_recipe_end_to_end(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("adaptive_rnn", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    out = str(tmp_path / "run")
    rc = recipe.main(
        ["--epochs", "1", "--max-train", "48", "--max-test", "32", "--units", "6", "--controller", "2",
         "--models", "relu,anru,lstm", "--drive", "0,5", "--sin", "0,0.5", "--quiet", "--out", out]
    )
    assert rc == 0
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)["results"]
    assert set(results) == {"relu", "anru", "lstm"}
    for kind, r in results.items():
        assert 0.0 <= r["clean"] <= 1.0
        assert set(r["sinusoidal"]) == {"0.0", "0.5"}
        assert r["sinusoidal"]["0.0"] == pytest.approx(r["clean"])
        if kind != "lstm":
            assert r["step_drive"]["0.0"] == pytest.approx(r["clean"])
    assert results["lstm"]["step_drive"] == {}
    assert os.path.getsize(os.path.join(out, "accuracy_vs_strength.png")) > 1000
    assert "ANRU" in capsys.readouterr().out
