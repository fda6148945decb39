"""`[evolution] target = "expression"`: composed expressions evolved by a genetic algorithm over
a fixed-size gene encoding, each function trained once (fingerprint dedup)."""

import csv
import json
import pathlib

import pytest
import tomllib

from keras_bioact import expressions
from keras_bioact.search import run_spec
from keras_bioact.search.evolution.expressions import ExpressionScorer
from keras_bioact.search.spec import SpecError, parse_spec

pytestmark = pytest.mark.single_backend
ROOT = pathlib.Path(__file__).resolve().parents[3]


def _raw(tmp_path, **evolution):
    raw = tomllib.loads((ROOT / "search" / "evolve_composed.toml").read_text())
    raw["data"].update(max_train=200, max_val=60, max_test=60)
    raw["model"]["hidden"] = [8]
    raw["budget"]["epochs"] = 1
    raw["evolution"].update(popsize=4, generations=2, **evolution)
    # two functions (x and relu(x)) among six expressions: at most three trainings, many duplicates
    raw["space"]["composed"].update(schemas=["u(x)", "u1(u2(x))"], unary=["identity", "relu"], binary=["max"])
    raw["output"] = {"dir": str(tmp_path / "out")}
    return raw


def test_the_shipped_expression_evolution_runs_end_to_end_and_trains_each_function_once(tmp_path):
    spec = parse_spec(_raw(tmp_path), source="evolve_composed.toml")
    assert spec.engine == "evolution" and spec.space.composed.unary == ("identity", "relu")
    lines = []
    result = run_spec(spec, progress=False, log=lines.append)
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.summary
    expressions.parse(summary["best_expression"])
    assert 0.0 <= summary["best_test_accuracy"] <= 1.0 and len(result.history) == 2
    rows = list(csv.DictReader((out / "evaluations.csv").open()))
    assert len(rows) == summary["evaluations"] >= 4
    first = {}
    for row in rows:
        assert expressions.fingerprint(row["expression"]) == row["fingerprint"]
        if row["fingerprint"] in first:  # a duplicate: the first one's score, no training
            assert row["duplicate_of"] == first[row["fingerprint"]]["expression"]
            assert row["val_accuracy"] == first[row["fingerprint"]]["val_accuracy"]
            assert float(row["seconds"]) == 0.0
        else:
            first[row["fingerprint"]] = row
            assert row["duplicate_of"] == ""
    assert summary["functions_trained"] == len(first) <= 2 and len(rows) > len(first)
    assert any("optimised:" in line for line in lines)


def test_the_scorer_trains_equal_functions_once():
    built = []

    class FakeScorer(ExpressionScorer):
        def _train(self, expression):
            built.append(expression)
            return 0.5 + 0.01 * len(built)

    scorer = FakeScorer(None, None, None, None)
    assert scorer("silu(x)") == scorer("mul(x, sigmoid(x))") == scorer("mul(sigmoid(x), x)") == 0.51
    assert scorer("gelu(x)") == 0.52
    assert built == ["silu(x)", "gelu(x)"]
    assert [r["duplicate_of"] for r in scorer.rows] == ["", "silu(x)", "silu(x)", ""]


@pytest.mark.parametrize(
    "edit, key",
    [
        ({"evolution": {"mode": "baldwinian"}}, "evolution.mode"),
        ({"evolution": {"algorithm_options": {"popsize": 3}}}, "evolution.algorithm_options.popsize"),
        ({"space": {"families": ["relu"]}}, "space.families"),
        ({"space": {"gamma": {}}}, "space.gamma"),
        ({"space": {"composed": {"unary": ["sigmoidd"]}}}, "space.composed.unary"),
    ],
)
def test_bad_expression_evolution_specs_name_the_key(tmp_path, edit, key):
    raw = _raw(tmp_path)
    for table, values in edit.items():
        raw[table].update(values)
    with pytest.raises(SpecError) as info:
        parse_spec(raw, source="bad.toml")
    assert info.value.key == key if hasattr(info.value, "key") else key in str(info.value)
    assert key in str(info.value)


def test_a_parameter_evolution_still_refuses_a_space(tmp_path):
    raw = _raw(tmp_path)
    raw["evolution"]["target"] = "gamma"
    with pytest.raises(SpecError, match="space"):
        parse_spec(raw, source="bad.toml")
