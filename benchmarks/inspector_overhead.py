"""Per-epoch cost of `ActivationInspector` on the digits recipe (MLP 64-128-128-10 with gamma).

Trains the same model (same seed) without the callback and with it in several settings, and
prints a table with, per setting: the median epoch wall time `epoch_s` (epochs after the
first, which compiles), the time spent inside the inspector's epoch hooks per epoch
`inspector_s/ep` (measured directly around them), that time as a percentage of the plain run's
median epoch time (`ovh_%_plain`) and of the same run's own training time over epochs 2..N
(`ovh_%_own`, what the `max_overhead` budget controls; robust to load changing between runs
on a shared machine), the end-to-end difference of median epoch times (`e2e_diff_%`, noisy),
and the one-off
times of the setup (`on_train_begin`: finding the layers, opening the event file, importing
matplotlib) and of the final write after the last epoch (`on_train_end`: last histograms and
images).

Settings: "default" (every_n_epochs=1, images_every_n_epochs=10, max_overhead=0.05),
"no_budget" (same, max_overhead=None), "no_images", "images_every_epoch" (no budget).

    PYTHONPATH=$PWD KERAS_BACKEND=jax python benchmarks/inspector_overhead.py --epochs 20
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import keras
import numpy as np

from keras_bioact import GammaActivation
from keras_bioact.callbacks import ActivationInspector
from keras_bioact.datasets import load_digits


class EpochClock(keras.callbacks.Callback):
    """Put last in the callback list: stamps the end of each epoch after every other callback."""

    def on_train_begin(self, logs=None):
        self.stamps = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.stamps.append(time.perf_counter())

    def epoch_times(self):
        return np.diff(self.stamps)


class TimedInspector(ActivationInspector):
    """Measures the time spent in its own hooks: per epoch, and the one final write."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spent_setup = 0.0
        self.per_epoch = []
        self.spent_epochs = 0.0
        self.spent_final = 0.0

    def on_train_begin(self, logs=None):
        t = time.perf_counter()
        super().on_train_begin(logs)
        self.spent_setup += time.perf_counter() - t

    def on_epoch_begin(self, epoch, logs=None):
        t = time.perf_counter()
        super().on_epoch_begin(epoch, logs)
        self.spent_epochs += time.perf_counter() - t

    def on_epoch_end(self, epoch, logs=None):
        t = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.spent_epochs += time.perf_counter() - t
        self.per_epoch.append(time.perf_counter() - t)

    def on_train_end(self, logs=None):
        t = time.perf_counter()
        super().on_train_end(logs)
        self.spent_final += time.perf_counter() - t


SETTINGS = {
    "plain": None,
    "default": {},
    "no_budget": {"max_overhead": None},
    "no_images": {"images": False},
    "images_every_epoch": {"images_every_n_epochs": 1, "max_overhead": None},
}


def build(width):
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(width),
            GammaActivation(),
            keras.layers.Dense(width),
            GammaActivation(),
            keras.layers.Dense(10),
        ]
    )


def run(setting, data, epochs, batch_size, width, log_root):
    (x, y) = data
    keras.utils.set_random_seed(0)
    model = build(width)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    clock = EpochClock()
    callbacks = [clock]
    inspector = None
    if SETTINGS[setting] is not None:
        inspector = TimedInspector(os.path.join(log_root, setting), **SETTINGS[setting])
        callbacks = [inspector, clock]
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=callbacks)
    times = clock.epoch_times()
    keras.backend.clear_session()
    if inspector is None:
        return statistics.median(times[1:]), 0.0, 0.0, 0.0, 0.0
    # Overhead against this run's own training time (epochs after the first), which is what
    # the callback's budget controls; robust to the machine's load changing between runs.
    spent = sum(inspector.per_epoch[1:])
    own = spent / (sum(times[1:]) - spent)
    return (
        statistics.median(times[1:]),
        inspector.spent_epochs / epochs,
        own,
        inspector.spent_setup,
        inspector.spent_final,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma list of {tuple(SETTINGS)}")
    args = parser.parse_args(argv)
    settings = args.settings.split(",")
    if "plain" not in settings:
        settings = ["plain", *settings]
    (x, y), _ = load_digits(test_fraction=0.2, seed=0)
    data = (x.reshape(len(x), -1), y)
    rows = []
    with tempfile.TemporaryDirectory() as log_root:
        for setting in settings:
            rows.append((setting, *run(setting, data, args.epochs, args.batch_size, args.width, log_root)))
    plain = rows[0][1]
    print(
        f"backend={keras.backend.backend()} epochs={args.epochs} batch={args.batch_size} "
        f"train={len(x)} width={args.width} python={sys.version.split()[0]}"
    )
    header = (
        "setting",
        "epoch_s",
        "inspector_s/ep",
        "ovh_%_plain",
        "ovh_%_own",
        "e2e_diff_%",
        "setup_s",
        "final_s",
    )
    print("{:<19} {:>8} {:>14} {:>11} {:>10} {:>10} {:>8} {:>8}".format(*header))
    for setting, median, spent, own, setup, final in rows:
        print(
            f"{setting:<19} {median:>8.4f} {spent:>14.4f} {100 * spent / plain:>11.2f} {100 * own:>10.2f} "
            f"{100 * (median - plain) / plain:>10.2f} {setup:>8.3f} {final:>8.3f}"
        )


if __name__ == "__main__":
    main()
