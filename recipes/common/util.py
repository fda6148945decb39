"""Plumbing of the feed-forward paper recipes (`bru_vs_relu`, `gamma_mlp`): argument parsing,
data, seeds, training with per-epoch records, robustness, JSON, plots.

A recipe builds a parser with `base_parser`, parses with `parse_args` (which applies its
`--paper-scale` presets to every flag the user did not set), loads data with `load_data`, trains
each (variant, seed) with `train_classifier` (per-epoch validation on a seeded
`--validation-fraction` of the training data; the test set is scored once, after training),
evaluates with `robustness_tables`, and writes `results.json` (`run_results.write_json_atomic`),
PNG plots (`plot_curves`, `plot_bars`, `plot_robustness`) and TensorBoard logs
(`tensorboard_callback`) under `--out`. Means and stds over seeds are `keras_bioact.stats.mean_std`
(sample std).

Heavy optional packages (matplotlib, tensorflow for TensorBoard, tqdm) are imported inside the
functions that need them.
"""

import argparse
import math
import os
import pathlib
import platform
import sys
import time
import warnings

import keras
import numpy as np

from keras_bioact import datasets, stats

__all__ = [
    "aggregate_robustness",
    "base_parser",
    "environment",
    "load_data",
    "make_optimizer",
    "parse_args",
    "plot_bars",
    "plot_curves",
    "plot_robustness",
    "progress",
    "robustness_tables",
    "set_seed",
    "split_validation",
    "tensorboard_callback",
    "train_classifier",
]


# ----------------------------------------------------------------------------------------------
# Arguments


def _floats(text):
    return [float(v) for v in text.replace(",", " ").split()]


def base_parser(
    description, *, epochs=20, batch_size=32, seeds=(0, 1, 2), optimizer="sgd", lr=0.05, out="recipe_out"
):
    """An `ArgumentParser` with the flags every recipe shares.

    Data: `--dataset` (`digits`, `fashion_mnist` or `idx:DIR` for any MNIST-format IDX
    directory, e.g. real MNIST), `--train-limit`, `--test-limit`, `--validation-fraction`.
    Training: `--epochs`, `--batch-size`, `--optimizer`, `--lr`, `--momentum`, `--seeds`.
    Robustness: `--noise`, `--fgsm-eps`, `--pgd-eps`, `--pgd-steps`, `--robustness-samples`. Output: `--out`,
    `--no-tensorboard`, `--verbose`. `--paper-scale` switches to the recipe's paper-size presets.
    """
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        default="digits",
        help="digits | fashion_mnist | idx:DIR (a directory of MNIST-format IDX files)",
    )
    g.add_argument("--train-limit", type=int, default=0, help="use only the first N training images (0: all)")
    g.add_argument("--test-limit", type=int, default=0, help="use only the first N test images (0: all)")
    g.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="per-epoch validation: this fraction of the training images, drawn with the run's seed and "
        "not trained on (the test set is scored once, after training)",
    )
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=epochs)
    g.add_argument("--batch-size", type=int, default=batch_size)
    g.add_argument("--optimizer", choices=("sgd", "adam"), default=optimizer)
    g.add_argument("--lr", type=float, default=lr, help="learning rate")
    g.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    g.add_argument("--seeds", type=int, nargs="+", default=list(seeds), help="one run per seed")
    g.add_argument(
        "--paper-scale",
        action="store_true",
        help="paper-size presets for every flag not given explicitly (slow; use a GPU)",
    )
    g = p.add_argument_group("robustness")
    g.add_argument(
        "--noise",
        type=float,
        nargs="*",
        default=[0.0, 0.1, 0.2, 0.3, 0.5],
        help="Gaussian input-noise standard deviations",
    )
    g.add_argument(
        "--fgsm-eps",
        type=float,
        nargs="*",
        default=[0.0, 0.01, 0.02, 0.05, 0.1],
        help="FGSM L-infinity radii",
    )
    g.add_argument(
        "--pgd-eps", type=float, nargs="*", default=[0.0, 0.01, 0.02, 0.05, 0.1], help="PGD L-infinity radii"
    )
    g.add_argument("--pgd-steps", type=int, default=10)
    g.add_argument(
        "--robustness-samples",
        type=int,
        default=1000,
        help="test images used for the noise/attack sweeps (0: all)",
    )
    g = p.add_argument_group("output")
    g.add_argument("--out", default=out, help="output directory (results.json, *.png, tensorboard/)")
    g.add_argument("--no-tensorboard", action="store_true", help="skip TensorBoard logs")
    g.add_argument("--verbose", type=int, default=0, help="keras fit verbosity")
    return p


def parse_args(parser, argv=None, paper_scale=None):
    """Parse `argv`; with `--paper-scale`, set each flag of `paper_scale` the user left at its default."""
    args = parser.parse_args(argv)
    if args.paper_scale and paper_scale:
        for key, value in paper_scale.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    if not args.seeds:
        parser.error("--seeds needs at least one seed")
    if args.lr <= 0:
        parser.error("--lr must be > 0")
    if not 0.0 < args.validation_fraction < 1.0:
        parser.error("--validation-fraction must be in (0, 1)")
    return args


# ----------------------------------------------------------------------------------------------
# Data, seeds, optimizers


def load_data(args, flatten=False):
    """Load `args.dataset`, apply the limits, add a channel axis (or flatten).

    Returns `(x_train, y_train), (x_test, y_test), info` with images `(N, H, W, 1)` (or
    `(N, H*W)` when `flatten`) and `info` a dict describing the data.
    """
    kwargs = {"seed": 0} if args.dataset == "digits" else {}
    (x_train, y_train), (x_test, y_test) = datasets.load(args.dataset, **kwargs)
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    if args.test_limit:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    shape = tuple(x_train.shape[1:])
    if flatten:
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    else:
        x_train, x_test = x_train[..., None], x_test[..., None]
    info = {
        "dataset": args.dataset,
        "image_shape": list(shape),
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        "n_classes": int(max(y_train.max(), y_test.max()) + 1),
    }
    return (x_train, y_train), (x_test, y_test), info


def set_seed(seed):
    """Seed Python, NumPy and the Keras backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(int(seed))


def make_optimizer(args):
    if args.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=args.lr, momentum=args.momentum)
    return keras.optimizers.Adam(learning_rate=args.lr)


def tensorboard_callback(args, *parts):
    """A `keras.callbacks.TensorBoard` writing to `OUT/tensorboard/<parts...>`, or None when disabled.

    TensorBoard logging needs TensorFlow installed (whatever the Keras backend).
    """
    if args.no_tensorboard:
        return None
    log_dir = pathlib.Path(args.out, "tensorboard", *[str(p) for p in parts])
    return keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0)


def progress(iterable, total=None, desc=None):
    """tqdm progress bar when tqdm is installed (to stderr), else the plain iterable."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)


# ----------------------------------------------------------------------------------------------
# Training and evaluation


def split_validation(train, fraction, seed):
    """`(fit, val)`: a random `fraction` of the `(x, y)` training examples (at least one), drawn with
    `seed`, held out as `val`; the rest, in their original order, is `fit`."""
    x, y = train
    order = np.random.default_rng(int(seed)).permutation(len(x))
    n_val = max(1, int(round(len(x) * fraction)))
    val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (x[fit], y[fit]), (x[val], y[val])


def train_classifier(model, train, test, args, seed, callbacks=()):
    """Compile (sparse CE on logits) and fit `model`, then score it once on `test`.

    The per-epoch validation curve is measured on `split_validation(train, args.validation_fraction,
    seed)`, which is not trained on; the test set plays no part in training. Returns a dict with the
    per-epoch `history` (`loss`, `accuracy`, `val_loss`, `val_accuracy`), `test_accuracy`,
    `test_error`, `test_loss`, `final_train_loss`, `mean_train_loss` and `train_time_s`.
    Non-finite losses are kept as `nan` (a diverged run is reported, not hidden).
    """
    model.compile(
        optimizer=make_optimizer(args),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callbacks = [c for c in callbacks if c is not None]
    fit, val = split_validation(train, args.validation_fraction, seed)
    start = time.perf_counter()
    hist = model.fit(
        *fit,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=val,
        callbacks=callbacks,
        verbose=args.verbose,
        shuffle=True,
    )
    elapsed = time.perf_counter() - start
    history = {k: [_finite_or_nan(v) for v in vals] for k, vals in hist.history.items()}
    scores = model.evaluate(*test, batch_size=args.batch_size, verbose=0, return_dict=True)
    test_acc = float(scores["accuracy"])
    return {
        "history": history,
        "test_loss": _finite_or_nan(scores["loss"]),
        "test_accuracy": test_acc,
        "test_error": 1.0 - test_acc,
        "final_train_loss": history["loss"][-1],
        "mean_train_loss": float(np.mean(history["loss"])),
        "train_time_s": elapsed,
    }


def _finite_or_nan(v):
    v = float(v)
    return v if math.isfinite(v) else float("nan")


def robustness_tables(model, test, args):
    """Noise/FGSM/PGD sweeps of `keras_bioact.robustness` on (a prefix of) the test set, as dicts."""
    from keras_bioact import robustness

    x, y = test
    if args.robustness_samples:
        x, y = x[: args.robustness_samples], y[: args.robustness_samples]
    tables = robustness.evaluate(
        model,
        x,
        y,
        noise=args.noise,
        fgsm_eps=args.fgsm_eps,
        pgd_eps=args.pgd_eps,
        pgd_steps=args.pgd_steps,
        seed=0,
        from_logits=True,
    )
    return {name: t.to_dict() for name, t in tables.items()}


def aggregate_robustness(per_seed):
    """Mean and sample std (`keras_bioact.stats.mean_std`) over seeds of `robustness_tables` results.

    Returns `{attack: {"strengths": [...], "mean": [...], "std": [...]}}`.
    """
    out = {}
    if not per_seed:
        return out
    for attack in per_seed[0]:
        columns = zip(*(r[attack]["accuracies"] for r in per_seed), strict=True)
        ms = [stats.mean_std(c) for c in columns]
        out[attack] = {
            "strengths": list(per_seed[0][attack]["strengths"]),
            "mean": [m for m, _ in ms],
            "std": [s for _, s in ms],
        }
    return out


# ----------------------------------------------------------------------------------------------
# Records


def environment():
    """Backend, versions and host facts recorded in every results.json."""
    return {
        "keras_backend": keras.backend.backend(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# ----------------------------------------------------------------------------------------------
# Plots (matplotlib, Agg)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(curves, path, title="", ylabel="training loss", xlabel="epoch", logy=True):
    """Mean ± sample std band over seeds per label. `curves`: `{label: [per-seed list of values]}`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, runs in curves.items():
        arr = np.array(runs, dtype=float)
        with warnings.catch_warnings():  # one seed, or an all-diverged epoch: no band there
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(arr, axis=0), np.nanstd(arr, axis=0, ddof=1)
        epochs = np.arange(1, arr.shape[1] + 1)
        (line,) = ax.plot(epochs, mean, label=label)
        ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize="small", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(values, path, title="", ylabel="test error (%)", scale=100.0):
    """Bar chart of mean ± sample std over seeds per label. `values`: `{label: [per-seed values]}`."""
    plt = _pyplot()
    labels = list(values)
    ms = [stats.mean_std([v * scale for v in values[k] if v is not None]) for k in labels]
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(labels) + 2), 4))
    ax.bar(range(len(labels)), [m for m, _ in ms], yerr=[s for _, s in ms], capsize=3, color="tab:blue")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize="small")
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_robustness(summaries, path, title=""):
    """Accuracy vs strength, one panel per attack. `summaries`: `{label: aggregate_robustness(...)}`."""
    plt = _pyplot()
    attacks = sorted({a for s in summaries.values() for a in s}, key=["gaussian_noise", "fgsm", "pgd"].index)
    if not attacks:
        return None
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.5 * len(attacks), 4), squeeze=False)
    for ax, attack in zip(axes[0], attacks, strict=True):
        for label, summary in summaries.items():
            if attack not in summary:
                continue
            t = summary[attack]
            ax.errorbar(t["strengths"], t["mean"], yerr=t["std"], label=label, marker="o", ms=3, capsize=2)
        xlabel = "sigma" if attack == "gaussian_noise" else "eps (L-inf)"
        ax.set(title=attack, xlabel=xlabel, ylabel="accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="x-small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
