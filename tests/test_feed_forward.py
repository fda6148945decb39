"""`keras_bioact.feed_forward`: blocks by kind, exact parameter formulas, sizing to a budget."""

import pytest

from keras_bioact.feed_forward import KINDS, feed_forward, feed_forward_hidden, feed_forward_params
from keras_bioact.layers import FeedForward, InnerNonlinearity, TwoArgFeedForward

pytestmark = pytest.mark.single_backend


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("relu", {}),
        ("gelu", {"output_dim": 3}),
        ("reglu", {"use_bias": False}),
        ("geglu", {}),
        ("swiglu", {"output_dim": 5}),
        ("two_arg", {}),
        ("two_arg", {"groups": 3, "output_dim": 2}),
        ("two_arg", {"arity": 1, "use_bias": False}),
    ],
)
def test_formula_is_count_params(kind, kwargs):
    hidden = 6
    layer_kwargs = dict(kwargs)
    count_kwargs = dict(kwargs)
    if kind == "two_arg":
        g = InnerNonlinearity(
            arity=kwargs.get("arity", 2), hidden_units=(5, 3), groups=kwargs.get("groups", 1)
        )
        layer_kwargs["inner"] = g
        count_kwargs["inner_hidden"] = (5, 3)
    layer = feed_forward(kind, hidden, **layer_kwargs)
    assert isinstance(layer, TwoArgFeedForward if kind == "two_arg" else FeedForward)
    layer.build((None, 7, 4))
    assert layer.count_params() == feed_forward_params(kind, 4, hidden, **count_kwargs)
    if kind == "two_arg":
        shared = feed_forward_params(kind, 4, hidden, count_inner=False, **count_kwargs)
        assert layer.count_params() - shared == g.count_params()


@pytest.mark.parametrize("width,ratio", [(64, 4), (64, 2), (32, 4), (128, 4)])
@pytest.mark.parametrize("kind,groups", [(k, 1) for k in KINDS] + [("two_arg", 2), ("two_arg", 4)])
def test_sized_blocks_match_the_plain_block_within_two_percent(width, ratio, kind, groups):
    budget = feed_forward_params("gelu", width, ratio * width)
    if kind == "two_arg" and groups * 4417 > 0.9 * budget:
        pytest.skip("the inner nets alone nearly fill this budget")
    hidden = feed_forward_hidden(kind, width, budget, groups=groups)
    count = feed_forward_params(kind, width, hidden, groups=groups)
    assert abs(count - budget) / budget <= 0.02
    step = groups if kind == "two_arg" else 1
    assert hidden % step == 0
    for other in (hidden - step, hidden + step):  # closest
        if other > 0:
            assert abs(feed_forward_params(kind, width, other, groups=groups) - budget) >= abs(count - budget)


def test_gated_blocks_are_two_thirds_of_the_plain_width():
    """Shazeer (2020): GLU blocks at 2/3 of the plain hidden width have its parameters."""
    for width in (64, 256, 768):
        hidden = feed_forward_hidden("swiglu", width, feed_forward_params("relu", width, 4 * width))
        assert abs(hidden - 8 * width / 3) <= 1


def test_sizing_errors_name_the_argument():
    with pytest.raises(ValueError, match="`kind`"):
        feed_forward_hidden("mish", 64, 1000)
    with pytest.raises(ValueError, match="`params`"):
        feed_forward_hidden("gelu", 64, 0)
    with pytest.raises(ValueError, match="`width`"):
        feed_forward_params("gelu", -1, 4)
    with pytest.raises(ValueError, match="`tolerance`"):  # 8 default g's exceed a ratio-4 budget
        feed_forward_hidden("two_arg", 64, 33088, groups=8)
    assert feed_forward_hidden("two_arg", 64, 33088, groups=8, tolerance=None) == 8
    with pytest.raises(ValueError, match="`activation` is set by `kind`"):
        feed_forward("geglu", 8, activation="relu")
