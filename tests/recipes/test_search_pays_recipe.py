"""recipes/search_pays.py at a tiny budget: valid run files, skipping, and report.py's table and claim."""

import copy

import pytest

from recipes import report
from recipes import search_pays as recipe
from recipes.common.run_results import load_run

pytestmark = pytest.mark.single_backend

TINY = ["--dataset", "digits", "--n-trials", "2", "--epochs", "1", "--batch-size", "64",
        "--train-limit", "200", "--val-limit", "100", "--startup-trials", "1", "--seeds", "0",
        "--arms", "search", "relu", "gelu", "evolve", "--evo-popsize", "2", "--evo-generations", "1",
]  # fmt: skip


def test_search_pays_writes_run_files_that_the_report_reads(tmp_path, capsys):
    results, work = tmp_path / "results", tmp_path / "work"
    argv = [*TINY, "--results", str(results), "--work", str(work)]
    assert recipe.main(argv) == 0
    files = sorted(results.rglob("*.json"))
    assert [f.relative_to(results).as_posix() for f in files] == [
        f"search_pays/digits-mlp/{arm}/seed0.json" for arm in ("evolve", "gelu", "relu", "search")
    ]
    runs = {}
    for f in files:
        run = load_run(f)
        runs[run["variant"]] = run
        m, chosen = run["metrics"], run["chosen"]
        assert 0.0 <= m["test_accuracy"] <= 1.0 and run["wall_time_s"] > 0
        if run["variant"] == "evolve":  # Baldwinian evolution: 2 candidates x 1 generation
            assert run["config"]["evolution"]["mode"] == "baldwinian" and m["n_trials"] == 2
            assert [r["generation"] for r in run["history"]] == [1] and 0.0 <= m["val_accuracy"] <= 1.0
            assert run["curves"]["best_so_far"] == [m["val_accuracy"]]
            continue
        assert "evolution" not in run["config"]
        assert 0.0 <= m["test_accuracy"] <= 1.0 and m["test_error"] == pytest.approx(1 - m["test_accuracy"])
        assert 0.0 <= m["val_accuracy"] <= 1.0 and m["n_trials"] == 2 and m["n_test"] == 450
        assert [t["number"] for t in run["trials"]] == [0, 1]
        assert 1e-4 <= chosen["learning_rate"] <= 1e-2 and chosen["trial"] in (0, 1)
        assert run["wall_time_s"] > 0 and run["config"]["n_trials"] == 2
        best_val = max(t["val_accuracy"] for t in run["trials"] if t["val_accuracy"] is not None)
        assert m["val_accuracy"] == best_val
    assert runs["relu"]["chosen"]["family"] == "relu" and runs["gelu"]["chosen"]["family"] == "gelu"
    assert {t["family"] for t in runs["relu"]["trials"]} == {"relu"}

    # finished runs are skipped; another protocol on the same files is refused
    before = {f: f.read_text() for f in files}
    assert recipe.main(argv) == 0
    assert "search seed 0: done, skipped" in capsys.readouterr().out
    assert {f: f.read_text() for f in files} == before
    with pytest.raises(ValueError, match="different protocol"):
        recipe.main([*argv, "--epochs", "2"])

    # report.py: the search-pays table of the setting, and the claim's statistics
    readme = tmp_path / "README.md"
    readme.write_text("<!-- report:begin -->\n<!-- report:end -->\n")
    assert report.main(["--results", str(results), "--readme", str(readme), "--figures", str(tmp_path)]) == 0
    text = readme.read_text()
    assert "### `search_pays` · digits-mlp: does the search pay?" in text
    for arm in ("search", "relu", "gelu", "evolve"):
        acc = 100 * runs[arm]["metrics"]["test_accuracy"]
        assert any(line.startswith(f"| {arm} | 1 | {acc:.2f} ±") for line in text.splitlines())
    assert not list(tmp_path.glob("*.png"))  # no loss-curve plots for search studies
    claim = next(c for c in report.CLAIMS if c["recipe"] == "search_pays" and c["setting"].endswith("mlp"))
    grid = report.collect(results)[0][("search_pays", "digits-mlp")]
    doubled = {v: recs + [copy.deepcopy(recs[0]) | {"seed": 1}] for v, recs in grid.items()}
    for v in doubled:  # a second seed 1 point better (search) / worse (baselines) than the first
        doubled[v][1]["metrics"]["test_accuracy"] += 0.01 if v == "search" else -0.01
    r = report.evaluate_claim(claim, {("search_pays", claim["setting"]): doubled})
    assert r["candidate"][0] == "search" and r["baseline"][0] in ("relu", "gelu")
    assert r["candidate"][1]["n"] == 2 and r["verdict"].startswith(("yes", "no"))
