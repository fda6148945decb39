"""recipes/search_pays.py at a tiny budget: one study per procedure seed through `run_spec`, its
verdict in the run file, skipping, and report.py's per-seed verdict table."""

import shutil

import pytest

from recipes import report
from recipes import search_pays as recipe
from recipes.common.run_results import load_run

pytestmark = pytest.mark.single_backend

TINY = ["--dataset", "digits", "--n-trials", "4", "--epochs", "1", "--batch-size", "64",
        "--train-limit", "200", "--val-limit", "100", "--startup-trials", "1", "--seeds", "0",
        "--verdict-seeds", "2", "--repeats", "1"]  # fmt: skip


def test_search_pays_writes_one_verdict_per_seed_that_the_report_lists(tmp_path, capsys):
    results, work = tmp_path / "results", tmp_path / "work"
    argv = [*TINY, "--results", str(results), "--work", str(work)]
    assert recipe.main(argv) == 0
    files = sorted(results.rglob("*.json"))
    assert [f.relative_to(results).as_posix() for f in files] == [
        "search_verdict/digits-mlp/study/seed0.json"
    ]
    run = load_run(files[0])
    v, m = run["verdict"], run["metrics"]
    assert {"best", "baseline", "metric", "best_scores", "baseline_scores", "difference", "ci95"} <= set(v)
    assert v["metric"] == "test_accuracy" and len(v["best_scores"]) == 2
    assert v["seeds"] == [1_000_000, 1_000_001]
    assert m["n_trials"] == 4 and m["n_test"] == 450
    # the baselines are the study's first trials, the best baseline is the best of them on validation
    families = [t["family"] for t in run["trials"]]
    assert families[:3] == ["relu", "gelu", "swish"]
    done = [
        t for t in run["trials"] if t["family"] in ("relu", "gelu", "swish") and t["val_accuracy"] is not None
    ]
    base = max(done, key=lambda t: (t["val_accuracy"], -t["number"]))
    if v["outcome"] == "only_baselines":  # TPE may sample a baseline family again: then nothing to compare
        assert v["best"] == base["family"] and v["best_trial"] == base["number"] and v["baseline"] is None
    else:
        assert v["baseline"] == base["family"] and v["baseline_trial"] == base["number"]
        assert m["baseline_validation"] == base["val_accuracy"]
    assert run["config"]["verdict_seeds"] == 2 and run["wall_time_s"] > 0
    out = capsys.readouterr().out
    assert v["verdict"] in out

    # finished runs are skipped; another protocol on the same files is refused
    before = files[0].read_text()
    assert recipe.main(argv) == 0
    assert "digits-mlp study seed 0: done, skipped" in capsys.readouterr().out
    assert files[0].read_text() == before
    with pytest.raises(ValueError, match="different protocol"):
        recipe.main([*argv, "--epochs", "2"])

    # report.py: the per-seed verdict table, and `--check` accepts what it wrote
    readme = tmp_path / "README.md"
    readme.write_text("<!-- report:begin -->\n<!-- report:end -->\n")
    args = ["--results", str(results), "--readme", str(readme), "--figures", str(tmp_path)]
    assert report.main(args) == 0
    text = readme.read_text()
    assert "### `search_pays` (verdict protocol) · digits-mlp: does the search pay?" in text
    row = next(line for line in text.splitlines() if line.startswith("| 0 | "))
    assert v["verdict"] in row and f"{100 * v['best_mean']:.2f} [" in row
    assert f"Over the 1 procedure seed(s): 1 {v['outcome'].replace('_', ' ')}" in text
    assert "fashion_mnist-mlp, fashion_mnist-cnn)? Not run yet" in text
    assert report.main([*args, "--check"]) == 0


def test_composed_space_runs_the_prescreen_through_the_same_verdict(tmp_path):
    """`--space composed`: after the baselines every trial is a pre-screened composed expression;
    its run files are the variant `composed`, and the report gives them their own table."""
    results = tmp_path / "results"
    argv = [*TINY, "--space", "composed", "--propose", "4", "--prescreen-train", "1",
            "--results", str(results), "--work", str(tmp_path / "work")]  # fmt: skip
    assert recipe.main(argv) == 0
    (path,) = results.rglob("*.json")
    assert path.relative_to(results).as_posix() == "search_verdict/digits-mlp/composed/seed0.json"
    run = load_run(path)
    assert run["config"]["prescreen"] == {"propose": 4, "train": 1}
    assert run["config"]["composed"] == recipe.COMPOSED
    after = run["trials"][3:]
    assert [t["family"] for t in run["trials"][:3]] == ["relu", "gelu", "swish"] and after
    assert all(t["family"] == "composed" and "(x" in t["expression"] for t in after)
    assert set(run["prescreen_spearman"]) == {"rho", "n"}  # the study's own measure, kept
    readme = tmp_path / "README.md"
    readme.write_text("<!-- report:begin -->\n<!-- report:end -->\n")
    assert report.main(["--results", str(results), "--readme", str(readme), "--figures", str(tmp_path)]) == 0
    text = readme.read_text()
    assert "digits-mlp: does a composed-activation search pay?" in text
    assert "draw 4 random expressions" in text
    assert "digits-mlp: does the search pay?" not in text  # no families run files here
    with pytest.raises(SystemExit, match="prescreen-train"):
        recipe.main([*argv, "--prescreen-train", "5"])


def test_the_families_protocol_keeps_the_digest_of_the_shipped_run_files():
    """Adding `--space` must not change the families protocol: the shipped MLP run files would
    then be refused as another protocol (and their finished studies rerun)."""
    args = recipe.make_parser().parse_args([])
    for key, value in recipe.SCALE[args.arch].items():
        setattr(args, key, value)
    shipped = load_run(recipe.ROOT / "recipes/results/search_verdict/fashion_mnist-mlp/study/seed0.json")
    assert recipe.protocol(args) == shipped["config"]


@pytest.fixture(scope="module")
def families_studies(tmp_path_factory):
    """Results and work folders with the families study of seed 0 on the digits MLP (and the
    argv that made it); the CNN's is added by the transfer test."""
    tmp = tmp_path_factory.mktemp("families")
    base = [*TINY, "--epochs", "2", "--results", str(tmp / "results"), "--work", str(tmp / "work")]
    assert recipe.main(base) == 0
    return tmp / "results", tmp / "work", base


def test_mixture_space_is_judged_against_the_families_studys_tuned_baseline(
    tmp_path, monkeypatch, families_studies
):
    """`--space mixture` needs the families study of the same seed, takes its best baseline on
    validation with that trial's learning rate, and retrains both arms on the same fresh seeds."""
    results, work = tmp_path / "results", tmp_path / "work"
    mixture = [*TINY, "--epochs", "2", "--results", str(results), "--work", str(work), "--space", "mixture",
               "--shrink-start", "1"]  # fmt: skip
    with pytest.raises(SystemExit, match="run the families study of seed 0 first"):
        recipe.main(mixture)
    shutil.copytree(families_studies[0], results)
    study = load_run(results / "search_verdict/digits-mlp/study/seed0.json")
    from keras_bioact.search import mixture as mixture_lib

    rates, retrain = [], mixture_lib.retrain

    def recording(*args, **kwargs):
        rates.append(kwargs["learning_rate"])
        return retrain(*args, **kwargs)

    monkeypatch.setattr(mixture_lib, "retrain", recording)
    assert recipe.main(mixture) == 0
    run = load_run(results / "search_verdict/digits-mlp/mixture/seed0.json")
    done = [t for t in study["trials"] if t["family"] in recipe.BASELINES and t["val_accuracy"] is not None]
    tuned = max(done, key=lambda t: (t["val_accuracy"], -t["number"]))
    assert run["tuned_baseline"] == {"family": tuned["family"], "learning_rate": tuned["learning_rate"],
                                     "trial": tuned["number"]}  # fmt: skip
    v = run["verdict"]
    assert v["baseline"] == recipe.KERAS_NAME.get(tuned["family"], tuned["family"])
    assert v["seeds"] == [1, 2] and len(v["best_scores"]) == len(v["baseline_scores"]) == 2
    assert set(run["chosen"].values()) <= set(recipe.MIXTURE["candidates"]) and run["chosen"]
    assert rates == [tuned["learning_rate"]] * 2  # both arms retrained at the tuned learning rate
    assert len(list(work.glob("digits-mlp-mixture-seed0-*/mixture_result.json"))) == 1
    readme = tmp_path / "README.md"
    readme.write_text("<!-- report:begin -->\n<!-- report:end -->\n")
    assert report.main(["--results", str(results), "--readme", str(readme), "--figures", str(tmp_path)]) == 0
    text = readme.read_text()
    assert "digits-mlp: does the mixture cell pay?" in text
    assert f"{tuned['family']} (families study trial {tuned['number']}, lr " in text
    with pytest.raises(SystemExit, match="shrink-start"):
        recipe.main([*mixture, "--shrink-start", "2"])


def test_transfer_judges_the_other_architectures_choice_against_this_ones_tuned_baseline(families_studies):
    """`--transfer-from cnn` on the MLP: the CNN study's selected activation, retrained on the MLP
    at the MLP's tuned baseline's learning rate and seeds, against that baseline's verdict scores."""
    results, work, base = families_studies
    transfer = [*base, "--transfer-from", "cnn"]
    with pytest.raises(SystemExit, match="needs the cnn study of --space families"):
        recipe.main(transfer)
    assert recipe.main([*base, "--arch", "cnn"]) == 0
    assert recipe.main(transfer) == 0
    source = load_run(results / "search_verdict/digits-cnn/study/seed0.json")
    target = load_run(results / "search_verdict/digits-mlp/study/seed0.json")
    run = load_run(results / "search_verdict/digits-mlp/study-from-cnn/seed0.json")
    chosen = next(t for t in source["trials"] if t["number"] == source["verdict"]["best_trial"])
    tuned = next(t for t in target["trials"] if t["number"] == target["verdict"]["baseline_trial"])
    assert chosen["family"] not in recipe.BASELINES
    assert run["transferred"]["params"] == {**chosen["params"], "learning_rate": tuned["learning_rate"]}
    v, t = run["verdict"], target["verdict"]
    assert v["seeds"] == t["seeds"] and v["baseline"] == t["baseline"]
    assert v["baseline_scores"] == t["baseline_scores"]
    assert len(v["best_scores"]) == 2 and v["best"].endswith(f"(from cnn trial {chosen['number']})")
    readme = results.parent / "README.md"
    readme.write_text("<!-- report:begin -->\n<!-- report:end -->\n")
    args = ["--results", str(results), "--readme", str(readme), "--figures", str(results.parent)]
    assert report.main(args) == 0
    assert "digits-mlp: does what the families search selected on the cnn hold here?" in readme.read_text()
    with pytest.raises(SystemExit, match="another --arch"):
        recipe.main([*base, "--transfer-from", "mlp"])


def test_composed_table_compares_with_the_baseline_the_families_study_tuned():
    """A composed study tunes each baseline with one learning-rate draw; its table also gives the
    best composed trial against the baseline the families study of the same seed tuned, on the
    same verdict seeds, and says nothing where the seeds differ."""
    from keras_bioact.stats import welch_interval
    from recipes.common.search_pays_report import verdict_section

    where = recipe.ROOT / "recipes/results/search_verdict/fashion_mnist-cnn"
    composed, families = load_run(where / "composed/seed2.json"), load_run(where / "study/seed2.json")
    key = ("search_verdict", "fashion_mnist-cnn")
    text = verdict_section(key, {"study": [families], "composed": [composed]})
    lo, hi = welch_interval(composed["verdict"]["best_scores"], families["verdict"]["baseline_scores"])
    assert composed["verdict"]["baseline_trial"] == 0 and families["verdict"]["baseline_trial"] == 9
    assert f"seed 2: relu (families trial 9) -1.79 [{100 * lo:.2f}, {100 * hi:.2f}], p = 0.057." in text
    other = {**families, "verdict": {**families["verdict"], "seeds": [1, 2, 3, 4, 5]}}
    assert "families trial" not in verdict_section(key, {"study": [other], "composed": [composed]})
