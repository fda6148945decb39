"""`bioact search SPEC.toml` (alias `bioact evolve`): run the spec's engine, Optuna or EvoTorch."""

from __future__ import annotations

import argparse
import copy
import os
import pathlib
import subprocess
import sys
import time

from keras_bioact.cli._report import export, score_on_test, summary

DESCRIPTION = """Run (or continue) the search described by SPEC.toml (see docs/specs.md). A spec with
an [optuna] table is an Optuna study: re-running the same command continues it until it has
--n-trials finished trials; trials of killed workers are failed and their parameters re-queued;
more machines join by starting the same command with the same --storage URL (an RDB server such
as PostgreSQL). A spec with an [evolution] table is an EvoTorch evolution strategy over the
model's activation parameters: every generation writes a checkpoint, history.csv and TensorBoard
logs to [output] dir; --resume continues an interrupted run. `bioact evolve` is the same command."""

WORKER_STORAGE = "KERAS_BIOACT_WORKER_STORAGE"  # the storage URL, coordinator -> workers
OPTUNA_FLAGS = ("storage", "study_name", "n_trials", "workers", "timeout", "export", "create_only")
EVOLUTION_FLAGS = {
    "algorithm": "evolution.algorithm",
    "generations": "evolution.generations",
    "popsize": "evolution.popsize",
    "seed": "evolution.seed",
    "num_actors": "evolution.num_actors",
    "mode": "evolution.mode",
    "out": "output.dir",
}


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
    o.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    o.add_argument("--code-path", action="append", default=[], help=argparse.SUPPRESS)
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


def _error(message):
    print(f"bioact: error: {message}", file=sys.stderr)
    return 2


def _given(args, flag):
    value = getattr(args, flag, None)
    return value not in (None, False)


def _resolve(args):
    from keras_bioact.search.spec import SpecError, load_spec
    from keras_bioact.search.templates import allow_code

    for directory in args.code_path:  # a worker: where the coordinator found the --allow-code modules
        if directory not in sys.path:
            sys.path.append(directory)  # after the installed packages, which stay first
    for module in args.allow_code:
        try:
            allow_code(module)
        except ValueError as e:
            raise SpecError("command line", "--allow-code", str(e)) from None
    spec = load_spec(args.spec)
    other = EVOLUTION_FLAGS if spec.engine == "optuna" else OPTUNA_FLAGS
    extra = ("resume", "overwrite") if spec.engine == "optuna" else ()
    for flag in [*other, *extra]:
        if _given(args, flag):
            name = "--" + flag.replace("_", "-")
            raise SpecError(args.spec, name, f"does not apply to an {spec.engine} spec")
    if spec.engine == "evolution":
        for flag, key in EVOLUTION_FLAGS.items():
            if _given(args, flag):
                spec.override(key, getattr(args, flag))
        if args.resume and args.overwrite:
            raise SpecError("command line", "--overwrite", "excludes --resume")
        return spec
    if args.study_name:
        spec.study_name = args.study_name
    if args.storage:
        spec.storage = args.storage
    if args.worker_index is not None:  # the coordinator passes the URL in the environment, not argv
        spec.storage = os.environ.pop(WORKER_STORAGE, None) or spec.storage
    for flag, attr in (("n_trials", "n_trials"), ("workers", "workers")):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise SpecError(args.spec, f"--{flag.replace('_', '-')}", f"must be >= 1, got {value}")
            setattr(spec, attr, value)
    if args.timeout is not None:
        if not args.timeout > 0:
            raise SpecError(args.spec, "--timeout", f"must be > 0, got {args.timeout}")
        spec.timeout = args.timeout
    return spec


def _open_study(spec, worker_index=0, key="optuna.storage"):
    from keras_bioact.search.spec import SpecError
    from keras_bioact.search.storage import StorageError, display_url, redact
    from keras_bioact.search.study import create_study, load_study

    try:
        if worker_index:
            return load_study(
                spec.study_name, spec.storage, spec.make_sampler(worker_index), spec.make_pruner()
            )
        study = create_study(
            spec.study_name, spec.storage, spec.directions, spec.make_sampler(), spec.make_pruner()
        )
        study.set_user_attr("objective_names", spec.objective_names)
        # the validated spec, as data, so that `bioact show` can score the best trial on test
        study.set_user_attr("spec", stored_spec(spec))
        return study
    except SpecError:
        raise
    except StorageError as e:  # a refused file or URL; the message names it, password hidden
        raise SpecError(spec.source, key, str(e)) from None
    except Exception as e:  # any other storage failure (a server that went away, say)
        shown, reason = display_url(spec.storage), redact(e, spec.storage)
        raise SpecError(
            spec.source, key, f"cannot open storage {shown!r}: {type(e).__name__}: {reason}"
        ) from None


def stored_spec(spec):
    """The `spec` user attribute of a study: the spec as data, its storage URL without password."""
    from keras_bioact.search.storage import display_url

    raw = copy.deepcopy(spec.raw)
    if isinstance(raw.get("optuna", {}).get("storage"), str):
        raw["optuna"]["storage"] = display_url(raw["optuna"]["storage"])
    return {"source": spec.source, "raw": raw}


def cmd_search(args):
    from keras_bioact.cli import backend_line
    from keras_bioact.search.evolution.checkpoint import CheckpointError
    from keras_bioact.search.spec import SpecError
    from keras_bioact.search.storage import display_url

    try:
        spec = _resolve(args)
        if args.worker_index is None:
            print(backend_line())
            spec.preflight(export=args.export)  # reads the data and model, tries the output folder
        if spec.engine == "evolution":
            from keras_bioact.search.evolution.runner import run_evolution

            run_evolution(spec, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
            return 0
        key = "--storage" if args.storage else "optuna.storage"
        study = _open_study(spec, args.worker_index or 0, key)
    except (SpecError, CheckpointError) as e:
        return _error(str(e))
    if args.worker_index is not None:
        return _worker(spec, study)
    if args.create_only:
        print(f"study {spec.study_name!r} is ready in {display_url(spec.storage)}")
        return 0
    return _coordinate(spec, study, args)


def _worker(spec, study):
    from keras_bioact.search.study import run

    objective = spec.build_objective()
    run(study, objective, n_trials=spec.n_trials, timeout=spec.timeout)
    return 0


def _coordinate(spec, study, args):
    from tqdm.auto import tqdm

    from keras_bioact.search.storage import display_url
    from keras_bioact.search.study import count_finished, recover_dead_trials, run

    recovered = recover_dead_trials(study)
    if recovered:
        print(f"marked {len(recovered)} trial(s) of dead workers as FAIL and re-queued them: {recovered}")
    done = count_finished(study)
    print(
        f"study {spec.study_name!r} in {display_url(spec.storage)}: {done}/{spec.n_trials} trials finished; "
        f"{spec.workers} worker(s)"
    )
    if done < spec.n_trials:
        bar = tqdm(
            total=spec.n_trials,
            initial=done,
            desc=spec.study_name,
            unit="trial",
            disable=args.quiet,
            dynamic_ncols=True,
        )
        try:
            if spec.workers == 1:

                def on_trial(st, trial):
                    bar.n = count_finished(st)
                    bar.set_postfix_str(_postfix(st, trial))
                    bar.refresh()

                run(
                    study,
                    spec.build_objective(),
                    n_trials=spec.n_trials,
                    timeout=spec.timeout,
                    on_trial=on_trial,
                )
            else:
                rc = _run_workers(spec, args, study, bar)
                if rc:
                    return rc
        finally:
            bar.n = count_finished(study)
            bar.close()
    else:
        print(
            f"nothing to do: the study already has {done} finished trials; to add trials, re-run "
            f"with a larger --n-trials (e.g. --n-trials {spec.n_trials + 16})"
        )
    score_on_test(spec, study)
    summary(study, args.top, spec)
    directory = args.export or spec.output.get("dir")
    if directory:
        export(study, directory)
    return 0


def _postfix(study, trial):
    try:
        best = study.best_value if len(study.directions) == 1 else None
    except ValueError:
        best = None
    return f"last={trial.state.name.lower()}" + (f" best={best:.4f}" if best is not None else "")


def worker_command(spec, args):
    """`(argv, env)` of the worker processes (each adds `--worker-index I`).

    Workers import only installed code: Python's `-P` keeps the working directory (where a
    stray `optuna.py` may lie) off `sys.path`; the directories of `--allow-code` modules are
    appended after the installed packages (`--code-path`); empty `PYTHONPATH` entries (the
    working directory) are dropped. The storage URL, which may hold a
    password, goes in the environment (`WORKER_STORAGE`), readable by this user only, not on
    the command line that `ps` shows everyone."""
    cmd = [
        sys.executable,
        "-P",
        "-m",
        "keras_bioact.cli",
        "search",
        args.spec,
        "--study-name",
        spec.study_name,
        "--n-trials",
        str(spec.n_trials),
        "--quiet",
    ]
    if spec.timeout:
        cmd += ["--timeout", str(spec.timeout)]
    for module in args.allow_code:
        cmd += ["--allow-code", module]
    for directory in _code_roots(args.allow_code):
        cmd += ["--code-path", directory]
    env = dict(os.environ, **{WORKER_STORAGE: spec.storage})
    # an empty PYTHONPATH entry (PYTHONPATH=":/x", a common slip) means the working directory
    path = [p for p in env.pop("PYTHONPATH", "").split(os.pathsep) if p]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return cmd, env


def _code_roots(modules):
    """The directories from which the (imported) `modules` were imported."""
    roots = []
    for name in modules:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            file = pathlib.Path(os.path.abspath(file))
            roots.append(str(file.parents[name.count(".") + (file.stem == "__init__")]))
    return list(dict.fromkeys(roots))


def _run_workers(spec, args, study, bar):
    from keras_bioact.search.study import count_finished

    cmd, env = worker_command(spec, args)
    procs = [subprocess.Popen(cmd + ["--worker-index", str(i + 1)], env=env) for i in range(spec.workers)]
    deadline = None if spec.timeout is None else time.monotonic() + spec.timeout + 600
    try:
        while any(p.poll() is None for p in procs):
            bar.n = count_finished(study)
            bar.refresh()
            if deadline is not None and time.monotonic() > deadline:
                print("workers exceeded the timeout by 10 minutes; terminating them", file=sys.stderr)
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(
            "interrupted: stopping workers (finished trials are saved; re-run to continue)", file=sys.stderr
        )
        raise
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    bad = [p.returncode for p in procs if p.returncode not in (0, None)]
    if bad:
        return _error(
            f"{len(bad)} worker(s) failed (exit codes {bad}); finished trials are saved, re-run to continue"
        )
    return 0
