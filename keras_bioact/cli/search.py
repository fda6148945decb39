"""`bioact search SPEC.toml` (alias `bioact evolve`): `keras_bioact.search.run_spec` on the
command line."""

from __future__ import annotations

import sys

DESCRIPTION = """Run (or continue) the search described by SPEC.toml (see docs/specs.md). A spec with
an [optuna] table is an Optuna study: re-running the same command continues it until it has
--n-trials finished trials; trials of killed workers are failed and their parameters re-queued;
more machines join by starting the same command with the same --storage URL (an RDB server such
as PostgreSQL). A spec with an [evolution] table is an EvoTorch evolution strategy over the
model's activation parameters: every generation writes a checkpoint, history.csv and TensorBoard
logs to [output] dir; --resume continues an interrupted run. `bioact evolve` is the same command.
From Python: keras_bioact.search.run_spec."""

# flags that set [evolution] and [output] keys: run_spec(settings={key: value})
SETTINGS = {
    "algorithm": "evolution.algorithm",
    "generations": "evolution.generations",
    "popsize": "evolution.popsize",
    "seed": "evolution.seed",
    "num_actors": "evolution.num_actors",
    "mode": "evolution.mode",
    "out": "output.dir",
}
# run_spec's keywords as flags, to name the flag in an error
FLAGS = {
    keyword: "--" + keyword.replace("_", "-")
    for keyword in ("workers", "n_trials", "storage", "study_name", "timeout", "export", "create_only",
                    "resume", "overwrite", "allow_code")
}  # fmt: skip


def register(subparsers):
    p = subparsers.add_parser(
        "search",
        aliases=["evolve"],
        help="run the search (Optuna study or EvoTorch evolution) of a TOML specification",
        description=DESCRIPTION,
    )
    p.add_argument("spec", help="TOML specification (see search/*.toml and docs/specs.md)")
    p.add_argument("--quiet", "--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--allow-code",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "import MODULE (runs its code) so that the spec may name its model templates as "
            "'MODULE:function'; a spec alone never imports code (repeatable)"
        ),
    )
    o = p.add_argument_group("Optuna engine ([optuna] specs)")
    o.add_argument(
        "--storage",
        help=(
            "Optuna storage URL (default: the spec's, else sqlite:///<study>.db); keep passwords out "
            "of it (PostgreSQL: PGPASSWORD or ~/.pgpass)"
        ),
    )
    o.add_argument("--study-name", help="override optuna.study")
    o.add_argument("--n-trials", type=int, help="total finished trials wanted (over all workers and runs)")
    o.add_argument("--workers", type=int, help="worker processes on this machine (default: optuna.workers)")
    o.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    o.add_argument(
        "--export",
        metavar="DIR",
        help="write trials.csv, trials.json, plots (HTML/PNG) and TensorBoard HParams logs to DIR",
    )
    o.add_argument("--top", type=int, default=5, help="rows of the summary table (default 5)")
    o.add_argument(
        "--create-only",
        action="store_true",
        help="create the study in the storage and exit (do this once before starting other machines)",
    )
    e = p.add_argument_group("EvoTorch engine ([evolution] specs)")
    e.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output dir")
    e.add_argument(
        "--overwrite",
        action="store_true",
        help="start over although the output dir holds a checkpoint (default: refuse)",
    )
    e.add_argument("--out", help="output directory (overrides output.dir)")
    for flag in ("algorithm", "mode"):
        e.add_argument(f"--{flag}", help=f"overrides evolution.{flag}")
    for flag in ("generations", "popsize", "seed", "num_actors"):
        e.add_argument(f"--{flag.replace('_', '-')}", type=int, help=f"overrides evolution.{flag}")
    p.set_defaults(func=cmd_search)


def error(e):
    """Print a `BioactError`, naming the flag where a `SpecError` names a run_spec keyword or
    setting; exit code 2."""
    from keras_bioact.search.spec import SpecError

    if isinstance(e, SpecError) and e.source == "settings":
        e = SpecError("command line", e.key, e.reason)
    elif isinstance(e, SpecError) and e.key in FLAGS:
        e = SpecError(e.source, FLAGS[e.key], e.reason)
    print(f"bioact: error: {e}", file=sys.stderr)
    return 2


def cmd_search(args):
    from keras_bioact.cli import backend_line
    from keras_bioact.errors import BioactError
    from keras_bioact.search import run_spec
    from keras_bioact.search.optuna.workers import interrupt_once, restore_signals

    print(backend_line())
    previous = interrupt_once()  # SIGTERM ends a search as Ctrl-C does; a second signal waits
    try:
        result = run_spec(
            args.spec,
            workers=args.workers,
            n_trials=args.n_trials,
            storage=args.storage,
            study_name=args.study_name,
            timeout=args.timeout,
            export=args.export,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
            allow_code=args.allow_code,
            top=args.top,
            create_only=args.create_only,
            settings={
                key: getattr(args, flag) for flag, key in SETTINGS.items() if getattr(args, flag) is not None
            },
        )
    except BioactError as e:
        return error(e)
    except KeyboardInterrupt as e:  # an Optuna search says what it saved; an evolution:
        if str(e):
            raise
        raise KeyboardInterrupt(
            "interrupted: the finished generations are saved; run the same command with --resume to continue"
        ) from None
    finally:
        restore_signals(previous)
    if getattr(result, "test_error", None):
        print(f"bioact: error: {result.test_error}", file=sys.stderr)
        return 1
    return 0
