"""Workers of an Optuna study: the loop that runs trials in this process (`run`), finding and
recovering the trials of dead workers (`recover_dead_trials`, `count_finished`), and the worker
processes of a search on this machine (`run_workers`, started as
`python -P -m keras_bioact.search.optuna --worker-index I` with their job on stdin).

Worker processes import only installed code: Python's `-P` keeps the working directory (where a
stray `optuna.py` may lie) off `sys.path`; the directories of `allow_code` modules are appended
after the installed packages; empty `PYTHONPATH` entries (the working directory) are dropped. A
worker gets its job (the spec as data, its overrides, the storage URL, which may hold a
password) on its standard input, never on the command line that `ps` shows everyone nor in its
environment.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import warnings

from keras_bioact.errors import BioactError
from keras_bioact.search.optuna.objective import _proc_start_time
from keras_bioact.search.spec.model import SpecError

__all__ = [
    "ORPHAN_GRACE",
    "WorkerError",
    "count_finished",
    "interrupt_once",
    "recover_dead_trials",
    "restore_signals",
    "run",
    "run_workers",
    "worker_command",
    "worker_main",
]

WORKER_MODULE = "keras_bioact.search.optuna"  # `python -m` of it: one worker (its __main__)
MAX_JOB_BYTES = 4 << 20  # a job is a spec (at most 1 MiB as TOML) and a few names


class WorkerError(BioactError):
    """Worker processes of a search failed; finished trials are saved."""


def _counted(trial):
    import optuna

    state = trial.state
    if state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
        return True
    return (
        state == optuna.trial.TrialState.FAIL
        and "failure_reason" in trial.user_attrs
        and not trial.user_attrs.get("stale", False)
    )


def count_finished(study):
    """Trials that count towards `n_trials`: complete, pruned, and failed by divergence
    (trials of killed workers do not count: their parameters are re-queued)."""
    return sum(_counted(t) for t in study.get_trials(deepcopy=False))


INTERRUPTED = "interrupted (Ctrl-C or SIGTERM); failed at once"


def interrupt_once():
    """SIGINT (Ctrl-C) and SIGTERM raise KeyboardInterrupt once in this process; later ones do
    nothing, so that the interrupted search finishes failing and re-queueing its running trials
    (a worker gets Ctrl-C and then its coordinator's SIGTERM). Returns the previous handlers
    (for `restore_signals`)."""
    import signal

    raised = []

    def handler(signum, frame):
        if not raised:
            raised.append(signum)
            raise KeyboardInterrupt

    return {n: signal.signal(n, handler) for n in (signal.SIGINT, signal.SIGTERM)}


def restore_signals(handlers):
    import signal

    for signum, handler in handlers.items():
        signal.signal(signum, handler)


# A RUNNING trial with no `worker` attribute this many seconds after it started is an orphan.
ORPHAN_GRACE = 60


def _alive(worker):
    if not isinstance(worker, dict) or worker.get("host") != socket.gethostname():
        return None  # unknown: another machine (the RDB heartbeat handles those)
    pid = worker.get("pid")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    if _zombie(pid):
        return False  # killed and not yet reaped by its parent: dead
    start = worker.get("start")
    return start is None or _proc_start_time(pid) == start


def _zombie(pid):
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError, ValueError):
        return False


def recover_dead_trials(study, requeue=True):
    """Fail RUNNING trials whose worker died, and re-queue their parameters.

    A trial is dead when its worker process (recorded in the `worker` user attribute) ran on
    this host and no longer exists (e.g. killed with SIGKILL), when it has no `worker` attribute
    `ORPHAN_GRACE` (60) seconds after it started (its worker was killed between creating it and
    recording itself), or, on RDB storages, when its heartbeat is stale
    (`optuna.storages.fail_stale_trials`; this covers other machines). Failed trials get
    `failure_reason` and `stale = True`; their parameters are enqueued so the configuration is
    retried. Returns the numbers of the trials failed.
    """
    import optuna
    from optuna.trial import TrialState

    failed = []
    storage = study._storage
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if _alive(worker) is False:
            reason = f"worker {worker.get('host')}:{worker.get('pid')} died mid-trial; failed on resume"
        elif worker is None and t.datetime_start and (now - t.datetime_start).total_seconds() > ORPHAN_GRACE:
            # a worker records its identity first thing in a trial; one that has none after
            # ORPHAN_GRACE seconds was killed in the moment between creating it and recording
            reason = f"no worker recorded itself within {ORPHAN_GRACE} s (killed at the trial's start)"
        else:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "failure_reason", reason)
            storage.set_trial_user_attr(t._trial_id, "stale", True)
            if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                failed.append(t)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number not in before and t.number not in {f.number for f in failed}:
            try:
                storage.set_trial_user_attr(
                    t._trial_id, "failure_reason", "stale heartbeat; failed on resume"
                )
                storage.set_trial_user_attr(t._trial_id, "stale", True)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass
            failed.append(t)
    if requeue:
        _requeue(study, failed)
    return [t.number for t in failed]


def _requeue(study, failed):
    """Enqueue the parameters of the `failed` trials (once each), so they are tried again."""
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    for t in failed:
        # A re-queued trial killed before its objective asked for the parameters has none
        # yet; its enqueued ones (`fixed_params`) keep the retry chain going.
        params = t.params or t.system_attrs.get("fixed_params") or {}
        if params and t.number not in retried:
            study.enqueue_trial(params, user_attrs={"retry_of": t.number})


class _Worker:
    """`objective` for `study.optimize`, and its callback after each trial (`n_trials` over all
    workers, `on_trial`). Records this process's current trial, so that `run` can tell a trial
    that another process finished under it (`recover_dead_trials` of a process that took this
    worker for dead) from a failure of its own."""

    def __init__(self, objective, n_trials, on_trial):
        self.objective, self.n_trials, self.on_trial = objective, n_trials, on_trial
        self.trial, self.returned, self.taken = None, False, False

    def __call__(self, trial):
        import optuna

        self.trial, self.returned, self.taken = trial, False, False
        try:
            value = self.objective(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            self.taken = True  # recording into it failed: it was finished elsewhere
            raise
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: failed as if its worker had died (not counted, re-queued by
            # `run`), and Optuna's log of the failure (a traceback) silenced
            trial.set_user_attr("failure_reason", INTERRUPTED)
            trial.set_user_attr("stale", True)
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            raise
        self.returned = True
        return value

    def after(self, study, trial):
        self.trial = None  # told: finished by this worker
        if self.on_trial is not None:
            self.on_trial(study, trial)
        if self.n_trials is not None and count_finished(study) >= self.n_trials:
            study.stop()

    def finished_elsewhere(self, study):
        """Whether the trial that `study.optimize` failed on was finished by another process:
        recording into it failed, or the objective returned and its result could not be told
        although the stored trial is finished (Optuna raises `UpdateFinishedTrialError`,
        `ValueError("Cannot tell a FAIL trial.")` or an `AssertionError` then)."""
        if self.trial is None:
            return False
        if self.taken:
            return True
        stored = study._storage.get_trial(self.trial._trial_id)
        return self.returned and stored.state.is_finished()


def run(study, objective, n_trials=None, timeout=None, on_trial=None, log=None):
    """Run this process as one worker until the study has `n_trials` finished trials (counted
    over all workers, see `count_finished`) or `timeout` seconds pass. Re-running continues
    the same study. `on_trial(study, frozen_trial)` is called after each trial.

    A trial of this worker that another process finished meanwhile (its recovery took this
    worker for dead) is skipped with one line to `log` (default: stderr), and the worker goes
    on with the trials and time that remain. Interrupted (KeyboardInterrupt: Ctrl-C, or
    SIGTERM with `interrupt_once`), the trial it was running is failed and its parameters
    re-queued at once, as `recover_dead_trials` does for a dead worker, and the interrupt goes on."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    recover_dead_trials(study)
    worker = _Worker(objective, n_trials, on_trial)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if n_trials is None else n_trials - count_finished(study)
        left = None if deadline is None else deadline - time.monotonic()
        if (remaining is not None and remaining <= 0) or (left is not None and left <= 0):
            return study
        try:
            study.optimize(
                worker, n_trials=remaining, timeout=left, callbacks=[worker.after], gc_after_trial=True
            )
            return study
        except KeyboardInterrupt:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            if worker.trial is not None:
                _requeue(study, [study._storage.get_trial(worker.trial._trial_id)])
            raise
        except Exception as e:
            if not worker.finished_elsewhere(study):
                raise
            message = (
                f"trial {worker.trial.number} was finished by another process meanwhile "
                f"({type(e).__name__}: {e}); skipped it, going on"
            )
            (log or (lambda m: print(m, file=sys.stderr)))(message)
            worker.trial = None


# ------------------------------------------------------------------------ worker processes
def worker_command(spec, allow_code=()):
    """`(argv, env, job)` of the worker processes of `spec` on this machine: worker `i` runs
    `argv + ["--worker-index", str(i)]` in `env` and reads `job` (a dict) as JSON from its
    standard input.

    The job holds the spec as data (`spec.raw`, which the worker validates again with
    `parse_spec`), the values that the run overrides (study name, storage URL, trials, timeout)
    and the `allow_code` modules with the directories they were imported from. `SpecError` if
    `spec` is not what its data gives (a spec changed after it was read: workers could not run
    it)."""
    from keras_bioact.search.spec.reader import parse_spec

    job = {
        "spec": {"raw": spec.raw, "source": spec.source},
        "overrides": {k: getattr(spec, k) for k in OVERRIDES},
        "allow_code": list(allow_code),
        "code_path": _code_roots(allow_code),
    }
    if _with_overrides(parse_spec(spec.raw, source=spec.source), job["overrides"]) != spec:
        raise SpecError(
            spec.source,
            "workers",
            "worker processes read the spec from its data (`spec.raw`), and this spec was changed "
            "after it was read; change the TOML or dict it is read from instead (or use 1 worker)",
        )
    env = dict(os.environ)
    # an empty PYTHONPATH entry (PYTHONPATH=":/x", a common slip) means the working directory
    path = [p for p in env.pop("PYTHONPATH", "").split(os.pathsep) if p]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return [sys.executable, "-P", "-m", WORKER_MODULE], env, job


# The settings of a spec that a run may override (`run_spec`'s keywords); a worker gets them.
OVERRIDES = ("study_name", "storage", "n_trials", "timeout", "workers")


def _with_overrides(spec, overrides):
    for name, value in overrides.items():
        setattr(spec, name, value)
    return spec


def _code_roots(modules):
    """The directories from which the (imported) `modules` were imported."""
    roots = []
    for name in modules:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            file = pathlib.Path(os.path.abspath(file))
            roots.append(str(file.parents[name.count(".") + (file.stem == "__init__")]))
    return list(dict.fromkeys(roots))


def run_workers(spec, study, allow_code=(), on_poll=None, log=print):
    """Run `spec.workers` worker processes on this machine until they end; `on_poll(study)` is
    called every second meanwhile (a progress bar). Workers that outlive `spec.timeout` by 10
    minutes are terminated. `WorkerError` if any worker failed (finished trials are saved)."""
    cmd, env, job = worker_command(spec, allow_code)
    procs = []
    for i in range(spec.workers):
        proc = subprocess.Popen(cmd + ["--worker-index", str(i + 1)], env=env, stdin=subprocess.PIPE)
        procs.append(proc)
        proc.stdin.write(json.dumps({**job, "index": i + 1}).encode())
        proc.stdin.close()
    deadline = None if spec.timeout is None else time.monotonic() + spec.timeout + 600
    try:
        while any(p.poll() is None for p in procs):
            if on_poll is not None:
                on_poll(study)
            if deadline is not None and time.monotonic() > deadline:
                log("workers exceeded the timeout by 10 minutes; terminating them")
                break
            time.sleep(1.0)
    finally:
        # interrupted: the workers fail and re-queue their running trials on SIGTERM
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        recover_dead_trials(study)  # what a worker killed hard left RUNNING
    bad = [p.returncode for p in procs if p.returncode not in (0, None)]
    if bad:
        raise WorkerError(
            f"{len(bad)} worker(s) failed (exit codes {bad}); finished trials are saved, re-run to continue"
        )


def worker_main(argv=None, stdin=None):
    """A worker process (`python -P -m keras_bioact.search.optuna --worker-index I`, job on
    stdin, see `worker_command`): runs trials until the study has its trials; returns the exit
    code (2 with one line on stderr for a refused spec or storage)."""
    import argparse

    from keras_bioact.search.optuna.batch import run_trials
    from keras_bioact.search.optuna.study import open_study
    from keras_bioact.search.spec.reader import parse_spec
    from keras_bioact.search.templates import allow_code

    parser = argparse.ArgumentParser(prog=f"python -m {WORKER_MODULE}", description=worker_main.__doc__)
    parser.add_argument("--worker-index", type=int, required=True)
    index = parser.parse_args(argv).worker_index
    interrupt_once()
    try:
        job = json.loads((stdin or sys.stdin.buffer).read(MAX_JOB_BYTES))
        for directory in job["code_path"]:  # where the coordinator found the allow_code modules
            if directory not in sys.path:
                sys.path.append(directory)  # after the installed packages, which stay first
        for module in job["allow_code"]:
            allow_code(module)
        spec = _with_overrides(parse_spec(job["spec"]["raw"], source=job["spec"]["source"]), job["overrides"])
        study = open_study(spec, index)
        run_trials(spec, study)
    except BioactError as e:
        print(f"worker {index}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
