"""The one spec schema: docs/specs.md is generated from it, earlier formats translate or name
the new key, and checking a spec imports neither Keras nor a backend."""

import pathlib
import subprocess
import sys

import pytest

from keras_bioact.search.spec import SpecDeprecationWarning, SpecError, parse_spec, schema

pytestmark = pytest.mark.single_backend  # backend-independent: spec, CLI and data plumbing

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_docs_specs_md_is_generated_from_the_schema():
    assert (ROOT / "docs" / "specs.md").read_text() == schema.markdown(), (
        "regenerate: python -m keras_bioact.search.spec > docs/specs.md"
    )


def test_earlier_optuna_tables_keep_working_with_a_deprecation():
    raw = {
        "study": {"name": "old", "n_trials": 3},
        "pruner": {"name": "none"},
        "space": {"families": ["relu"]},
    }
    with pytest.warns(SpecDeprecationWarning, match=r"optuna"):
        spec = parse_spec(raw, source="old.toml")
    assert (spec.engine, spec.study_name, spec.n_trials, spec.pruner["name"]) == ("optuna", "old", 3, "none")


def test_earlier_evolution_keys_name_the_new_key():
    with pytest.raises(SpecError, match=r"old.toml: model.activation: .*evolution.activation"):
        parse_spec({"evolution": {}, "model": {"activation": "gamma"}}, source="old.toml")
    with pytest.warns(SpecDeprecationWarning, match="budget.epochs"):
        spec = parse_spec({"evolution": {}, "model": {"pretrain_epochs": 2}}, source="old.toml")
    assert spec.budget.epochs == 2


def test_one_engine_table_and_the_same_wording_for_both_engines():
    with pytest.raises(SpecError, match="exactly one engine table"):
        parse_spec({"data": {"name": "digits"}}, source="s.toml")
    with pytest.raises(SpecError, match="exactly one engine table"):
        parse_spec({"optuna": {"study": "a"}, "evolution": {}}, source="s.toml")
    messages = []
    for engine in ({"optuna": {"study": "a"}}, {"evolution": {}}):
        with pytest.raises(SpecError) as info:
            parse_spec({**engine, "budget": {"batch_size": 0}}, source="s.toml")
        messages.append(str(info.value))
    assert messages[0] == messages[1] == "s.toml: budget.batch_size: must be in [1, 1,048,576], got 0"


def test_checking_a_spec_imports_no_keras_and_no_backend():
    code = (
        "import sys; from keras_bioact.search.spec import load_spec; "
        f"[load_spec(p) for p in sorted(__import__('glob').glob({str(ROOT / 'search' / '*.toml')!r}))]; "
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch', 'optuna') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
