"""Benchmark: train step of a two-argument feed-forward block vs SwiGLU at the same parameter count.

One transformer feed-forward block on `(batch, tokens, width)` tokens (width 64, a ratio-4 budget
of 33,088 weights, the size of the transformer recipe's blocks), inside a model
`tokens -> block -> mean over tokens -> Dense(10)`; Adam, `jit_compile=True`, median of `--steps`
interleaved `train_on_batch` calls after warm-up. Blocks (hidden widths from
`keras_bioact.feed_forward.feed_forward_hidden`, each within 2 % of the budget):

* `swiglu`: `FeedForward(170, "silu", gated=True)` (the baseline of the ratio);
* `gelu`: `FeedForward(256, "gelu")`;
* `two_arg`: `TwoArgFeedForward(147)` with the default g 2 -> 64 -> 64 -> 1;
* `two_arg g16`: `TwoArgFeedForward` with a small g 2 -> 16 -> 1;
* `two_arg G4`: `TwoArgFeedForward(80, groups=4)` (4 default g's).

Each backend runs in its own subprocess (the Keras backend is fixed at import).

    PYTHONPATH=. python benchmarks/feed_forward.py                    # tensorflow and jax
    PYTHONPATH=. python benchmarks/feed_forward.py --backends jax --steps 50
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WIDTH, BUDGET = 64, 33088


def _blocks():
    from keras_bioact.feed_forward import feed_forward, feed_forward_hidden
    from keras_bioact.layers import InnerNonlinearity

    def h(kind, **kw):
        return feed_forward_hidden(kind, WIDTH, BUDGET, **kw)

    return {
        "swiglu": lambda: feed_forward("swiglu", h("swiglu")),
        "gelu": lambda: feed_forward("gelu", h("gelu")),
        "two_arg": lambda: feed_forward("two_arg", h("two_arg")),
        "two_arg g16": lambda: feed_forward(
            "two_arg", h("two_arg", inner_hidden=(16,)), inner=InnerNonlinearity(hidden_units=(16,))
        ),
        "two_arg G4": lambda: feed_forward("two_arg", h("two_arg", groups=4), groups=4),
    }


def worker(args):
    import keras
    import numpy as np

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.tokens, WIDTH)).astype("float32")
    y = rng.integers(0, 10, args.batch)
    result = {"backend": backend, "ms": {}, "params": {}, "hidden": {}}
    models = {}
    for name, make in _blocks().items():
        block = make()
        inputs = keras.Input((args.tokens, WIDTH))
        pooled = keras.layers.GlobalAveragePooling1D()(block(inputs))
        model = keras.Model(inputs, keras.layers.Dense(10)(pooled))
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        for _ in range(5):
            model.train_on_batch(x, y)
        models[name] = model
        result["params"][name] = int(block.count_params())
        result["hidden"][name] = int(block.hidden)
    times = {name: [] for name in models}
    for _ in range(args.steps):
        for name, model in models.items():
            t = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - t)
    result["ms"] = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print("RESULT " + json.dumps(result))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--steps", type=int, default=30, help="timed train steps per block")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    results = []
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, __file__, "--worker", "--batch", str(args.batch)]
        cmd += ["--tokens", str(args.tokens), "--steps", str(args.steps)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{backend}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
            continue
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    print(
        f"\nTrain step of one feed-forward block, width {WIDTH}, batch {args.batch} x {args.tokens} tokens, "
        f"jit_compile=True (median of {args.steps} interleaved steps each)\n"
    )
    print("| backend | block | hidden | params | ms/step | vs swiglu |")
    print("|---|---|---|---|---|---|")
    for r in results:
        label = "tensorflow (XLA)" if r["backend"] == "tensorflow" else r["backend"]
        base = r["ms"]["swiglu"]
        for name, ms in r["ms"].items():
            print(
                f"| {label} | {name} | {r['hidden'][name]} | {r['params'][name]:,} | {ms:.2f} "
                f"| {ms / base:.2f}x |"
            )


if __name__ == "__main__":
    main()
