"""The README example `recipes/convert_existing_model.py` runs end to end."""

import importlib.util
import pathlib

import pytest

RECIPE = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "convert_existing_model.py"


@pytest.mark.single_backend
def test_convert_recipe_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("convert_existing_model", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, report = module.main(epochs=1, out=str(tmp_path / "m.keras"))
    assert len(report.converted) == 2 and (tmp_path / "m.keras").exists()
