"""`bioact show STUDY --storage URL`: the best trials of a study, validation and test."""

from __future__ import annotations

import sys

from keras_bioact.cli.search import error


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
        "--no-test",
        action="store_true",
        help="print the stored verdict only: never retrain the arms to score them on the test split",
    )
    s.add_argument(
        "--recompute-verdict",
        action="store_true",
        help="retrain the verdict's arms although the study holds a verdict for them",
    )
    s.add_argument(
        "--allow-code", action="append", default=[], metavar="MODULE", help="as for `bioact search`"
    )
    s.set_defaults(func=cmd_show)


def cmd_show(args):
    from keras_bioact.cli import backend_line
    from keras_bioact.errors import BioactError
    from keras_bioact.search.optuna import StorageError, show_study

    print(backend_line())  # the test split may be scored (Keras), as by `bioact search`

    try:
        result = show_study(
            args.study,
            args.storage,
            top=args.top,
            export=args.export,
            test=not args.no_test,
            recompute=args.recompute_verdict,
            allow_code=args.allow_code,
        )
    except StorageError as e:
        print(f"bioact: error: --storage: {e}", file=sys.stderr)
        return 2
    except BioactError as e:
        return error(e)
    if result.test_error:
        print(f"bioact: error: {result.test_error}", file=sys.stderr)
        return 1
    return 0
