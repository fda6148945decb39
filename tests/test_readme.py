"""README.md's Python snippets run as written (issue 28).

Each ```python block is executed in a fresh namespace holding the small data and model it
assumes (scikit-learn's digits), in a temporary working directory. The only edits to a block's
text are the budgets in `SHRINK` (exact substrings, so a README change that drops one fails here).
"""

import pathlib
import re

import keras
import pytest
from sklearn.datasets import load_digits

from keras_bioact.layers import GammaActivation

pytestmark = pytest.mark.single_backend
ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
SPEC = ROOT / "search" / "quickstart.toml"
# (exact substring, replacement): smaller budgets, same calls; each must occur in some block.
SHRINK = [
    ('"search/quickstart.toml")', f'"{SPEC.as_posix()}", n_trials=2, progress=False)'),
    ("popsize=32, generations=50", "popsize=4, generations=2"),
    ("nin.pretrain_inner(model)", "nin.pretrain_inner(model, epochs=1)"),
    ("epochs=20", "epochs=1"),
    ("epochs=30", "epochs=2"),
    ("epochs=3,", "epochs=1,"),
]


def _data():
    x, y = load_digits(return_X_y=True)
    x, y = (x[:192] / 16.0).astype("float32"), y[:192].astype("int32")
    return x, y


def _model(act):
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16), act, keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _namespace(block):
    x, y = _data()
    if "anru(x)" in block:  # the RNN snippet: digits as 8 rows of 8 pixels
        x = x.reshape(-1, 8, 8)
    act = keras.layers.Activation("relu") if "convert(" in block else GammaActivation()
    return {
        "x": x,
        "y": y,
        "x_train": x,
        "y_train": y,
        "x_val": x[:32],
        "y_val": y[:32],
        "model": _model(act),
    }


def test_readme_has_the_snippets():
    assert len(BLOCKS) >= 7
    for old, _ in SHRINK:
        assert any(old in b for b in BLOCKS), f"no README block contains {old!r} any more: update SHRINK"


@pytest.mark.parametrize("i", range(len(BLOCKS)), ids=lambda i: f"block{i + 1}")
def test_readme_snippet_runs(i, tmp_path, monkeypatch):
    block = BLOCKS[i]
    for old, new in SHRINK:
        block = block.replace(old, new)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f"README.md block {i + 1}", "exec"), _namespace(block))
