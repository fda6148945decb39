"""Composed activations: the expression grammar, the primitives table, schemas and fingerprints.

An expression composes unary and binary primitives of one input `x`, e.g.
`"mul(x, sigmoid(x))"`, `"tanh(softplus(x))"` or `"max(relu(x), sin(x))"`::

    expression := "x" | name "(" expression ")" | name "(" expression "," expression ")"
    name       := [a-z_][a-z0-9_]*           (a primitive of `PRIMITIVES`, with its arity)

Whitespace between tokens is ignored. Expressions are parsed by the hand-written tokenizer and
recursive-descent parser below: nothing is ever evaluated as Python. A bad expression raises
`ExpressionError` naming the offending token and its 1-based column (with the closest primitive
name for a misspelt one). Call nesting is limited to `MAX_DEPTH` levels, which (with the value
bound of `keras_bioact.reference.COMPOSED_VALUE_BOUND`) keeps every gradient finite in float32.

This module is plain Python (NumPy only for fingerprints): the layer
(`keras_bioact.layers.ComposedActivation`) and the `composed` family both use it.

The grammar and the primitive set follow the published descriptions of Ramachandran et al. 2017
("Searching for activation functions") and Bingham & Miikkulainen 2023 (AQuaSurF); they are
written from the papers' text only. No code or data of AQuaSurF (non-commercial licence, patent
application) was used or copied.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib

from keras_bioact.errors import BioactError

__all__ = [
    "BINARY",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "PRIMITIVES",
    "SCHEMAS",
    "UNARY",
    "ExpressionError",
    "Node",
    "Param",
    "Primitive",
    "decode_genes",
    "encode_genes",
    "fill_schema",
    "fingerprint",
    "parameter_names",
    "parse",
    "reference",
    "schema_of",
]

MAX_DEPTH = 4  # nesting levels of primitive calls
MAX_LENGTH = 1000  # characters of an expression


class ExpressionError(BioactError):
    """An expression the grammar refuses. `column` is 1-based (None when not about one place)."""

    def __init__(self, expression, message, column=None, hint=""):
        self.expression = expression
        self.column = column
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"expression {expression!r}: {message}{where}{hint}")


@dataclasses.dataclass(frozen=True)
class Param:
    """A learnable scalar of a primitive: initial value and legal range [low, high]."""

    name: str
    init: float
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Primitive:
    """One primitive: `arity` 1 or 2, its learnable scalars, its formula and bound (docs).
    `bounded`: its output is bounded by construction (no clip to the value bound needed)."""

    name: str
    arity: int
    formula: str
    params: tuple = ()
    bounded: bool = False
    note: str = ""


def _u(name, formula, params=(), bounded=False, note=""):
    return Primitive(name, 1, formula, tuple(params), bounded, note)


def _b(name, formula, params=(), note=""):
    return Primitive(name, 2, formula, tuple(params), False, note)


_UNARY = (
    _u("identity", "x"),
    _u("neg", "-x"),
    _u("abs", "|x|"),
    _u("relu", "max(x, 0)"),
    _u("leaky", "x (x >= 0), a x (x < 0)", [Param("a", 0.2, 0.0, 1.0)]),
    _u("elu", "x (x > 0), exp(x) - 1 (x <= 0)"),
    _u("selu", "1.0507 elu(x; 1.6733)"),
    _u("gelu", "x Phi(x) (exact, erf form)"),
    _u("silu", "x sigmoid(x)"),
    _u("swish", "x sigmoid(beta x)", [Param("beta", 1.0, 0.0, 10.0)]),
    _u("mish", "x tanh(softplus(x))"),
    _u("softplus", "log(1 + exp(x))"),
    _u("sigmoid", "1 / (1 + exp(-x))", bounded=True),
    _u("tanh", "tanh(x)", bounded=True),
    _u("erf", "erf(x)", bounded=True),
    _u("sin", "sin(x)", bounded=True),
    _u("cos", "cos(x)", bounded=True),
    _u("softsign", "x / (1 + |x|)", bounded=True),
    _u("square", "clip(x, -1000, 1000)^2", bounded=True, note="input clipped to [-1000, 1000]"),
    _u("exp", "exp(min(x, 10))", bounded=True, note="input clipped to at most 10"),
    _u("log1p_abs", "log(1 + |x|)"),
    _u(
        "gamma",
        "(1 - s) softplus(n x) / n + s sigmoid(n x)",
        [Param("n", 1.0, 0.01, 100.0), Param("s", 0.0, 0.0, 1.0)],
    ),
    _u("eru", "(r^2 x + 1)^(1/r) - 1/r (x >= 0), exp(r x) - 1/r (x < 0)", [Param("r", 2.0, 1.0, 4.0)]),
    _u("oru", "sign(x) ((r^2 |x| + 1)^(1/r) - 1)", [Param("r", 2.0, 1.0, 4.0)]),
    _u("scale", "a x", [Param("a", 1.0, -10.0, 10.0)]),
    _u("shift", "x + b", [Param("b", 0.0, -10.0, 10.0)]),
)
_BINARY = (
    _b("add", "u + v"),
    _b("sub", "u - v"),
    _b("mul", "u v"),
    _b("max", "max(u, v)"),
    _b("min", "min(u, v)"),
    _b("wsum", "w u + (1 - w) v", [Param("w", 0.5, 0.0, 1.0)]),
)
PRIMITIVES = {p.name: p for p in _UNARY + _BINARY}
UNARY = tuple(p.name for p in _UNARY)
BINARY = tuple(p.name for p in _BINARY)

# Schemas of the search: `u`, `u1`, `u2` stand for unary primitives, `b` for a binary one.
SCHEMAS = ("u(x)", "u1(u2(x))", "b(u1(x), u2(x))")
_SCHEMA_SLOTS = {"u(x)": ("u1",), "u1(u2(x))": ("u1", "u2"), "b(u1(x), u2(x))": ("b", "u1", "u2")}


# ------------------------------------------------------------------------------- the tree


@dataclasses.dataclass(frozen=True)
class Node:
    """A parsed expression: `op` is `"x"` (the input) or a primitive name; `args` its operands.
    `column` (1-based, where the token starts) is not part of equality."""

    op: str
    args: tuple = ()
    column: int = dataclasses.field(default=0, compare=False)

    def __str__(self):
        if self.op == "x":
            return "x"
        return f"{self.op}({', '.join(str(a) for a in self.args)})"

    @property
    def depth(self):
        """Nesting levels of primitive calls (`x`: 0)."""
        return 0 if self.op == "x" else 1 + max(a.depth for a in self.args)

    def calls(self):
        """The call nodes in pre-order (the order learnable scalars are numbered in)."""
        if self.op == "x":
            return []
        out = [self]
        for a in self.args:
            out += a.calls()
        return out

    def to_tuple(self):
        """Nested tuples `(op, *args)` with the leaf `"x"` (what `reference.composed` takes)."""
        return "x" if self.op == "x" else (self.op, *(a.to_tuple() for a in self.args))


def _tokens(text):
    """`[(kind, value, column)]` with kinds "name", "(", ")", ",", and a final ("end", "", col)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
        elif c in "(),":
            out.append((c, c, i + 1))
            i += 1
        elif c.isascii() and (c.isalpha() or c == "_"):
            j = i
            while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
                j += 1
            out.append(("name", text[i:j], i + 1))
            i = j
        else:
            raise ExpressionError(text, f"unexpected character {c!r}", i + 1)
    out.append(("end", "", n + 1))
    return out


def _describe(token):
    kind, value, _ = token
    return "the end of the expression" if kind == "end" else repr(value)


def parse(expression):
    """Parse `expression` (a string) into a `Node`; `ExpressionError` naming the bad token and
    its column otherwise. The string is never evaluated."""
    if not isinstance(expression, str):
        raise ExpressionError(expression, f"must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(expression[:40] + "...", f"is longer than {MAX_LENGTH} characters")
    tokens = _tokens(expression)
    pos = 0

    def expect(kind, after):
        nonlocal pos
        token = tokens[pos]
        if token[0] != kind:
            raise ExpressionError(expression, f"expected {kind!r} {after}, got {_describe(token)}", token[2])
        pos += 1

    def node(level):
        nonlocal pos
        kind, value, column = tokens[pos]
        if kind != "name":
            raise ExpressionError(
                expression, f"expected 'x' or a primitive, got {_describe(tokens[pos])}", column
            )
        pos += 1
        if value == "x":
            if tokens[pos][0] == "(":
                raise ExpressionError(expression, "'x' is the input, not a primitive", column)
            return Node("x", (), column)
        prim = PRIMITIVES.get(value)
        if prim is None:
            close = difflib.get_close_matches(value.lower(), list(PRIMITIVES) + ["x"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; primitives: {', '.join(PRIMITIVES)}"
            raise ExpressionError(expression, f"unknown primitive {value!r}", column, hint)
        if level >= MAX_DEPTH:
            raise ExpressionError(
                expression, f"calls nested deeper than {MAX_DEPTH} levels at {value!r}", column
            )
        expect("(", f"after {value!r}")
        args = [node(level + 1)]
        while tokens[pos][0] == ",":
            pos += 1
            args.append(node(level + 1))
        if len(args) != prim.arity:
            s = "" if prim.arity == 1 else "s"
            raise ExpressionError(
                expression, f"{value!r} takes {prim.arity} argument{s}, got {len(args)}", column
            )
        expect(")", f"to close {value!r} (opened at column {column})")
        return Node(value, tuple(args), column)

    if tokens[0][0] == "end":
        raise ExpressionError(expression, "is empty")
    tree = node(0)
    if tokens[pos][0] != "end":
        raise ExpressionError(
            expression, f"unexpected {_describe(tokens[pos])} after the expression", tokens[pos][2]
        )
    return tree


def parameter_names(tree):
    """`[(weight name, primitive, Param)]` of the learnable scalars of `tree`, in pre-order:
    the scalar `p` of the `i`-th call node (from 0) is named `f"{op}{i}_{p}"` (`gamma0_n`)."""
    if isinstance(tree, str):
        tree = parse(tree)
    out = []
    for i, call in enumerate(tree.calls()):
        prim = PRIMITIVES[call.op]
        out += [(f"{call.op}{i}_{p.name}", prim, p) for p in prim.params]
    return out


def reference(tree, x, params=None):
    """The float64 NumPy reference of `tree` (a `Node` or a string) on `x`; `params` maps the
    weight names of `parameter_names` to arrays broadcasting against `x` (default: initial values)."""
    import numpy as np

    from keras_bioact import reference as ref

    if isinstance(tree, str):
        tree = parse(tree)
    values = {name: p.init for name, _, p in parameter_names(tree)}
    values.update(params or {})
    return ref.composed(tree.to_tuple(), np.asarray(x, dtype="float64"), values)


# ------------------------------------------------------------------------------- fingerprint

PROBE = tuple(-5.0 + 10.0 * i / 255 for i in range(256))  # 256 fixed points in [-5, 5]
PROBE_DECIMALS = 6


def fingerprint(expression):
    """The functional identity of an expression: a hex digest of its outputs on `PROBE` (at the
    initial values of its learnable scalars, float64, rounded to `PROBE_DECIMALS` decimals) and of
    its learnable scalars' names (sorted, without node numbers). Equal fingerprints: the same
    function at initialisation with the same trainable scalars, e.g. `"mul(x, sigmoid(x))"` and
    `"silu(x)"`, or `"add(sin(x), relu(x))"` and `"add(relu(x), sin(x))"`."""
    import numpy as np

    tree = parse(expression) if isinstance(expression, str) else expression
    y = reference(tree, np.asarray(PROBE))
    y = np.round(y, PROBE_DECIMALS) + 0.0  # + 0.0: -0.0 and 0.0 are one value
    scalars = sorted(f"{prim.name}.{p.name}" for _, prim, p in parameter_names(tree))
    digest = hashlib.sha256(np.ascontiguousarray(y, dtype="<f8").tobytes())
    digest.update(("|".join(scalars)).encode())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------- schemas


def _schema_key(schema):
    return "".join(str(schema).split())


_SCHEMA_BY_KEY = {_schema_key(s): s for s in SCHEMAS}


def canonical_schema(schema):
    """The spelling of `schema` in `SCHEMAS` (whitespace-insensitive), or None."""
    return _SCHEMA_BY_KEY.get(_schema_key(schema)) if isinstance(schema, str) else None


def schema_slots(schema):
    """The slots of a schema: `("u1",)`, `("u1", "u2")` or `("b", "u1", "u2")`."""
    return _SCHEMA_SLOTS[canonical_schema(schema)]


def fill_schema(schema, b=None, u1=None, u2=None):
    """The expression string of `schema` with its slots filled, e.g.
    `fill_schema("b(u1(x), u2(x))", b="mul", u1="identity", u2="sigmoid")`."""
    schema = canonical_schema(schema)
    if schema == "u(x)":
        return f"{u1}(x)"
    if schema == "u1(u2(x))":
        return f"{u1}({u2}(x))"
    if schema == "b(u1(x), u2(x))":
        return f"{b}({u1}(x), {u2}(x))"
    raise ValueError(f"fill_schema: unknown schema {schema!r}; legal: {', '.join(SCHEMAS)}")


def schema_of(expression):
    """`(schema, {"b": .., "u1": .., "u2": ..})` of an expression that fits one of `SCHEMAS`, or None."""
    tree = parse(expression) if isinstance(expression, str) else expression

    def unary_of_x(n):
        return n.op in UNARY and n.args[0].op == "x"

    if tree.op in UNARY and tree.args[0].op == "x":
        return "u(x)", {"u1": tree.op}
    if tree.op in UNARY and unary_of_x(tree.args[0]):
        return "u1(u2(x))", {"u1": tree.op, "u2": tree.args[0].op}
    if tree.op in BINARY and all(unary_of_x(a) for a in tree.args):
        return "b(u1(x), u2(x))", {"b": tree.op, "u1": tree.args[0].op, "u2": tree.args[1].op}
    return None


# ------------------------------------------------------------------------------- genes


def _choice(gene, options):
    """Option of a gene in [0, 1): bin `floor(gene * len(options))`, clipped to the options."""
    i = int(min(max(float(gene), 0.0), 1.0) * len(options))
    return options[min(i, len(options) - 1)]


def decode_genes(genes, schemas, unary, binary):
    """The expression encoded by 4 real genes in [0, 1): schema, binary, first and second unary
    primitive, each the bin `floor(gene * n)` of its list (values outside [0, 1) are clipped).
    Genes of slots the schema does not use are ignored."""
    genes = [float(g) for g in genes]
    if len(genes) != 4:
        raise ValueError(f"decode_genes: expected 4 genes (schema, b, u1, u2), got {len(genes)}")
    schema = _choice(genes[0], tuple(schemas))
    return fill_schema(
        schema,
        b=_choice(genes[1], tuple(binary)),
        u1=_choice(genes[2], tuple(unary)),
        u2=_choice(genes[3], tuple(unary)),
    )


def encode_genes(expression, schemas, unary, binary):
    """Genes (bin centres) that `decode_genes` turns back into `expression`; unused slots get 0.5.
    `ValueError` if the expression fits none of `schemas` or uses a primitive not in the lists."""
    found = schema_of(expression)
    if found is None or found[0] not in schemas:
        raise ValueError(f"encode_genes: {expression!r} fits none of the schemas {list(schemas)}")
    schema, slots = found

    def centre(value, options):
        options = tuple(options)
        if value is None:
            return 0.5
        if value not in options:
            raise ValueError(f"encode_genes: {value!r} is not among {list(options)}")
        return (options.index(value) + 0.5) / len(options)

    return [
        centre(schema, schemas),
        centre(slots.get("b"), binary),
        centre(slots.get("u1"), unary),
        centre(slots.get("u2"), unary),
    ]
