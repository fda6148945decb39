"""Adaptive RNNs on sequential images, and their robustness to input/drive perturbations.

Trains five recurrent classifiers on pixel-by-pixel image sequences (SPEC sections 1.3, 3.2):
RNN+ReLU, RNN+gamma homogeneous (one learned (n, s)), RNN+gamma heterogeneous (learned
(n_i, s_i) per neuron), the ANRU (adaptive (n_t, s_t) from a shared controller) and an LSTM
baseline. It then evaluates each trained model under two perturbations, across a sweep of
strengths, without retraining:

* step drive: a constant `xi` added to every pre-activation for a window of steps
  (`PreactivationDrive`; window scaled from the authors' steps 200-400 of 784). The LSTM has
  no gamma pre-activation to drive and is reported as n/a.
* sinusoidal input rescaling: `x_t * (1 + A sin(2 pi t / T))` (`SinusoidalRescaling`).

Prints a table, saves `accuracy_vs_strength.png` and `results.json` under `--out`.

CPU default (a few minutes; sequential 8x8 digits, 64 steps, 32 units):
    PYTHONPATH=. KERAS_BACKEND=jax python recipes/adaptive_rnn.py --out runs/adaptive_rnn
Permuted: add `--permute`; row by row (one image row per step, T = 28 on Fashion-MNIST): `--rows`;
shorter pixel sequences: `--pool 2` (2x2 average pooling first, T = 196 on Fashion-MNIST).
`--seeds S1 S2 ...` trains every model once per seed (seed-major); `--results DIR` also writes one
run file per (model, seed) (`recipes.common.run_results`, read by `recipes/report.py`: clean test
accuracy, training curves, the robustness sweeps, and the accuracy drops at the largest step drive
and sinusoidal amplitude) and skips the runs already there. Paper scale (psMNIST-like on
Fashion-MNIST, 784 steps, 400 units, controller 50, Adam 1e-4, batch 100; hours to days on CPU):
    python recipes/adaptive_rnn.py --full --out runs/adaptive_rnn_full
"""

import argparse
import json
import os
import pathlib
import sys
import time

if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from recipes.common.run_results import RunStore  # noqa: E402

MODELS = ("relu", "gamma_hom", "gamma_het", "anru", "lstm")
LABELS = {
    "relu": "RNN+ReLU",
    "gamma_hom": "RNN+gamma homog.",
    "gamma_het": "RNN+gamma heterog.",
    "anru": "ANRU",
    "lstm": "LSTM",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", help="digits (64 steps) or fashion_mnist (784 steps)")
    p.add_argument("--permute", action="store_true", help="fixed random permutation of the steps (seed 400)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    p.add_argument("--units", type=int, default=32)
    p.add_argument("--controller", type=int, default=8, help="ANRU controller units per neuron")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-train", type=int, default=None, help="use at most this many training examples")
    p.add_argument("--max-test", type=int, default=None, help="evaluate on at most this many test examples")
    p.add_argument("--drive", default="0,0.5,1,2.5,5,10", help="step-drive strengths xi")
    p.add_argument("--sin", default="0,0.25,0.5,0.75,1", help="sinusoidal rescaling amplitudes A")
    p.add_argument("--segments", type=int, default=None, help="CheckpointedRNN segment length for the ANRU")
    p.add_argument(
        "--full",
        action="store_true",
        help="paper scale: fashion_mnist, 400 units, controller 50, 100 epochs, batch 100, lr 1e-4",
    )
    p.add_argument("--rows", action="store_true", help="row by row: one image row per step (T = height)")
    p.add_argument(
        "--pool",
        type=int,
        default=None,
        help="average-pool the images in K x K blocks first (K = 2 on Fashion-MNIST: 196 pixel steps)",
    )
    p.add_argument("--seed", type=int, default=0, help="data seed (digits split) and the model seed")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="model seeds (default: --seed)")
    p.add_argument("--results", default=None, help="write one run file per (model, seed) under RESULTS")
    p.add_argument("--out", default="runs/adaptive_rnn")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.full:
        args.dataset, args.units, args.controller = "fashion_mnist", 400, 50
        args.epochs, args.batch, args.lr = 100, 100, 1e-4
        args.segments = args.segments or 28
        args.drive = "0,0.5,1,2.5,5,7.5,10,15,20,30"
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"--models: unknown {unknown}; choose from {MODELS}")
    args.models = models
    if args.rows and args.permute:
        p.error("--rows and --permute: permute the pixel sequence or read rows, not both")
    if args.pool is not None and args.pool < 1:
        p.error(f"--pool must be an integer >= 1, got {args.pool}")
    args.seeds = args.seeds or [args.seed]
    args.drive = [float(v) for v in args.drive.split(",")]
    args.sin = [float(v) for v in args.sin.split(",")]
    return args


def load_data(args):
    from keras_bioact import datasets

    if args.dataset == "digits":
        (xtr, ytr), (xte, yte) = datasets.load_digits(seed=args.seed)
    else:
        (xtr, ytr), (xte, yte) = datasets.load(args.dataset)
    if args.pool:
        xtr, xte = (datasets.pool_images(x, args.pool) for x in (xtr, xte))
    if args.rows:  # (N, H, W) images: H steps of W pixels
        xtr, xte = (x.reshape(len(x), -1, x.shape[-1]).astype("float32") for x in (xtr, xte))
    else:
        xtr = datasets.sequential(xtr, permute=args.permute)
        xte = datasets.sequential(xte, permute=args.permute)
    if args.max_train:
        xtr, ytr = xtr[: args.max_train], ytr[: args.max_train]
    if args.max_test:
        xte, yte = xte[: args.max_test], yte[: args.max_test]
    return (xtr, ytr), (xte, yte)


def make_rnn(kind, args, drive_input=False):
    import keras

    from keras_bioact.layers import ANRUCell, CheckpointedRNN, GammaRNNCell

    if kind == "lstm":
        return keras.layers.LSTM(args.units, name="rnn")
    if kind == "relu":
        cell = GammaRNNCell(args.units, activation="relu", drive_input=drive_input)
    elif kind == "gamma_hom":
        cell = GammaRNNCell(args.units, regime="homogeneous", drive_input=drive_input)
    elif kind == "gamma_het":
        cell = GammaRNNCell(args.units, regime="heterogeneous", drive_input=drive_input)
    else:
        cell = ANRUCell(args.units, args.controller, drive_input=drive_input, remat=bool(args.segments))
        if args.segments:
            return CheckpointedRNN(cell, segment_length=args.segments, name="rnn")
    return keras.layers.RNN(cell, name="rnn")


def build(kind, args, steps, perturbed=False, features=1):
    """Classifier; with `perturbed`, sinusoidal rescaling and a step drive are inserted."""
    import keras

    from keras_bioact.layers import PreactivationDrive, SinusoidalRescaling

    inputs = keras.Input((steps, features))
    x = inputs
    if perturbed:
        x = SinusoidalRescaling(0.0, name="sin")(x)
        if kind != "lstm":
            start, length = round(steps * 200 / 784), round(steps * 200 / 784)
            x = PreactivationDrive(args.units, "step", 0.0, start=start, length=length, name="drive")(x)
    h = make_rnn(kind, args, drive_input=perturbed and kind != "lstm")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="readout")(h), name=kind)


def train(kind, args, data, seed):
    import keras

    (xtr, ytr), _ = data
    keras.utils.set_random_seed(seed)
    model = build(kind, args, xtr.shape[1], features=xtr.shape[2])
    model.compile(
        keras.optimizers.Adam(args.lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=keras.backend.backend() != "torch" or None,
    )
    t0 = time.perf_counter()
    history = model.fit(xtr, ytr, epochs=args.epochs, batch_size=args.batch, verbose=0, shuffle=True)
    return model, history.history, time.perf_counter() - t0


def accuracy(model, x, y, batch):
    import numpy as np

    logits = model.predict(x, batch_size=max(batch, 256), verbose=0)
    return float(np.mean(np.argmax(logits, -1) == y))


def evaluate(kind, model, args, data):
    _, (xte, yte) = data
    evaluator = build(kind, args, xte.shape[1], perturbed=True, features=xte.shape[2])
    for name in ("rnn", "readout"):
        evaluator.get_layer(name).set_weights(model.get_layer(name).get_weights())
    sin = evaluator.get_layer("sin")
    results = {"clean": accuracy(model, xte, yte, args.batch), "step_drive": {}, "sinusoidal": {}}
    if kind != "lstm":
        drive = evaluator.get_layer("drive")
        for xi in args.drive:
            drive.strength.assign(xi)
            results["step_drive"][str(xi)] = accuracy(evaluator, xte, yte, args.batch)
        drive.strength.assign(0.0)
    for amp in args.sin:
        sin.amplitude.assign(amp)
        results["sinusoidal"][str(amp)] = accuracy(evaluator, xte, yte, args.batch)
    return results


def summary(model, kind):
    """Learned activation parameters (mean n, s) for the gamma models."""
    import numpy as np
    from keras import ops

    cell = getattr(model.get_layer("rnn"), "cell", None)
    if kind in ("gamma_hom", "gamma_het"):
        n = np.asarray(ops.convert_to_numpy(cell.n))
        s = np.asarray(ops.convert_to_numpy(cell.s))
        return {"n_mean": float(n.mean()), "s_mean": float(s.mean())}
    return {}


# Flags that define the protocol of one run; a stored run made with other values is not reused.
PROTOCOL_KEYS = (
    "dataset", "permute", "rows", "units", "controller", "epochs", "batch", "lr", "max_train", "max_test",
    "drive", "sin", "segments", "seed", "pool",
)  # fmt: skip


def _setting(args, data):
    steps = data[0][0].shape[1]
    return f"{args.dataset}-{'rows' if args.rows else 'pixels'}{steps}{'-permuted' if args.permute else ''}"


def _store(args):
    if not args.results:
        return None
    return RunStore(args.results, "adaptive_rnn", {k: getattr(args, k) for k in PROTOCOL_KEYS})


def _save(store, setting, kind, r, history, args, seconds):
    """One run file; the robustness claims' metrics are the accuracy drops at the largest strengths."""
    import numpy as np

    metrics = {
        "test_accuracy": r["clean"],
        "test_error": 1.0 - r["clean"],
        "final_train_loss": r["final_train_loss"],
        "mean_train_loss": float(np.mean(history["loss"])),
        "final_train_accuracy": r["final_train_accuracy"],
        "train_time_s": r["train_seconds"],
        "sin_accuracy_drop": r["clean"] - r["sinusoidal"][str(max(args.sin))],
    }
    if r["step_drive"]:
        metrics["drive_accuracy_drop"] = r["clean"] - r["step_drive"][str(max(args.drive))]
    arch = f"RNN+ReLU, gamma RNNs, ANRU (controller {args.controller}) and LSTM, {args.units} units each"
    if args.pool:
        arch += f"; images average-pooled in {args.pool}x{args.pool} blocks first"
    extra = {"dataset": args.dataset, "architecture": arch, "params": r["params"], "record": r}
    curves = {k: [float(v) for v in vals] for k, vals in history.items()}
    store.save(setting, kind, r["seed"], metrics=metrics, curves=curves, wall_time_s=seconds, extra=extra)


def _mean_over_seeds(rs):
    """The per-seed result dicts averaged (clean accuracy and every sweep point) for the table."""
    import numpy as np

    out = {"clean": float(np.mean([r["clean"] for r in rs]))}
    for sweep in ("step_drive", "sinusoidal"):
        out[sweep] = {k: float(np.mean([r[sweep][k] for r in rs])) for k in rs[0][sweep]}
    return out


def table(args, results):
    lines = []
    head = f"{'model':<20} {'clean':>6} | " + " ".join(f"xi={v:<5g}" for v in args.drive)
    head += " | " + " ".join(f"A={v:<5g}" for v in args.sin)
    lines.append(head)
    lines.append("-" * len(head))
    for kind, r in results.items():
        drive = " ".join(
            f"{r['step_drive'][str(v)]:8.3f}" if str(v) in r["step_drive"] else f"{'n/a':>8}"
            for v in args.drive
        )
        sin = " ".join(f"{r['sinusoidal'][str(v)]:7.3f}" for v in args.sin)
        lines.append(f"{LABELS[kind]:<20} {r['clean']:6.3f} | {drive} | {sin}")
    return "\n".join(lines)


def plot(args, results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for kind, r in results.items():
        if r["step_drive"]:
            axes[0].plot(args.drive, [r["step_drive"][str(v)] for v in args.drive], "o-", label=LABELS[kind])
        axes[1].plot(args.sin, [r["sinusoidal"][str(v)] for v in args.sin], "o-", label=LABELS[kind])
    axes[0].set(xlabel="step drive strength xi", ylabel="test accuracy", title="Step drive (pre-activations)")
    axes[1].set(xlabel="sinusoidal amplitude A", ylabel="test accuracy", title="Sinusoidal input rescaling")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1)
    axes[1].legend()
    task = ("permuted " if args.permute else "") + f"sequential {args.dataset}"
    fig.suptitle(f"{task}, {args.units} units")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    import keras
    from tqdm.auto import tqdm

    data = load_data(args)
    os.makedirs(args.out, exist_ok=True)
    print(
        f"backend={keras.backend.backend()} dataset={args.dataset} permute={args.permute} "
        f"train={len(data[0][0])} test={len(data[1][0])} steps={data[0][0].shape[1]} units={args.units} "
        f"controller={args.controller} epochs={args.epochs} batch={args.batch} lr={args.lr}"
    )
    store, setting = _store(args), _setting(args, data)
    jobs = [(seed, kind) for seed in args.seeds for kind in args.models]  # seed-major
    runs = {kind: [] for kind in args.models}
    for seed, kind in tqdm(jobs, desc="models", disable=args.quiet):
        stored = store.existing(setting, kind, seed) if store else None
        if stored is not None:
            runs[kind].append(stored["record"])
            continue
        began = time.perf_counter()
        model, history, seconds = train(kind, args, data, seed)
        r = evaluate(kind, model, args, data)
        r.update(
            seed=seed,
            train_seconds=seconds,
            final_train_loss=float(history["loss"][-1]),
            final_train_accuracy=float(history["accuracy"][-1]),
            params=int(model.count_params()),
            **summary(model, kind),
        )
        runs[kind].append(r)
        if store:
            _save(store, setting, kind, r, history, args, time.perf_counter() - began)
        tqdm.write(
            f"{LABELS[kind]} seed {seed}: clean test accuracy {r['clean']:.3f} ({seconds:.0f} s training)"
        )
        keras.backend.clear_session()
    results = {kind: _mean_over_seeds(rs) for kind, rs in runs.items()}
    text = table(args, results)
    print(text)
    plot(args, results, os.path.join(args.out, "accuracy_vs_strength.png"))
    config = {k: v for k, v in vars(args).items()}
    config["backend"] = keras.backend.backend()
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"config": config, "results": results, "runs": runs, "table": text}, f, indent=2)
    print(f"wrote {args.out}/results.json and {args.out}/accuracy_vs_strength.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
