"""Layering of keras_bioact: no import cycle between its packages, and the explicit rules.

Every `import` / `from ... import` statement of every module is read (with `ast`, so imports
inside functions count too, and relative imports are resolved). A module belongs to the
package named by its first component under `keras_bioact` (`keras_bioact.layers.bru` to
`layers`; a top-level module such as `keras_bioact.ops` is its own package `ops`; the root
`keras_bioact/__init__.py`, whose lazy attributes are no import statements, is
`keras_bioact`). The package graph must have no cycle, and no package may import one that
`FORBIDDEN` keeps it from.
"""

import ast
import collections
import itertools
import pathlib

import pytest

pytestmark = pytest.mark.single_backend

ROOT = pathlib.Path(__file__).resolve().parents[1] / "keras_bioact"

# (importer, imported) pairs that must not occur. A dotted name is a sub-package (a directory,
# e.g. `search.optuna`); a rule between sub-packages applies once both directories exist.
FORBIDDEN = (
    ("layers", "families"),
    ("layers", "conversion"),
    ("families", "conversion"),
    ("search.optuna", "search.evolution"),
    ("search.evolution", "search.optuna"),
)


def _modules(root):
    """`{dotted module name: (path, is_package)}` for every .py file under `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _imports(root, private_names=None):
    """`[(importer, imported, "file:line")]`: every import of a module of the tree by another."""
    modules = _modules(root)
    top = root.name
    private_names = [] if private_names is None else private_names

    def known(name):  # the module itself, or the package it is an attribute of
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else None

    out = []
    for name, (path, is_package) in modules.items():
        package = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
                names = [()] * len(targets)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package[: len(package) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                # `from pkg import mod` imports the submodule `pkg.mod` when there is one.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
                names = [() if f"{base}.{a.name}" in modules else (a.name,) for a in node.names]
            else:
                continue
            for target, imported_names in zip(targets, names, strict=True):
                if target == top or target.startswith(top + "."):
                    where = f"{path.relative_to(root.parent)}:{node.lineno}"
                    out.append((name, known(target), where))
                    private_names.append((name, target, imported_names, where))
    return out


def private_imports(root):
    """`["file:line -> name", ...]`: private names (a `_module` or an `_attribute`) that a
    module imports from another package. Helpers that other packages use have public names;
    a top-level private module (`keras_bioact._io`) is shared plumbing and may be imported."""
    found = []
    _imports(root, private_names := [])
    for importer, target, names, where in private_names:
        if _package(importer) == _package(target):
            continue
        inner = target.split(".")[2:]  # components below the package
        private = [part for part in inner if part.startswith("_") and part != "__init__"]
        private += [n for n in names if n.startswith("_") and not n.startswith("__")]
        line = f"{where} -> {target}: {', '.join(private)}"
        if private and line not in found:
            found.append(line)
    return found


def _package(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _member(module, unit):
    """Whether `module` (dotted, under the top package) belongs to `unit` (`layers`, `search.optuna`)."""
    prefix = module.split(".", 1)[0] + "." + unit
    return module == prefix or module.startswith(prefix + ".")


def package_graph(root):
    """`{(package, imported package): first "file:line -> module" that imports it}`."""
    edges = {}
    for importer, imported, where in _imports(root):
        a, b = _package(importer), _package(imported)
        if a != b:
            edges.setdefault((a, b), f"{where} -> {imported}")
    return edges


def find_cycle(edges):
    """One cycle of the directed graph `edges` as a list of nodes `[a, b, ..., a]`, or None."""
    graph = collections.defaultdict(list)
    for a, b in sorted(edges):
        graph[a].append(b)
    state = {}  # node -> 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def describe_cycle(cycle, edges):
    return "import cycle between packages: " + " -> ".join(cycle) + "".join(
        f"\n  {a} -> {b}: {edges[(a, b)]}" for a, b in itertools.pairwise(cycle)
    )


def _exists(root, unit):
    path = root.joinpath(*unit.split("."))
    return path.is_dir() if "." in unit else path.is_dir() or path.with_suffix(".py").is_file()


def rule_violations(root, rules=FORBIDDEN):
    """`["importer must not import imported: file:line -> module", ...]` for `rules` whose
    packages both exist under `root`."""
    out = []
    imports = _imports(root)
    for importer_unit, imported_unit in rules:
        if not (_exists(root, importer_unit) and _exists(root, imported_unit)):
            continue
        for importer, imported, where in imports:
            if _member(importer, importer_unit) and _member(imported, imported_unit):
                out.append(f"{importer_unit} must not import {imported_unit}: {where} -> {imported}")
    return out


def module_cycle(root, package):
    """One import cycle between the modules of `package` (e.g. "search"), or None."""
    edges = {
        (a, b): where
        for a, b, where in _imports(root)
        if a != b and _member(a, package) and _member(b, package)
    }
    return find_cycle(edges)


# ---------------------------------------------------------------------------- the real tree


def test_no_import_cycle_between_packages():
    edges = package_graph(ROOT)
    assert ("search", "families") in edges  # the reader sees the package's imports at all
    cycle = find_cycle(edges)
    assert cycle is None, describe_cycle(cycle, edges)


def test_layering_rules():
    for unit in ("layers", "families", "conversion"):
        assert _exists(ROOT, unit), f"rule package {unit!r} is gone: update FORBIDDEN"
    violations = rule_violations(ROOT)
    assert not violations, "\n".join(violations)


def test_no_package_imports_another_packages_private_names():
    found = private_imports(ROOT)
    assert not found, "private names imported across packages:\n" + "\n".join(found)


# ---------------------------------------------------------------------------- the checker itself


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "keras_bioact"
    _write(
        root,
        {
            "__init__.py": "",
            "ops.py": "import numpy\n",
            "layers/__init__.py": "from keras_bioact.layers.dense import Dense\n",
            "layers/dense.py": "from keras_bioact import ops\n",
            "families/__init__.py": "from . import gamma\n",
            "families/gamma.py": "def layer():\n    from ..layers import Dense\n",
            "search/__init__.py": "",
            "search/optuna/__init__.py": "from keras_bioact.families import gamma\n",
            "search/evolution/__init__.py": "",
            "search/evolution/run.py": "",
        },
    )
    return root


def test_checker_resolves_nested_and_relative_imports(tree):
    assert package_graph(tree) == {
        ("layers", "ops"): "keras_bioact/layers/dense.py:1 -> keras_bioact.ops",
        ("families", "layers"): "keras_bioact/families/gamma.py:2 -> keras_bioact.layers",
        ("search", "families"): "keras_bioact/search/optuna/__init__.py:1 -> keras_bioact.families.gamma",
    }
    assert find_cycle(package_graph(tree)) is None and rule_violations(tree) == []


def test_checker_finds_a_cycle_hidden_in_a_function(tree):
    _write(tree, {"layers/dense.py": "def build():\n    from keras_bioact.families.gamma import layer\n"})
    edges = package_graph(tree)
    cycle = find_cycle(edges)
    assert cycle in (["families", "layers", "families"], ["layers", "families", "layers"])
    message = describe_cycle(cycle, edges)
    assert "keras_bioact/layers/dense.py:2 -> keras_bioact.families.gamma" in message
    assert rule_violations(tree) == [
        "layers must not import families: keras_bioact/layers/dense.py:2 -> keras_bioact.families.gamma"
    ]


def test_checker_applies_subpackage_rules_once_they_exist(tree):
    _write(tree, {"search/evolution/run.py": "from ..optuna import study\n"})
    _write(tree, {"search/optuna/study.py": ""})
    assert rule_violations(tree) == [
        "search.evolution must not import search.optuna: "
        "keras_bioact/search/evolution/run.py:1 -> keras_bioact.search.optuna.study"
    ]
    assert find_cycle(package_graph(tree)) is None  # inside one top-level package: no package cycle
