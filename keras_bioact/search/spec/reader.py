"""Reading a specification: `load_spec` (a TOML file) and `parse_spec` (a dict), with the
translation of earlier spec formats (`SpecDeprecationWarning`). The checks beyond one key's type
and range are `checks`; every key is declared in `schema`."""

from __future__ import annotations

import copy
import difflib
import pathlib
import warnings

from keras_bioact.search import space as space_lib
from keras_bioact.search.spec import checks, schema
from keras_bioact.search.spec.model import Budget, SearchSpec, SpecError

__all__ = ["SpecDeprecationWarning", "load_spec", "parse_spec"]

_TOP = ("data", "model", "budget", "output", "space", "optuna", "evolution", "mixture")


class SpecDeprecationWarning(FutureWarning):
    """A key of an earlier spec format, translated to its new place."""


def load_spec(path):
    """Read and validate a TOML specification file; raises `SpecError` (naming the file and
    the key) on any problem."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from keras_bioact.datasets import regular_file

    path = pathlib.Path(path)
    try:
        regular_file(path, schema.MAX_SPEC_BYTES)
        text = path.read_bytes()
    except OSError as e:
        raise SpecError(str(path), "<file>", f"cannot read the specification ({e.strerror})") from None
    except ValueError as e:
        raise SpecError(str(path), "<file>", f"not read: {e}") from None
    try:
        raw = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(str(path), "<toml>", f"not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        limit = schema.MAX_DEPTH
        raise SpecError(str(path), "<toml>", f"nested too deeply (at most {limit} levels)") from None
    return parse_spec(raw, source=str(path))


def parse_spec(raw, source="<spec>"):
    """Validate a specification given as a dict (parsed TOML); returns a `SearchSpec`."""
    if not isinstance(raw, dict):
        raise SpecError(source, "<top>", "a specification must be a TOML table")
    bad = schema.bad_value(raw, "")
    if bad:
        raise SpecError(source, *bad)
    written = {}  # migrated key -> the key as the user wrote it
    raw = _migrate(copy.deepcopy(raw), source, written)
    stored = copy.deepcopy(raw)
    for k in raw:
        if k not in _TOP:
            raise SpecError(source, k, f"unknown table{_suggest(k, _TOP)}; legal tables: {', '.join(_TOP)}")
        if not isinstance(raw[k], dict):
            raise SpecError(source, k, f"must be a table, got {type(raw[k]).__name__}")
    engines = [e for e in schema.ENGINES if e in raw]
    if len(engines) != 1:
        raise SpecError(
            source,
            "<top>",
            "a spec needs exactly one engine table: [optuna] (an Optuna study), [evolution] "
            "(an EvoTorch evolution) or [mixture] (the mixture cell per layer), got "
            f"{engines or 'none'}; see docs/specs.md",
        )
    engine = engines[0]
    tables = {}
    for table in ("data", "budget", "output", engine):
        tables[table] = _check_table(raw.get(table, {}), table, source, written)
    if engine == "optuna":
        for sub in ("sampler", "pruner"):
            if sub in tables["optuna"]:
                tables[f"optuna.{sub}"] = _check_table(
                    tables["optuna"][sub], f"optuna.{sub}", source, written
                )
    spec = SearchSpec(engine=engine, source=str(source), raw=stored)
    checks.data(spec, tables["data"], source)
    checks.model(spec, dict(raw.get("model", {})), source)
    spec.budget = Budget(**tables["budget"])
    if spec.budget.verdict_seeds == 1:
        raise SpecError(
            source,
            "budget.verdict_seeds",
            "must be 0 (no verdict) or an integer in [2, 1000]: one seed per arm gives no interval, got 1",
        )
    spec.output = dict(tables["output"])
    if engine == "optuna":
        _check_budget(spec, source)
        checks.optuna(spec, tables, source)
        space = dict(raw.get("space", {})) if isinstance(raw.get("space", {}), dict) else raw["space"]
        warm = {
            k: space.pop(k)
            for k in ("baselines", "enqueue", "prescreen")
            if isinstance(space, dict) and k in space
        }
        try:
            spec.space = space_lib.SearchSpace.from_dict(space)
        except space_lib.SpaceError as e:
            raise SpecError(source, e.key, str(e).split(": ", 1)[1]) from None
        checks.baselines(spec, warm.get("baselines"), source)
        checks.enqueue(spec, warm.get("enqueue", []), source)
        checks.prescreen(spec, warm.get("prescreen"), source)
        checks.optuna_model(spec, source)
    elif engine == "mixture":
        _check_budget(spec, source)
        if "space" in raw:
            raise SpecError(
                source, "space", "is the Optuna search space; a mixture spec uses `mixture.candidates`"
            )
        checks.mixture(spec, tables["mixture"], source)
        spec.output.setdefault("dir", f"runs/{checks.stem(source, 'mixture')}")
    elif tables["evolution"].get("target") == checks.EXPRESSION_TARGET:
        checks.expression_evolution(spec, tables["evolution"], raw.get("space", {}), source)
        spec.output.setdefault("dir", f"runs/{checks.stem(source, 'evolve')}")
        spec.output.setdefault("tensorboard", True)
    else:
        if "space" in raw:
            raise SpecError(
                source,
                "space",
                "is the Optuna search space; evolution evolves `evolution.target` (an expression "
                'evolution, `target = "expression"`, reads [space.composed])',
            )
        for key, given in (
            ("budget.repeats", spec.budget.repeats != 1),
            ("data.folds", "folds" in spec.data),
        ):
            if given:
                raise SpecError(
                    source, key, "applies to optuna trials only (evolution trains one start network)"
                )
        checks.evolution(spec, tables["evolution"], source)
        spec.output.setdefault("dir", f"runs/{checks.stem(source, 'evolve')}")
        spec.output.setdefault("tensorboard", True)
    return spec


def _check_budget(spec, source):
    if spec.budget.epochs < 1:
        what = "optuna trials" if spec.engine == "optuna" else "retraining the discretized mixture"
        raise SpecError(source, "budget.epochs", f"must be >= 1 for {what}, got {spec.budget.epochs}")
    if spec.budget.repeats > 1 and "folds" in spec.data:
        raise SpecError(
            source,
            "budget.repeats",
            "give budget.repeats (k seeds on the validation split) or data.folds (k-fold "
            "cross-validation on the training split), not both",
        )


def _suggest(key, legal):
    """`"; did you mean 'x'?"` for the legal name closest to `key`, or `""`."""
    close = difflib.get_close_matches(str(key), list(legal), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_table(table, name, source, written=None):
    """Check `table`'s keys and values against the schema; returns a copy. An unknown key is
    named as the user wrote it (`written`: migrated key -> key of an earlier format)."""
    if not isinstance(table, dict):
        raise SpecError(source, name, f"must be a table, got {type(table).__name__}")
    keys = schema.TABLES[name]
    for k, v in table.items():
        if k not in keys:
            key = (written or {}).get(f"{name}.{k}", f"{name}.{k}")
            raise SpecError(source, key, f"unknown key{_suggest(k, keys)}; legal keys: {', '.join(keys)}")
        reason = schema.check_value(f"{name}.{k}", keys[k], v)
        if reason:
            raise SpecError(source, f"{name}.{k}", reason)
    return dict(table)


def _deprecated(source, old, new):
    warnings.warn(
        f"{source}: {old} is deprecated; it is now {new} (see docs/specs.md)",
        SpecDeprecationWarning,
        stacklevel=4,
    )


def _migrate(raw, source, written):
    """Translate keys of earlier spec formats (with a deprecation warning), or fail naming the
    new key where no mechanical translation exists; `written` gets `{new key: old key}`."""
    moves = {"study": "optuna", "objective": "optuna", "sampler": "optuna.sampler", "pruner": "optuna.pruner"}
    old_tables = [t for t in moves if t in raw]
    if old_tables and "optuna" in raw:
        raise SpecError(
            source, old_tables[0], f"[{old_tables[0]}] is the earlier form of [optuna]; use one of them"
        )
    if old_tables:
        optuna = {}
        for t in old_tables:
            table = raw.pop(t)
            if not isinstance(table, dict):
                raise SpecError(source, t, f"must be a table, got {type(table).__name__}")
            if t in ("sampler", "pruner"):
                optuna[t] = table
                written.update({f"optuna.{t}.{k}": f"{t}.{k}" for k in table})
                _deprecated(source, f"[{t}]", f"[optuna.{t}]")
                continue
            for k, v in table.items():
                new = "study" if (t, k) == ("study", "name") else k
                optuna[new] = v
                written[f"optuna.{new}"] = f"{t}.{k}"
            names = ", ".join(f"{t}.{k}" for k in table)
            _deprecated(source, f"[{t}] ({names})", "[optuna] (study.name is optuna.study)")
        raw["optuna"] = optuna
    data, model = raw.get("data"), raw.get("model")
    if isinstance(data, dict) and "limit" in data:
        _deprecated(source, "data.limit", "data.max_train")
        limit = data.pop("limit")
        if limit:
            data.setdefault("max_train", limit)
    if isinstance(model, dict):
        for old, new in schema.LEGACY.items():
            table, _, key = old.partition(".")
            if table != "model" or key not in model:
                continue
            if new is None:
                raise SpecError(
                    source, old, f"is no longer a key; the activation is set by {schema.LEGACY_HINT}"
                )
            new_table, new_key = new.split(".")
            budget = raw.setdefault(new_table, {})
            if isinstance(budget, dict) and new_key in budget:
                raise SpecError(source, old, f"is the earlier name of {new}; give only {new}")
            _deprecated(source, old, new)
            budget[new_key] = model.pop(key)
    return raw
