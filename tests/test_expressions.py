"""The expression grammar of composed activations (`keras_bioact.expressions`): parsing and
printing, errors naming the bad token and its column, the primitive tables, fingerprints of
functionally equal expressions, schemas and the gene encoding of the evolution engine."""

import itertools

import numpy as np
import pytest

from keras_bioact import expressions, reference
from keras_bioact.expressions import ExpressionError, Node, parse
from keras_bioact.layers._primitives import FUNCTIONS

pytestmark = pytest.mark.single_backend


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("x", "x"),
        ("mul(x, sigmoid(x))", "mul(x, sigmoid(x))"),
        ("  tanh( softplus(x) ) ", "tanh(softplus(x))"),
        ("max(relu(x),sin(x))", "max(relu(x), sin(x))"),
        ("wsum(gamma(eru(x)), min(x, neg(x)))", "wsum(gamma(eru(x)), min(x, neg(x)))"),
    ],
)
def test_parse_and_print_round_trip(text, canonical):
    tree = parse(text)
    assert str(tree) == canonical
    assert parse(str(tree)) == tree


def test_the_tree_is_plain_data():
    tree = parse("mul(x, sigmoid(x))")
    assert tree == Node("mul", (Node("x"), Node("sigmoid", (Node("x"),))))
    assert tree.to_tuple() == ("mul", "x", ("sigmoid", "x"))
    assert tree.depth == 2 and [c.op for c in tree.calls()] == ["mul", "sigmoid"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("mul(x, sigmoidd(x))", "unknown primitive 'sigmoidd' at column 8; did you mean 'sigmoid'?"),
        ("Relu(x)", "unknown primitive 'Relu' at column 1; did you mean 'relu'?"),
        ("zzzz(x)", "unknown primitive 'zzzz' at column 1; primitives: identity, neg"),
        (
            "relu(x",
            "expected ')' to close 'relu' (opened at column 1), got the end of the expression at column 7",
        ),
        ("relu x", "expected '(' after 'relu', got 'x' at column 6"),
        ("relu(x, x)", "'relu' takes 1 argument, got 2 at column 1"),
        ("mul(x)", "'mul' takes 2 arguments, got 1 at column 1"),
        ("relu(x))", "unexpected ')' after the expression at column 8"),
        ("x(x)", "'x' is the input, not a primitive at column 1"),
        ("relu(y)", "unknown primitive 'y' at column 6"),
        ("relu()", "expected 'x' or a primitive, got ')' at column 6"),
        ("sin(x) + 1", "unexpected character '+' at column 8"),
        ("__import__('os')", 'unexpected character "\'" at column 12'),
        ("relu(x)\n", "unexpected character '\\n' at column 8"),
        ("", "is empty"),
        ("sin(sin(sin(sin(sin(x)))))", "calls nested deeper than 4 levels at 'sin' at column 17"),
    ],
)
def test_bad_expressions_name_the_token_and_its_column(text, message):
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_strings_and_long_strings_are_refused():
    with pytest.raises(ExpressionError, match="must be a string"):
        parse(3)
    with pytest.raises(ExpressionError, match="longer than 1000"):
        parse("relu(" * 300 + "x" + ")" * 300)


def test_the_primitive_tables_agree():
    assert len(expressions.UNARY) >= 20 and len(expressions.BINARY) >= 6
    assert set(expressions.PRIMITIVES) == set(reference.COMPOSED_PRIMITIVES) == set(FUNCTIONS)
    for name, prim in expressions.PRIMITIVES.items():
        _, names, bounded = reference.COMPOSED_PRIMITIVES[name]
        assert names == tuple(p.name for p in prim.params), name
        assert bounded == prim.bounded, name
        for p in prim.params:
            assert p.low <= p.init <= p.high, (name, p)


def test_bounded_primitives_are_bounded_and_the_others_are_clipped():
    x = np.array([-3e38, -1e7, -1e3, 0.0, 1e3, 1e7, 3e38])
    for name, prim in expressions.PRIMITIVES.items():
        expr = f"{name}(x)" if prim.arity == 1 else f"{name}(x, x)"
        y = expressions.reference(expr, x)
        assert np.isfinite(y).all() and np.abs(y).max() <= reference.COMPOSED_VALUE_BOUND, name


def test_parameter_names_follow_the_calls_in_pre_order():
    names = [n for n, _, _ in expressions.parameter_names("wsum(gamma(x), mul(eru(x), x))")]
    assert names == ["wsum0_w", "gamma1_n", "gamma1_s", "eru3_r"]


# ----------------------------------------------------------------------------- fingerprints


def test_functionally_equal_expressions_share_a_fingerprint():
    fp = expressions.fingerprint
    assert fp("mul(x, sigmoid(x))") == fp("silu(x)") == fp("mul(sigmoid(x), identity(x))")
    assert fp("add(sin(x), relu(x))") == fp("add(relu(x), sin(x))")
    assert fp("neg(neg(x))") == fp("identity(x)") == fp("x") == fp("max(x, x)")
    assert fp("relu(relu(x))") == fp("relu(x)") == fp("max(x, relu(x))")
    assert fp("sub(x, relu(x))") == fp("min(x, relu(neg(x)))") == fp("neg(relu(neg(x)))")


def test_different_functions_and_different_learnable_scalars_have_different_fingerprints():
    fp = expressions.fingerprint
    many = [
        "relu(x)",
        "gelu(x)",
        "silu(x)",
        "elu(x)",
        "softplus(x)",
        "tanh(x)",
        "abs(x)",
        "x",
        "mul(x, tanh(x))",
        "max(relu(x), sin(x))",
    ]
    assert len({fp(e) for e in many}) == len(many)
    # swish starts as silu and gamma as softplus, but each has learnable scalars: another point.
    assert fp("swish(x)") != fp("silu(x)") and fp("gamma(x)") != fp("softplus(x)")
    assert fp("scale(x)") != fp("x") and fp("scale(x)") == fp("scale(identity(x))")
    assert len(fp("x")) == 16


def test_the_fingerprint_sees_differences_outside_the_middle_of_the_probe():
    fp = expressions.fingerprint
    assert fp("min(x, exp(x))") == fp("x")  # exp(x) > x everywhere: the same function
    # hard_tanh-like shapes that agree on [-1, 1] but not beyond
    assert fp("tanh(x)") != fp("softsign(x)") and fp("erf(x)") != fp("tanh(x)")


def test_fingerprints_of_a_whole_schema_dedup_symmetric_pairs():
    unary = ("relu", "sin", "tanh")
    exprs = [expressions.fill_schema("b(u1(x), u2(x))", b="add", u1=a, u2=b) for a in unary for b in unary]
    # add is commutative: 3 diagonal + 3 unordered pairs
    assert len({expressions.fingerprint(e) for e in exprs}) == 6


# ----------------------------------------------------------------------------- schemas and genes


def test_schemas_fill_and_are_recognised():
    assert expressions.fill_schema("u(x)", u1="relu") == "relu(x)"
    assert expressions.fill_schema("u1(u2(x))", u1="tanh", u2="softplus") == "tanh(softplus(x))"
    assert expressions.fill_schema("b(u1(x),u2(x))", b="max", u1="relu", u2="sin") == "max(relu(x), sin(x))"
    assert expressions.schema_of("max(relu(x), sin(x))") == (
        "b(u1(x), u2(x))",
        {"b": "max", "u1": "relu", "u2": "sin"},
    )
    assert expressions.schema_of("mul(x, sigmoid(x))") is None
    with pytest.raises(ValueError, match="unknown schema"):
        expressions.fill_schema("u(u(u(x)))", u1="relu")


def test_every_expression_of_the_schemas_round_trips_through_the_genes():
    schemas, unary, binary = expressions.SCHEMAS, expressions.UNARY, expressions.BINARY
    count = 0
    for u1, u2 in itertools.product(unary, unary):
        for expr in (f"{u1}(x)", f"{u1}({u2}(x))", *(f"{b}({u1}(x), {u2}(x))" for b in binary)):
            genes = expressions.encode_genes(expr, schemas, unary, binary)
            assert expressions.decode_genes(genes, schemas, unary, binary) == expr
            count += 1
    assert count == len(unary) ** 2 * (2 + len(binary))


def test_any_genes_decode_to_a_legal_expression():
    rng = np.random.default_rng(0)
    unary, binary = ("relu", "sin", "tanh"), ("add", "mul")
    for genes in rng.normal(0.5, 1.0, size=(200, 4)):
        expr = expressions.decode_genes(genes, expressions.SCHEMAS, unary, binary)
        tree = parse(expr)
        assert {c.op for c in tree.calls()} <= set(unary + binary)
    with pytest.raises(ValueError, match="fits none of the schemas"):
        expressions.encode_genes("mul(x, sigmoid(x))", expressions.SCHEMAS, unary, binary)
    with pytest.raises(ValueError, match="'gelu' is not among"):
        expressions.encode_genes("gelu(x)", expressions.SCHEMAS, unary, binary)
