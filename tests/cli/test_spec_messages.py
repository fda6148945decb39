"""A spec error names the key as the user wrote it (also in a table of an earlier format) with the
closest legal key; a deprecation warning is one line, without a line of Python source."""

import contextlib
import os
import pathlib
import subprocess
import sys

import pytest

from keras_bioact.search.spec import SpecError, parse_spec

pytestmark = pytest.mark.single_backend
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "raw, key, suggestion",
    [
        ({"study": {"n_trails": 3}}, "study.n_trails", "n_trials"),  # earlier [study] table
        ({"optuna": {"n_trails": 3}}, "optuna.n_trails", "n_trials"),
        ({"optuna": {}, "budget": {"epoch": 3}}, "budget.epoch", "epochs"),
        ({"sampler": {"nmae": "tpe"}}, "sampler.nmae", "name"),
        ({"optuna": {}, "modle": {}}, "modle", "model"),
    ],
)
def test_unknown_key_named_as_written_with_closest_match(raw, key, suggestion):
    with pytest.warns() if set(raw) & {"study", "sampler"} else contextlib.nullcontext():
        with pytest.raises(SpecError) as info:
            parse_spec(raw, source="s.toml")
    assert info.value.key == key
    assert f"did you mean {suggestion!r}?" in str(info.value)


def test_no_suggestion_for_a_key_like_nothing_legal():
    with pytest.raises(SpecError) as info:
        parse_spec({"optuna": {"zzzzqqq": 1}}, source="s.toml")
    assert "did you mean" not in str(info.value)


def test_cli_prints_deprecation_as_one_line_and_the_key_as_written(tmp_path):
    spec = tmp_path / "old.toml"
    spec.write_text("[study]\nname = 'x'\nn_trails = 3\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "keras_bioact.cli", "search", str(spec)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr  # the warning and the error, one line each
    assert lines[0].startswith("bioact: warning: ") and "[study]" in lines[0] and "deprecated" in lines[0]
    assert "study.n_trails" in lines[1] and "did you mean 'n_trials'?" in lines[1]
    assert "optuna.n_trails" not in proc.stderr and "warn(" not in proc.stderr
