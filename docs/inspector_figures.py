"""Make the ActivationInspector figures of the docs (and a TensorBoard log to screenshot).

Trains the digits MLP (64-32-128-10, GammaActivation after each hidden layer, so the first layer
is drawn as 32 lines and the second as quantile bands over 128 neurons) for a few epochs with
`keras.callbacks.TensorBoard` and `ActivationInspector` writing to one run, saves the model, and
writes the PNG figures of `bioact inspect` next to this file:

    PYTHONPATH=$PWD KERAS_BACKEND=jax python docs/inspector_figures.py --logdir /tmp/inspector_logs
    tensorboard --logdir /tmp/inspector_logs      # the run "train" holds both callbacks' data
"""

import argparse
import os
import shutil
import tempfile

import keras
import numpy as np

from keras_bioact import GammaActivation
from keras_bioact.callbacks import ActivationInspector, figures
from keras_bioact.cli import main as bioact
from keras_bioact.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--logdir", default=os.path.join(tempfile.gettempdir(), "inspector_logs"))
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    (x, y), (xt, yt) = load_digits(test_fraction=0.2, seed=0)
    x, xt = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32),
            GammaActivation(name="gamma_1"),
            keras.layers.Dense(128),
            GammaActivation(name="gamma_2"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    shutil.rmtree(args.logdir, ignore_errors=True)
    callbacks = [
        keras.callbacks.TensorBoard(args.logdir),
        ActivationInspector(args.logdir, images_every_n_epochs=3, max_overhead=None),
    ]
    model.fit(
        x, y, epochs=args.epochs, batch_size=32, validation_data=(xt, yt), verbose=2, callbacks=callbacks
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.keras")
        model.save(path)
        out = os.path.join(tmp, "figs")
        assert bioact(["inspect", path, "--out", out, "--dpi", "90"]) == 0
        shutil.copy(os.path.join(out, "gamma_1_curves.png"), os.path.join(HERE, "inspector_curves.png"))
        shutil.copy(os.path.join(out, "gamma_2_curves.png"), os.path.join(HERE, "inspector_bands.png"))
    # A two-argument surface figure as drawn for the inner net g of two-argument layers
    # (here a fixed soft-XOR-like g, for the look of the figure).
    grid = np.linspace(-3, 3, 61)
    a, b = np.meshgrid(grid, grid)
    g = np.tanh(a) * np.tanh(b) + 0.1 * (a + b)
    png = figures.surface_png(
        grid, grid, g, "inner g(a, b) (example: tanh(a) tanh(b) + 0.1 (a + b))", dpi=90
    )
    with open(os.path.join(HERE, "inspector_surface.png"), "wb") as f:
        f.write(png)
    print("logdir:", args.logdir)


if __name__ == "__main__":
    main()
