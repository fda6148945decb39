"""`bioact search SPEC.toml` and `bioact show STUDY --storage URL`."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def register(subparsers):
    p = subparsers.add_parser(
        "search",
        help="run an Optuna activation search from a TOML specification",
        description=(
            "Run (or continue) the Optuna study described by SPEC.toml. Re-running the same command "
            "continues the same study until it has --n-trials finished trials; trials of killed "
            "workers are failed and their parameters re-queued. More machines join a run by "
            "starting the same command with the same --storage URL (an RDB server such as PostgreSQL)."
        ),
    )
    p.add_argument("spec", help="TOML specification (see search/quickstart.toml)")
    p.add_argument("--storage", help="Optuna storage URL (default: the spec's, else sqlite:///<study>.db)")
    p.add_argument("--study-name", help="override the spec's study name")
    p.add_argument("--n-trials", type=int, help="total finished trials wanted (over all workers and runs)")
    p.add_argument(
        "--workers", type=int, help="worker processes on this machine (default: the spec's, else 1)"
    )
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument(
        "--export",
        metavar="DIR",
        help="write trials.csv, trials.json, plots (HTML/PNG) and TensorBoard HParams logs to DIR",
    )
    p.add_argument("--top", type=int, default=5, help="rows of the summary table (default 5)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--create-only",
        action="store_true",
        help="create the study in the storage and exit (do this once before starting other machines)",
    )
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
    p.add_argument("--worker-index", type=int, default=None, help=argparse_suppress())
    p.set_defaults(func=cmd_search)

    s = subparsers.add_parser(
        "show",
        help="show the best trials of a study",
        description="Print the best trials of STUDY in STORAGE as a table.",
    )
    s.add_argument("study", help="study name")
    s.add_argument("--storage", required=True, help="Optuna storage URL, e.g. sqlite:///quickstart.db")
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


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def _error(message):
    print(f"bioact: error: {message}", file=sys.stderr)
    return 2


def _resolve(args):
    from keras_bioact.search.spec import SpecError, load_spec
    from keras_bioact.search.templates import allow_code

    for module in args.allow_code:
        try:
            allow_code(module)
        except ValueError as e:
            raise SpecError("command line", "--allow-code", str(e)) from None
    spec = load_spec(args.spec)
    if args.study_name:
        spec.study_name = args.study_name
    if args.storage:
        spec.storage = args.storage
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


def _open_study(spec, worker_index=0):
    from keras_bioact.search.spec import SpecError
    from keras_bioact.search.study import create_study, load_study

    key = "study.storage"
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
        study.set_user_attr("spec", {"source": spec.source, "raw": spec.raw})
        return study
    except SpecError:
        raise
    except Exception as e:  # any storage failure: bad URL, unreachable server, unwritable file
        raise SpecError(
            spec.source, key, f"cannot open storage {spec.storage!r}: {type(e).__name__}: {e}"
        ) from None


def cmd_search(args):
    from keras_bioact.search.spec import SpecError

    try:
        spec = _resolve(args)
        study = _open_study(spec, args.worker_index or 0)
    except SpecError as e:
        return _error(str(e))
    if args.worker_index is not None:
        return _worker(spec, study)
    if args.create_only:
        print(f"study {spec.study_name!r} is ready in {spec.storage}")
        return 0
    return _coordinate(spec, study, args)


def _worker(spec, study):
    from keras_bioact.search.study import run

    objective = spec.build_objective()
    run(study, objective, n_trials=spec.n_trials, timeout=spec.timeout)
    return 0


def _coordinate(spec, study, args):
    from tqdm.auto import tqdm

    from keras_bioact.search.study import count_finished, recover_dead_trials, run

    recovered = recover_dead_trials(study)
    if recovered:
        print(f"marked {len(recovered)} trial(s) of dead workers as FAIL and re-queued them: {recovered}")
    done = count_finished(study)
    print(
        f"study {spec.study_name!r} in {spec.storage}: {done}/{spec.n_trials} trials finished; "
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
    _score_on_test(spec, study)
    _summary(study, args.top, spec)
    if args.export:
        _export(study, args.export)
    return 0


def _postfix(study, trial):
    try:
        best = study.best_value if len(study.directions) == 1 else None
    except ValueError:
        best = None
    return f"last={trial.state.name.lower()}" + (f" best={best:.4f}" if best is not None else "")


def _run_workers(spec, args, study, bar):
    from keras_bioact.search.study import count_finished

    cmd = [
        sys.executable,
        "-m",
        "keras_bioact.cli",
        "search",
        args.spec,
        "--storage",
        spec.storage,
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
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in [os.getcwd(), env.get("PYTHONPATH")] if p])
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


def _format_table(rows, columns):
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _score_on_test(spec, study):
    from keras_bioact.search.holdout import score_on_test

    if len(study.directions) > 1 or count_complete(study) == 0:
        return
    try:
        score_on_test(spec, study, k=1, log=print)
    except Exception as e:  # never lose the summary over the held-out score
        print(f"could not score the best trial on the test split: {type(e).__name__}: {e}", file=sys.stderr)


def count_complete(study):
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _summary(study, top, spec=None):
    from collections import Counter

    from keras_bioact.search.holdout import protocol_line, test_scores
    from keras_bioact.search.study import _value_columns, best_activation_config, best_trials

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    print(
        f"\nstudy {study.study_name!r}: {len(trials)} trials ("
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + ")"
    )
    rows = best_trials(study, top)
    if not rows:
        print("no complete trial yet")
        return
    for r in rows:
        params = {k[len("param_") :]: v for k, v in r.items() if k.startswith("param_")}
        r["parameters"] = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
        )
    values = _value_columns(study)
    scores = test_scores(study)
    if scores:
        name = next(iter(scores.values()))["metric"]
        for r in rows:
            if r["number"] in scores:
                r[name] = scores[r["number"]]["value"]
        values = values[:1] + [name] + values[1:]
    columns = ["number"] + values + ["family", "params", "fit_seconds", "parameters"]
    print(_format_table(rows, columns))
    if spec is not None:
        print(protocol_line(spec))
    try:
        print(f"best activation: {best_activation_config(study)}")
    except ValueError:
        pass


def _export(study, directory):
    import pathlib

    from keras_bioact.search.study import export_trials, save_plots

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = [export_trials(study, d / "trials.csv"), export_trials(study, d / "trials.json")]
    written += save_plots(study, d)
    from keras_bioact.callbacks import OptunaTensorBoardCallback

    # One HParams session per trial (all workers and resumed runs): tensorboard --logdir DIR/tensorboard
    OptunaTensorBoardCallback(d / "tensorboard").log_study(study)
    written.append(d / "tensorboard")
    print("wrote " + ", ".join(str(p) for p in written))


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

    from keras_bioact.search.study import load_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.storage.startswith("sqlite:///") and not os.path.exists(args.storage[len("sqlite:///") :]):
        return _error(f"no SQLite file {args.storage[len('sqlite:///') :]!r} (storage {args.storage!r})")
    try:
        study = load_study(args.study, args.storage)
    except KeyError:
        return _error(f"no study {args.study!r} in {args.storage}")
    except Exception as e:
        return _error(f"cannot open storage {args.storage!r}: {type(e).__name__}: {e}")
    spec = _stored_spec(study, args)
    if spec is not None and not args.no_test:
        _score_on_test(spec, study)
    _summary(study, args.top, spec)
    if args.export:
        _export(study, args.export)
    return 0
