"""recipes/two_arg_vit.py: parameter matching of the six feed-forward arms, a tiny end-to-end run
(run files, skipping, g surfaces and xor scores) and its section in recipes/report.py."""

import pytest

from recipes import report
from recipes import two_arg_vit as recipe
from recipes.common.run_results import RunStore, load_run

pytestmark = pytest.mark.single_backend

TINY = "--dataset digits --patch 4 --blocks 1 --width 16 --heads 2 --groups 2 --epochs 1".split()
TINY += "--train-limit 200 --test-limit 60 --batch-size 50 --seeds 0".split()


@pytest.mark.parametrize(
    "argv, side",
    [([], 28), (["--groups", "8", "--inner-hidden", "16", "16"], 28), (TINY, 8)],
    ids=["default", "groups8", "tiny"],
)
def test_every_arm_is_parameter_matched_within_2_percent(argv, side):
    args = recipe.parse_args(argv)
    sizes, target = recipe.arm_sizes(args, side)
    assert set(sizes) == set(recipe.ARMS)
    for hidden, total in sizes.values():
        assert hidden >= 1 and abs(total - target) / target <= 0.02
    assert sizes["relu"] == (args.ffn_ratio * args.width, target)  # the reference itself


def test_counted_parameters_are_the_built_models():
    args = recipe.parse_args(TINY)
    sizes, _ = recipe.arm_sizes(args, 8)
    for arm, (hidden, total) in sizes.items():
        model = recipe.build_vit(arm, hidden, args, 8)
        assert model.count_params() == total, arm
        assert model.output_shape == (None, 10)
    grouped = recipe.build_vit("2-arg-grouped", sizes["2-arg-grouped"][0], args, 8)
    assert len(recipe.learned_gs(grouped)) == args.groups * args.blocks  # one g per group and block
    shared = recipe.build_vit("2-arg", sizes["2-arg"][0], args.__class__(**{**vars(args), "blocks": 2}), 8)
    assert len(recipe.learned_gs(shared)) == 1  # one g for every block


def test_bad_scale_is_refused_before_training():
    with pytest.raises(SystemExit):
        recipe.parse_args(["--train-limit", "150", "--batch-size", "100"])  # unequal batches
    with pytest.raises(ValueError, match="more than 2%"):
        tiny_blocks = recipe.parse_args("--width 4 --heads 1 --groups 16 --ffn-ratio 1".split())
        recipe.arm_sizes(tiny_blocks, 28)  # 16 g's per block outweigh a block of 40 weights


def test_tiny_run_writes_run_files_surfaces_and_skips_finished_runs(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    argv = [*TINY, "--arms", "swiglu", "2-arg-grouped", "--results", str(results), "--figures", str(figures)]
    first = recipe.main(argv)
    setting = results / "two_arg_vit" / first["setting"]
    grouped = load_run(setting / "2-arg-grouped" / "seed0.json")
    m = grouped["metrics"]
    assert m["params"] == first["sizes"]["2-arg-grouped"][1] == grouped["params"]
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["test_error"] == pytest.approx(1 - m["test_accuracy"])
    assert m["mean_train_loss"] == pytest.approx(grouped["curves"]["loss"][0])  # one epoch: its mean loss
    assert len(grouped["record"]["xor"]) == 2 and 0.0 <= m["xor_score"] <= 1.0
    assert m["xor_score"] == pytest.approx(sum(x["score"] for x in grouped["record"]["xor"]) / 2)
    png = figures / grouped["record"]["surface_png"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "xor_score" not in load_run(setting / "swiglu" / "seed0.json")["metrics"]
    stamps = {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")}
    assert recipe.main(argv)["runs"] == {}  # everything finished: nothing re-run
    assert {p: p.stat().st_mtime_ns for p in setting.rglob("*.json")} == stamps
    with pytest.raises(ValueError, match="different protocol"):
        recipe.main([*argv, "--learning-rate", "0.01"])


def test_report_section_has_params_welch_p_xor_scores_and_surfaces(tmp_path):
    store = RunStore(tmp_path / "results", "two_arg_vit", {"epochs": 2})
    accs = {"relu": (0.80, 0.82), "swiglu": (0.84, 0.85), "2-arg": (0.86, 0.88)}
    for variant, pair in accs.items():
        for seed, acc in enumerate(pair):
            metrics = {"test_accuracy": acc, "test_error": 1 - acc, "mean_train_loss": 1.0}
            record = {}
            if variant == "2-arg":
                metrics.update(xor_score=0.3 + seed / 10, xor_fraction=1.0)
                record["surface_png"] = f"g-seed{seed}.png"
            extra = {"params": 1000 + len(variant), "record": record}
            setting = recipe.setting_name(recipe.parse_args([]))
            store.save(setting, variant, seed, metrics=metrics, curves={"loss": [1.0, 0.5]}, extra=extra)
    text = report.generate(tmp_path / "results", tmp_path, tmp_path / "figures", plot=False)
    assert "Welch p vs best baseline (swiglu), test accuracy, two-sided" in text  # best baseline by mean
    # 2-arg 87.0 ± 1.41 vs swiglu 84.5 ± 0.71: Welch t = 2.24 on 1.47 df, two-sided p = 0.20
    assert "| 2-arg | 1,005 | 2 | 0, 1 | 87.00 ± 1.41 [74.29, 99.71] | 0.2 |" in text
    assert "| swiglu | 1,006 | 2 | 0, 1 | 84.50 ± 0.71 [78.15, 90.85] | (best baseline) |" in text
    assert "mean xor_score of the learned g's: 2-arg: 0.30 (seed 0), 0.40 (seed 1)." in text
    assert "![2-arg g seed 1](figures/g-seed1.png)" in text
    row = next(line for line in text.splitlines() if "trains faster (lower training-loss area)" in line)
    assert "**no (so far: 2 of 5 seeds)**" in row  # equal loss areas: not held
