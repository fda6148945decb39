"""Objective names shared by both engines: the extra objectives of multi-objective Optuna
studies and the direction (maximise or minimise) of any metric name."""

__all__ = ["OBJECTIVES", "direction_of"]

# Extra objectives (multi-objective studies) and their directions.
OBJECTIVES = {"params": "minimize", "fit_time": "minimize", "step_time": "minimize"}


def direction_of(name):
    """Direction of a metric or extra objective: losses/errors/times/params minimise."""
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    low = name.lower()
    return "minimize" if any(k in low for k in ("loss", "error", "mse", "mae")) else "maximize"
