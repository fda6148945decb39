"""How close `keras_bioact.convert` starts on real keras.applications models (weights=None).

    PYTHONPATH=$PWD KERAS_BACKEND=tensorflow python benchmarks/convert_applications.py [--size 32]

For each application: activations replaced / skipped, the activations found, the largest
per-layer deviation on the calibration probe (max |new - old| / std(old)), the output deviation
(max |converted - original| / std(original)) on the calibration probe and on fresh inputs, and
the time to build and to convert; with `--save` also the max difference after a `.keras` round
trip loaded with `safe_mode=True`, and the loss of one training step of the loaded model. Models
are built with `classifier_activation=None` (logits): an untrained softmax head gives outputs
equal to 1/1000 up to float32 round-off. `--relu-gain 20 --no-exact` shows the old defaults.
"""

import argparse
import os
import tempfile
import time
import warnings

import keras
import numpy as np

import keras_bioact

BUILDERS = {
    "MobileNetV2": lambda s: keras.applications.MobileNetV2(
        alpha=0.35, input_shape=(s, s, 3), weights=None, classifier_activation=None
    ),
    "ResNet50": lambda s: keras.applications.ResNet50(
        input_shape=(s, s, 3), weights=None, classifier_activation=None
    ),
    "EfficientNetB0": lambda s: keras.applications.EfficientNetB0(
        input_shape=(s, s, 3), weights=None, classifier_activation=None
    ),
    "DenseNet121": lambda s: keras.applications.DenseNet121(
        input_shape=(s, s, 3), weights=None, classifier_activation=None
    ),
    "ConvNeXtTiny": lambda s: keras.applications.ConvNeXtTiny(
        input_shape=(s, s, 3), weights=None, classifier_activation=None
    ),
}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _probe(size):  # the default probe of `convert`, given explicitly so that relu_gain=20 is checked too
    return np.random.default_rng(0).standard_normal((4, size, size, 3)).astype("float32")


def _save_load_train(new, x):
    """Max |loaded - converted| after a `.keras` round trip (safe_mode=True), and one training step's loss."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "converted.keras")
        new.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
    diff = float(np.abs(_np(loaded(x, training=False)) - _np(new(x, training=False))).max())
    loaded.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    y = np.zeros((len(x), *tuple(loaded.output.shape[1:])), "float32")
    loss = float(np.asarray(loaded.train_on_batch(x, y)))
    return diff, loss


def main(size=32, apps=tuple(BUILDERS), relu_gain=None, exact=True, save=False):
    print(
        f"backend {keras.backend.backend()}, {size}x{size} inputs, weights=None, "
        f"relu_gain={relu_gain}, exact={exact}"
    )
    extra = " save/load max diff | train loss |" if save else ""
    print(
        "| application | replaced | skipped | activations | max layer dev | output dev (probe) "
        "| output dev (fresh) | build s | convert s | warnings |" + extra
    )
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if save else ""))
    for name in apps:
        keras.utils.set_random_seed(0)
        start = time.perf_counter()
        model = BUILDERS[name](size)
        built = time.perf_counter() - start
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            start = time.perf_counter()
            new, report = keras_bioact.convert(
                model, relu_gain=relu_gain, exact=exact, probe_data=_probe(size), return_report=True
            )
            took = time.perf_counter() - start
        x = np.random.default_rng(1).normal(size=(4, size, size, 3)).astype("float32")
        before, after = _np(model(x, training=False)), _np(new(x, training=False))
        fresh = np.abs(after - before).max() / before.std()
        layer = max(c.relative_deviation for c in report.converted)
        acts = ",".join(sorted({c.activation for c in report.converted}))
        n_warn = sum(issubclass(w.category, UserWarning) for w in caught)
        extra = ""
        if save:
            diff, loss = _save_load_train(new, x)
            extra = f" {diff:.2g} | {loss:.4g} |"
        print(
            f"| {name} | {len(report.converted)} | {len(report.skipped)} | {acts} | {layer:.2%} "
            f"| {report.relative_output_deviation:.3%} | {fresh:.3%} | {built:.1f} | {took:.1f} | {n_warn} |"
            + extra,
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--apps", default=",".join(BUILDERS))
    parser.add_argument("--relu-gain", type=float, default=None, help="fixed gain (default: calibrate)")
    parser.add_argument("--no-exact", action="store_true", help="no fixed correction of inexact fits")
    parser.add_argument("--save", action="store_true", help="also .keras round trip and one training step")
    args = parser.parse_args()
    main(args.size, tuple(args.apps.split(",")), args.relu_gain, not args.no_exact, args.save)
