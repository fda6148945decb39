"""The `transformer` template: the feed-forward kind (family, GLU baseline) and the two-argument
`groups` as search choices; both engines run it end to end (tiny settings)."""

import pathlib

import optuna
import pytest

from keras_bioact import search
from keras_bioact.layers import FeedForward, TwoArgFeedForward
from keras_bioact.search import Activation
from keras_bioact.search.spec import SpecError, load_spec
from keras_bioact.search.templates import transformer

pytestmark = pytest.mark.single_backend
optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = dict(input_shape=(8, 8), num_classes=10, patch=4, blocks=2, width=32, heads=2, mlp_ratio=4)
TWO_ARG = {"family": "two_arg", "inner_width": 16, "depth": 1}


def test_every_feed_forward_kind_is_parameter_matched():
    plain = transformer(Activation("relu"), **TINY)
    assert plain.name == "transformer_relu"
    base = plain.count_params()
    models = {
        "gelu": transformer(Activation("gelu"), **TINY),
        "swiglu": transformer(Activation("relu"), feed_forward="swiglu", **TINY),
        "geglu": transformer(Activation("relu"), feed_forward="geglu", **TINY),
        "two_arg": transformer(Activation(TWO_ARG), **TINY),
        "two_arg G4": transformer(Activation({**TWO_ARG, "groups": 4}), **TINY),
    }
    for name, model in models.items():
        assert abs(model.count_params() - base) / base <= 0.02, (name, model.count_params(), base)
    blocks = [layer for layer in models["two_arg G4"].layers if isinstance(layer, TwoArgFeedForward)]
    assert len(blocks) == 2 and blocks[0].inner is blocks[1].inner and blocks[0].groups == 4
    assert any(isinstance(layer, FeedForward) and layer.gated for layer in models["swiglu"].layers)


def test_groups_is_searched_and_refused_by_mlp_blocks():
    space = search.SearchSpace.from_dict({"families": ["two_arg"], "two_arg": {"groups": [1, 4]}})
    trial = optuna.trial.FixedTrial({"family": "two_arg", "two_arg_inner_width": 16, "two_arg_groups": 4})
    assert search.space.sample(space, trial)["groups"] == 4
    with pytest.raises(ValueError, match="groups"):
        search.templates.mlp(Activation({**TWO_ARG, "groups": 4}), (64,), 10)


def test_template_options_are_checked(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[optuna]\n[model]\ntemplate = "transformer"\nfeed_forward = "mish"\n')
    with pytest.raises(SpecError, match="model.feed_forward"):
        load_spec(str(path))
    with pytest.raises(ValueError, match="patch"):
        transformer(Activation("relu"), (8, 8), 10, patch=3)


def test_shipped_spec_runs_with_optuna(tmp_path):
    text = (ROOT / "search" / "transformer.toml").read_text()
    text = text.replace("n_trials = 8", "n_trials = 2").replace("epochs = 5", "epochs = 1")
    text = text.replace('[data]\nname = "digits"', '[data]\nname = "digits"\nmax_train = 128\nmax_val = 64')
    text = text.replace('study = "digits-transformer"', f'study = "t"\nstorage = "sqlite:///{tmp_path}/t.db"')
    path = tmp_path / "transformer.toml"
    path.write_text(text)
    result = search.run_spec(path, progress=False, log=lambda line: None)
    assert search.count_finished(result.study) == 2
    assert 0.0 <= result.test_score <= 1.0


def test_evolution_evolves_the_grouped_inner_nets_of_a_transformer(tmp_path):
    path = tmp_path / "evolve.toml"
    path.write_text(
        """
[data]
name = "digits"
max_train = 128
max_val = 64
[model]
template = "transformer"
patch = 4
blocks = 1
width = 16
heads = 2
[budget]
epochs = 1
[evolution.activation]
family = "two_arg"
inner_width = 8
depth = 1
groups = 2
[evolution]
target = "inner"
algorithm = "snes"
popsize = 4
generations = 1
seed = 0
"""
    )
    out = str(tmp_path / "out")
    result = search.run_spec(path, settings={"output.dir": out}, progress=False, log=lambda line: None)
    # g: 2 groups of 2 -> 8 -> 1 = 2 * 33 weights, all evolved.
    assert sum(v.size for v in result.best_parameters.values()) == 66
