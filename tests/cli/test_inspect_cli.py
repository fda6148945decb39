"""`bioact inspect MODEL.keras --out DIR`."""

import json
import os

import keras
import numpy as np
import pytest

from keras_bioact import BRU, GammaActivation
from keras_bioact.cli import main

pytest.importorskip("matplotlib")


def _save(tmp_path, layers, name="model.keras"):
    model = keras.Sequential([keras.Input((6,)), *layers])
    path = str(tmp_path / name)
    model.save(path)
    return model, path


def test_inspect_writes_pngs_and_summary(tmp_path, capsys):
    inner = keras.Sequential([keras.Input((5,)), BRU("oru", r=1.5, name="inner_oru")], name="block")
    model, path = _save(
        tmp_path,
        [keras.layers.Dense(5), GammaActivation(name="g1"), inner, keras.layers.Dense(2)],
    )
    out = tmp_path / "figs"
    assert main(["inspect", path, "--out", str(out), "--dpi", "60"]) == 0
    printed = capsys.readouterr().out
    assert "g1" in printed and "inner_oru" in printed
    files = sorted(os.listdir(out))
    assert files == [
        "g1_curves.png",
        "g1_parameters.png",
        "inner_oru_curves.png",
        "inner_oru_parameters.png",
        "summary.json",
    ]
    for f in files[:-1]:
        with open(out / f, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    by_layer = {e["layer"]: e for e in summary["layers"]}
    assert by_layer["g1"]["kind"] == "gamma" and by_layer["inner_oru"]["kind"] == "bru"
    n = keras.ops.convert_to_numpy(model.get_layer("g1").n.value)
    assert by_layer["g1"]["stats"]["n/mean"] == pytest.approx(float(np.mean(n)), rel=1e-6)
    assert by_layer["inner_oru"]["stats"]["r/max"] == pytest.approx(1.5)


def test_inspect_bad_inputs(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "o")]) == 2
    _, path = _save(tmp_path, [keras.layers.Dense(3), keras.layers.ReLU()], "plain.keras")
    assert main(["inspect", path, "--out", str(tmp_path / "o")]) == 1
    assert "no keras-bioact layers" in capsys.readouterr().err
    assert main(["inspect", path, "--out", str(tmp_path / "o"), "--input-range", "1", "0"]) == 2
    assert not os.path.exists(tmp_path / "o")
