"""Bounded-time paper-scale run of an adaptive-RNN recipe, recording throughput and accuracy so far.

Trains one model of `recipes/adaptive_rnn.py` (default: the ANRU) at the papers' psMNIST size —
permuted pixel-by-pixel sequences of 784 steps (Fashion-MNIST here, or MNIST via `--dataset
idx:DIR`), 400 units, controller 50, Adam 1e-4, batch 100, `CheckpointedRNN` segments of 28 —
for `--max-seconds` of training after the first (compiling) batch, then evaluates on
`--eval-samples` test sequences. Writes a JSON (default
`recipes/results/paper_scale/<model>-<backend>-<platform>.json`) with the configuration, the
device, the first batch's time (tracing + compilation), steady-state throughput (batches, samples
and time steps per second, over the batches after the first), the training loss/accuracy so far
and the test accuracy.

    bash scripts/paper_scale.sh anru                      # 600 s budget, CPU or whatever JAX finds
    bash scripts/paper_scale.sh anru --max-seconds 120    # shorter
"""

import argparse
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(ROOT))

from recipes import adaptive_rnn as rnn  # noqa: E402
from recipes.common.run_results import backend_versions, write_json_atomic  # noqa: E402


def parse_args(argv=None):
    models = ("relu", "gamma_hom", "gamma_het", "anru", "lstm")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default="anru", choices=models)
    p.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="training wall-time budget, counted after the first (compiling) batch",
    )
    p.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist | digits | idx:DIR")
    p.add_argument("--no-permute", action="store_true", help="sequential instead of permuted order")
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--controller", type=int, default=50)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--segments", type=int, default=28, help="CheckpointedRNN segment length (0: plain RNN)")
    p.add_argument("--train-limit", type=int, default=0, help="use only the first N training sequences")
    p.add_argument("--eval-samples", type=int, default=1000, help="test sequences for the accuracy so far")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (default under recipes/results/paper_scale/)")
    args = p.parse_args(argv)
    if not args.max_seconds > 0:
        p.error(f"--max-seconds must be > 0, got {args.max_seconds}")
    for name in ("units", "controller", "batch", "eval_samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.segments < 0 or args.train_limit < 0:
        p.error("--segments and --train-limit must be >= 0")
    return args


def device_info():
    """Backend, platform (cpu/gpu/tpu) and device names the Keras backend computes on."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = jax.devices()
        return {
            "backend": backend,
            "platform": devices[0].platform,
            "devices": [str(getattr(d, "device_kind", d)) for d in devices],
        }
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return {"backend": backend, "platform": "gpu", "devices": [torch.cuda.get_device_name(0)]}
        return {"backend": backend, "platform": "cpu", "devices": ["cpu"]}
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "backend": backend,
        "platform": "gpu" if gpus else "cpu",
        "devices": [g.name for g in gpus] or ["cpu"],
    }


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    recipe_args = argparse.Namespace(
        dataset=args.dataset,
        permute=not args.no_permute,
        rows=False,  # pixel by pixel, as the papers
        pool=None,  # every one of the 784 pixels
        seed=args.seed,
        units=args.units,
        controller=args.controller,
        segments=args.segments or None,
        max_train=args.train_limit or None,
        max_test=args.eval_samples,
    )
    (xtr, ytr), (xte, yte) = rnn.load_data(recipe_args)
    steps = int(xtr.shape[1])
    keras.utils.set_random_seed(args.seed)
    model = rnn.build(args.model, recipe_args, steps)
    model.compile(
        keras.optimizers.Adam(args.lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=keras.backend.backend() != "torch" or None,
    )

    class Budget(keras.callbacks.Callback):
        """Stops training once the wall-time budget is spent; times every batch."""

        def __init__(self):
            super().__init__()
            self.times, self.logs, self.start = [], [], None

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())
            self.logs.append({k: float(v) for k, v in (logs or {}).items()})
            # The budget starts after the first batch, which includes tracing and compilation.
            if self.times[-1] - self.times[0] >= args.max_seconds:
                self.model.stop_training = True

    budget = Budget()
    epochs = 10_000  # bounded by the budget, not by epochs
    model.fit(xtr, ytr, batch_size=args.batch, epochs=epochs, callbacks=[budget], verbose=0, shuffle=True)
    train_s = budget.times[-1] - budget.start
    n_batches = len(budget.times)
    compile_s = budget.times[0] - budget.start
    steady = {}
    if n_batches >= 2:
        dt = budget.times[-1] - budget.times[0]
        bps = (n_batches - 1) / dt if dt > 0 else float("nan")
        steady = {
            "batches_per_s": bps,
            "samples_per_s": bps * args.batch,
            "steps_per_s": bps * args.batch * steps,
            "measured_batches": n_batches - 1,
        }
    t0 = time.perf_counter()
    logits = model.predict(xte, batch_size=max(args.batch, 256), verbose=0)
    eval_s = time.perf_counter() - t0
    test_acc = float(np.mean(np.argmax(logits, -1) == yte))
    last = budget.logs[-1]
    stride = max(1, n_batches // 50)
    result = {
        "recipe": "paper_scale",
        "model": args.model,
        "config": vars(args) | {"steps": steps, "permute": not args.no_permute, "n_train": int(len(xtr))},
        "device": device_info(),
        "params": int(model.count_params()),
        "budget_s": args.max_seconds,
        "train_s": train_s,
        "first_batch_s": compile_s,
        "batches": n_batches,
        "samples_seen": n_batches * args.batch,
        "epochs_done": n_batches * args.batch / len(xtr),
        "throughput": steady,
        "train_loss_so_far": last.get("loss"),
        "train_accuracy_so_far": last.get("accuracy"),
        "loss_curve": [[i + 1, budget.logs[i].get("loss")] for i in range(0, n_batches, stride)],
        "test_accuracy": test_acc,
        "test_samples": int(len(xte)),
        "eval_s": eval_s,
        "environment": {"versions": backend_versions(), "argv": list(sys.argv), "cpu_count": os.cpu_count()},
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    dev = result["device"]
    out = (
        args.out
        or ROOT
        / "recipes"
        / "results"
        / "paper_scale"
        / f"{args.model}-{dev['backend']}-{dev['platform']}.json"
    )
    write_json_atomic(out, result)
    sps = steady.get("samples_per_s", float("nan"))
    print(
        f"{args.model} on {dev['platform']} ({dev['backend']}): {n_batches} batches in {train_s:.1f} s "
        f"(first batch {compile_s:.1f} s), {sps:.2f} samples/s, {sps * steps:.0f} steps/s; "
        f"train loss {last.get('loss')}, test accuracy {test_acc:.3f} on {len(xte)}; wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
