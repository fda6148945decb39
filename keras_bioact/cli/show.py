"""`bioact show STUDY --storage URL`: the best trials of a study, validation and test."""

from __future__ import annotations

import sys

from keras_bioact.cli._report import export, score_on_test, summary
from keras_bioact.cli.search import _error


def register(subparsers):
    s = subparsers.add_parser(
        "show",
        help="show the best trials of a study",
        description="Print the best trials of STUDY in STORAGE as a table.",
    )
    s.add_argument("study", help="study name")
    s.add_argument(
        "--storage",
        required=True,
        help="Optuna storage URL, e.g. sqlite:///quickstart.db (passwords: PGPASSWORD or ~/.pgpass)",
    )
    s.add_argument("--top", type=int, default=10, help="rows (default 10)")
    s.add_argument(
        "--export", metavar="DIR", help="also write trials.csv, trials.json, plots and HParams logs to DIR"
    )
    s.add_argument(
        "--no-test", action="store_true", help="do not retrain the best trial to score it on the test split"
    )
    s.add_argument(
        "--allow-code", action="append", default=[], metavar="MODULE", help="as for `bioact search`"
    )
    s.set_defaults(func=cmd_show)


def _stored_spec(study, args):
    """The spec the study was created with (stored as data), re-validated; None if absent."""
    from keras_bioact.search.spec import SpecError, parse_spec
    from keras_bioact.search.templates import allow_code

    stored = study.user_attrs.get("spec")
    if not isinstance(stored, dict) or not isinstance(stored.get("raw"), dict):
        return None
    try:
        for module in args.allow_code:
            allow_code(module)
        return parse_spec(stored["raw"], source=f"{stored.get('source', '<spec>')} (stored in the study)")
    except (SpecError, ValueError) as e:
        print(f"not scoring on the test split: {e}", file=sys.stderr)
        return None


def cmd_show(args):
    import optuna

    from keras_bioact.search.storage import StorageError, display_url, open_storage, redact
    from keras_bioact.search.study import load_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shown = display_url(args.storage)
    try:
        study = load_study(args.study, open_storage(args.storage, create=False))
    except StorageError as e:
        return _error(f"--storage: {e}")
    except KeyError:
        return _error(f"no study {args.study!r} in {shown}")
    except Exception as e:
        return _error(
            f"--storage: cannot open storage {shown!r}: {type(e).__name__}: {redact(e, args.storage)}"
        )
    spec = _stored_spec(study, args)
    if spec is not None and not args.no_test:
        score_on_test(spec, study)
    summary(study, args.top, spec)
    if args.export:
        export(study, args.export)
    return 0
