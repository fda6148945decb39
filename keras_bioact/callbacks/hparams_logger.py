import os
import re
import time

import numpy as np

__all__ = ["HParamsLogger", "parameter_hparams"]

_STATUSES = ("success", "failure", "running", "unknown")


class HParamsLogger:
    """Write search trials (or evolution generations) for TensorBoard's HParams dashboard.

    Each call of `log_session` writes one run directory `log_dir/<name>` holding the HParams
    plugin's session-start record (the hyper-parameter values), the metrics as scalars and the
    session-end record (status). TensorBoard infers the experiment (the list of hyper-parameters
    and metrics) from these sessions, so the search space may grow while the search runs.
    Written with `keras_bioact.callbacks.SummaryWriter` (no TensorFlow needed).

    A session already on disk is not written twice (`logged(name)`), so a resumed search can
    call `log_session` again for every finished trial.

    Example:
    ```python
    logger = HParamsLogger("logs/search")
    logger.log_session("trial_00003", {"n0": 5.5, "s0": 0.1, "form": "eru"}, {"value": 0.93})
    ```
    then `tensorboard --logdir logs/search`, HPARAMS tab.

    Args:
        log_dir: root directory of the search's TensorBoard logs.
    """

    def __init__(self, log_dir):
        self.log_dir = os.fspath(log_dir)

    def run_dir(self, name):
        if not re.fullmatch(r"[A-Za-z0-9_.=+-]+", str(name)):
            raise ValueError(
                f"HParamsLogger: session `name` must be a plain directory name (letters, digits, "
                f"'_.=+-'), got {name!r}."
            )
        return os.path.join(self.log_dir, str(name))

    def logged(self, name):
        """Whether a session named `name` was written already (its end record is on disk)."""
        path = self.run_dir(name)
        if not os.path.isdir(path):
            return False
        return any(f.startswith("events.out.tfevents.") and f.endswith(".hparams") for f in os.listdir(path))

    def log_session(
        self,
        name,
        hparams,
        metrics,
        status="success",
        step=0,
        series=None,
        start_time_secs=None,
        end_time_secs=None,
        group_name=None,
        overwrite=False,
    ):
        """Write one session (a trial or a generation).

        Args:
            name: run directory name under `log_dir` (e.g. `"trial_00007"`).
            hparams: `{name: value}` with bool, int, float or str values (other values are
                written as their `str`; NumPy scalars are converted).
            metrics: `{tag: float}` final metric values, written as scalars at `step`
                (non-finite values are skipped).
            status: "success", "failure", "running" or "unknown".
            step: step of the metric scalars. Default 0.
            series: optional `{step: {tag: float}}` of values along the way (e.g. Optuna's
                intermediate values), written as scalars at their steps.
            start_time_secs, end_time_secs: session times (seconds since the epoch; default now).
            group_name: HParams session group (default `name`).
            overwrite: write even if the session exists already (default False: skip).

        Returns:
            The run directory, or None when skipped because it was already logged.
        """
        from keras_bioact.callbacks.summary_writer import SummaryWriter

        if status not in _STATUSES:
            raise ValueError(f"HParamsLogger: `status` must be one of {_STATUSES}, got {status!r}.")
        if not overwrite and self.logged(name):
            return None
        path = self.run_dir(name)
        now = time.time()
        # The end record's file suffix marks the session as complete (see `logged`).
        with SummaryWriter(path, filename_suffix=".hparams") as writer:
            writer.hparams_session_start(
                hparams,
                group_name=group_name or str(name),
                start_time_secs=now if start_time_secs is None else float(start_time_secs),
            )
            for s, values in sorted((series or {}).items()):
                writer.write(int(s), scalars=_finite(values))
            writer.write(int(step), scalars=_finite(metrics))
            writer.hparams_session_end(status, end_time_secs=now if end_time_secs is None else end_time_secs)
        return path


def _finite(values):
    out = {}
    for k, v in (values or {}).items():
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if np.isfinite(v):
            out[str(k)] = v
    return out


def parameter_hparams(model_or_view, vector=None, space="natural", max_elements=4):
    """Summarise activation parameters as HParams values.

    Each parameter of `keras_bioact.params.ParameterView` becomes `"<layer>/<param>"` when it
    has at most `max_elements` elements (one entry per element, suffixed `[i]` if more than one),
    else its mean (`"<layer>/<param>/mean"`) and std (`".../std"`).

    Args:
        model_or_view: a built model or a `ParameterView`.
        vector: a flat parameter vector (e.g. an evolution's best solution); default the model's
            current values.
        space: the space of `vector`, "natural" or "unconstrained".
        max_elements: parameters up to this size are written element by element.

    Returns:
        `{name: float}`.
    """
    from keras_bioact.params import ParameterView

    view = model_or_view if isinstance(model_or_view, ParameterView) else ParameterView(model_or_view)
    natural = view.get_vector() if vector is None else view.to_natural(vector, space)
    out = {}
    for p, value in zip(view.parameters, view.split(natural), strict=True):
        flat = np.asarray(value, dtype="float64").reshape(-1)
        if flat.size == 1:
            out[p.path] = float(flat[0])
        elif flat.size <= max_elements:
            for i, v in enumerate(flat):
                out[f"{p.path}[{i}]"] = float(v)
        else:
            out[f"{p.path}/mean"] = float(flat.mean())
            out[f"{p.path}/std"] = float(flat.std())
    return out
