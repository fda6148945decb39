"""A real `tensorboard --logdir` server shows what ActivationInspector wrote next to Keras' own
TensorBoard callback (one run), queried over its HTTP API; the server is always stopped."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest

from keras_bioact import BRU, GammaActivation
from keras_bioact.callbacks import ActivationInspector, HParamsLogger

pytest.importorskip("tensorboard")

SERVER_TIMEOUT = 180  # seconds, for the server to come up and load the run (busy machines are slow)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


@pytest.mark.single_backend
@pytest.mark.timeout(360)
def test_tensorboard_server_lists_the_inspector_tags(tmp_path):
    log_dir = tmp_path / "logs"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4),
            GammaActivation(name="gamma"),
            BRU(name="bru"),
            keras.layers.Dense(2),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks = [
        keras.callbacks.TensorBoard(str(log_dir)),
        ActivationInspector(log_dir, images_every_n_epochs=1, max_overhead=None),
    ]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
    HParamsLogger(log_dir / "search").log_session("trial_00000", {"n0": 5.0}, {"value": 0.5})

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(log_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--load_fast=false",
            "--reload_interval",
            "1",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        scalars = images = histograms = runs = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"tensorboard exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}"
                )
            try:
                runs = _get(port, "/data/runs")
                scalars = _get(port, "/data/plugin/scalars/tags")
                images = _get(port, "/data/plugin/images/tags")
                histograms = _get(port, "/data/plugin/histograms/tags")
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.5)
                continue
            if "bioact/bru/r/mean" in scalars.get("train", {}) and "bioact/gamma/curves" in images.get(
                "train", {}
            ):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"tensorboard did not list the run's tags within {SERVER_TIMEOUT} s: runs={runs}")
        assert "train" in runs and "search/trial_00000" in runs
        train_scalars = scalars["train"]
        assert "epoch_loss" in train_scalars  # keras.callbacks.TensorBoard, same run
        for tag in ("bioact/gamma/n/mean", "bioact/gamma/s/std", "bioact/bru/r/max"):
            assert tag in train_scalars
        assert {"bioact/gamma/curves", "bioact/bru/curves"} <= set(images["train"])
        assert {"bioact/gamma/n", "bioact/gamma/s", "bioact/bru/r"} <= set(histograms["train"])
        series = _get(port, "/data/plugin/scalars/scalars?run=train&tag=bioact/gamma/n/mean")
        assert [step for _, step, _ in series] == [0, 1]
        imgs = _get(port, "/data/plugin/images/images?run=train&tag=bioact/gamma/curves&sample=0")
        assert [e["step"] for e in imgs] == [0, 1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        proc.stderr.close()
