import json
import os

import pytest

from recipes import adaptive_rnn as recipe
from recipes.common.run_results import load_run


@pytest.mark.single_backend
def test_adaptive_rnn_recipe_end_to_end(tmp_path, capsys):
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


@pytest.mark.single_backend
def test_adaptive_rnn_rows_seeds_and_run_files(tmp_path):
    results = str(tmp_path / "results")
    argv = ["--epochs", "1", "--max-train", "32", "--max-test", "16", "--units", "4", "--controller", "2",
            "--models", "relu,anru,lstm", "--drive", "0,5", "--sin", "0,0.5", "--quiet", "--rows",
            "--seeds", "0", "1", "--results", results]  # fmt: skip
    assert recipe.main([*argv, "--out", str(tmp_path / "a")]) == 0
    setting = tmp_path / "results" / "adaptive_rnn" / "digits-rows8"  # 8x8 digits: 8 rows of 8 pixels
    files = sorted(p.relative_to(setting).as_posix() for p in setting.rglob("*.json"))
    assert files == [f"{k}/seed{s}.json" for k in ("anru", "lstm", "relu") for s in (0, 1)]
    anru = load_run(setting / "anru" / "seed1.json")
    m, rec = anru["metrics"], anru["record"]
    assert m["test_accuracy"] == rec["clean"] and m["test_error"] == 1 - rec["clean"]
    assert m["drive_accuracy_drop"] == pytest.approx(rec["clean"] - rec["step_drive"]["5.0"])
    assert m["sin_accuracy_drop"] == pytest.approx(rec["clean"] - rec["sinusoidal"]["0.5"])
    assert anru["config"]["rows"] is True and len(anru["curves"]["loss"]) == 1
    lstm = load_run(setting / "lstm" / "seed0.json")["metrics"]
    assert "drive_accuracy_drop" not in lstm and "sin_accuracy_drop" in lstm  # no pre-activation to drive
    stamps = {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")}
    assert recipe.main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")} == stamps  # read, not re-run
    with open(tmp_path / "a" / "results.json") as f:
        first = json.load(f)
    with open(tmp_path / "b" / "results.json") as f:
        second = json.load(f)
    assert first["results"] == second["results"] and len(first["runs"]["anru"]) == 2
    with pytest.raises(SystemExit):
        recipe.main([*argv, "--permute", "--out", str(tmp_path / "c")])
    # --pool 2: 2x2 average pooling first, so 8x8 digits become 16 pixel steps (a setting of its own).
    pooled = ["--pool", "2", "--models", "relu", "--seeds", "0", "--out", str(tmp_path / "d")]
    assert recipe.main([*[a for a in argv if a != "--rows"], *pooled]) == 0
    run = load_run(tmp_path / "results" / "adaptive_rnn" / "digits-pixels16" / "relu" / "seed0.json")
    assert run["config"]["pool"] == 2 and "2x2 blocks" in run["architecture"]
    with pytest.raises(SystemExit):
        recipe.main([*argv, "--pool", "0", "--out", str(tmp_path / "e")])
