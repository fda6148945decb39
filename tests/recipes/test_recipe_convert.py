"""The README example `recipes/convert_existing_model.py` runs end to end."""

import pytest

from recipes import convert_existing_model


@pytest.mark.single_backend
def test_convert_recipe_runs(tmp_path):
    model, report = convert_existing_model.main(epochs=1, out=str(tmp_path / "m.keras"))
    assert len(report.converted) == 2 and (tmp_path / "m.keras").exists()
