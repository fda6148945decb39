"""HParams sessions of searches (Optuna callback, evolution logger), read back from the event files."""

import os

import keras
import numpy as np
import pytest

from keras_bioact import BRU, GammaActivation
from keras_bioact.callbacks import (
    EvolutionTensorBoardLogger,
    HParamsLogger,
    OptunaTensorBoardCallback,
    parameter_hparams,
)

pytest.importorskip("tensorboard")


def _accumulator(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(path, size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def _session(path):
    """(hparams dict, group name, end status) of the HParams session written in run `path`."""
    from tensorboard.plugins.hparams import api_pb2, metadata

    acc = _accumulator(path)
    start = end = None
    for tag in acc.Tags()["tensors"]:
        content = acc.SummaryMetadata(tag).plugin_data.content
        if tag == metadata.SESSION_START_INFO_TAG:
            start = metadata.parse_session_start_info_plugin_data(content)
        elif tag == metadata.SESSION_END_INFO_TAG:
            end = metadata.parse_session_end_info_plugin_data(content)
    assert start is not None and end is not None
    values = {}
    for k, v in start.hparams.items():
        kind = v.WhichOneof("kind")
        values[k] = getattr(v, kind)
    return values, start.group_name, api_pb2.Status.Name(end.status), acc


def test_hparams_logger_session_and_skip(tmp_path):
    logger = HParamsLogger(tmp_path)
    path = logger.log_session(
        "trial_00001",
        {"n0": np.float32(5.5), "form": "eru", "shared": True, "layers": (1, 2), "none": None},
        {"value": 0.75, "bad": float("nan")},
        series={0: {"intermediate_value": 0.5}, 1: {"intermediate_value": 0.7}},
        step=1,
    )
    assert path == os.path.join(str(tmp_path), "trial_00001")
    values, group, status, acc = _session(path)
    assert values == {"n0": 5.5, "form": "eru", "shared": True, "layers": "(1, 2)", "none": "None"}
    assert group == "trial_00001" and status == "STATUS_SUCCESS"
    assert [(e.step, e.value) for e in acc.Scalars("value")] == [(1, 0.75)]
    assert [e.step for e in acc.Scalars("intermediate_value")] == [0, 1]
    assert "bad" not in acc.Tags()["scalars"]
    assert logger.logged("trial_00001")
    assert logger.log_session("trial_00001", {"n0": 1.0}, {"value": 0.1}) is None  # not twice
    assert len(os.listdir(path)) == 1
    with pytest.raises(ValueError, match="status"):
        logger.log_session("trial_00002", {}, {}, status="done")
    with pytest.raises(ValueError, match="name"):
        logger.log_session("../escape", {}, {})


@pytest.mark.single_backend
def test_optuna_callback_writes_every_finished_trial(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        n = trial.suggest_float("n", 1.0, 20.0, log=True)
        form = trial.suggest_categorical("form", ["eru", "oru"])
        trial.set_user_attr("params", 123)
        for step in range(3):
            trial.report(n * (step + 1), step)
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            raise RuntimeError("diverged")
        return n + (form == "eru")

    cb = OptunaTensorBoardCallback(tmp_path, metric_name="accuracy")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=5, callbacks=[cb], catch=(RuntimeError,))
    runs = sorted(os.listdir(tmp_path))
    assert runs == [f"trial_{i:05d}" for i in range(5)]
    statuses = {}
    for trial in study.trials:
        values, _, status, acc = _session(str(tmp_path / cb.run_name(trial)))
        statuses[trial.number] = status
        assert values["n"] == pytest.approx(trial.params["n"]) and values["form"] == trial.params["form"]
        assert [e.step for e in acc.Scalars("intermediate_value")] == [0, 1, 2]
        assert acc.Scalars("user_attrs/params")[0].value == 123
        if trial.state.name == "COMPLETE":
            assert acc.Scalars("accuracy")[0].value == pytest.approx(trial.value)
            assert acc.Scalars("pruned")[0].value == 0.0
        if trial.state.name == "PRUNED":  # its value at pruning never sorts among final values
            assert "accuracy" not in acc.Tags()["scalars"]
            assert acc.Scalars("accuracy_at_pruning")[0].value == pytest.approx(trial.intermediate_values[2])
            assert acc.Scalars("pruned")[0].value == 1.0 and acc.Scalars("pruned_at_step")[0].value == 2
    assert statuses == {
        0: "STATUS_SUCCESS",
        1: "STATUS_SUCCESS",
        2: "STATUS_UNKNOWN",  # pruned, as docs/tensorboard.md says
        3: "STATUS_FAILURE",
        4: "STATUS_SUCCESS",
    }
    # Resuming: log_study writes only what is missing.
    os.rename(tmp_path / "trial_00004", tmp_path / "moved")
    assert cb.log_study(study) == 1
    assert os.path.isdir(tmp_path / "trial_00004")
    with pytest.raises(ValueError, match="metric_name"):
        OptunaTensorBoardCallback(tmp_path, metric_name="")


def test_evolution_logger_scalars_histograms_and_sessions(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), GammaActivation(), keras.layers.Dense(3), BRU(r=2.0)]
    )
    from keras_bioact.params import ParameterView

    view = ParameterView(model)
    hp = parameter_hparams(view)
    assert set(hp) == {
        f"{model.layers[1].name}/n/mean",
        f"{model.layers[1].name}/n/std",
        f"{model.layers[1].name}/s/mean",
        f"{model.layers[1].name}/s/std",
        f"{model.layers[3].name}/r",
    }
    assert hp[f"{model.layers[3].name}/r"] == pytest.approx(2.0)
    with EvolutionTensorBoardLogger(tmp_path, maximize=False) as tb:
        for g in range(3):
            fitness = np.array([3.0 - g, 5.0, 4.0, np.inf])
            vector = view.get_vector() + g
            stats = tb.log_generation(
                g,
                fitness,
                hparams=parameter_hparams(view, vector),
                population={"r": np.full(4, 2.0 + g)},
                scalars={"sigma": 0.5 / (g + 1)},
            )
            assert stats["fitness/best"] == 3.0 - g and stats["fitness/worst"] == 5.0
            assert stats["fitness/failed"] == 1.0
    acc = _accumulator(str(tmp_path / "evolution"))
    assert [e.value for e in acc.Scalars("fitness/best")] == [3.0, 2.0, 1.0]
    assert [e.step for e in acc.Scalars("fitness/mean")] == [0, 1, 2]
    assert acc.Scalars("sigma")[2].value == pytest.approx(0.5 / 3)
    assert acc.Histograms("fitness")[0].histogram_value.num == 3
    assert acc.Histograms("population/r")[1].histogram_value.max == 3.0
    values, _, status, sess = _session(str(tmp_path / "generation_00002"))
    assert status == "STATUS_SUCCESS" and values["generation"] == 2
    assert values[f"{model.layers[3].name}/r"] == pytest.approx(4.0)
    assert sess.Scalars("fitness/best")[0].value == 1.0
