"""Benchmark: two-argument MLP vs parameter-matched ReLU MLP, and the inner-MLP contraction.

1. Train-step time (median over `--steps` calls of `train_on_batch`, after warm-up) of SPEC's
   MNIST-sized pair: 2-arg MLP 784 -> [120, 120, 120] pre-activations (60 units each, one shared
   g 2-64-64-1) -> 10, 113,867 parameters, vs ReLU MLP 784 -> [112, 112, 112] -> 10, 114,362
   parameters; batch 100, Adam, dropout 0.5, `jit_compile=True`.
2. Achieved GFLOP/s of evaluating g on `(pairs, 2)` (one batched contraction per layer) vs one
   square matmul with the same FLOP count, both compiled (jax.jit / tf.function(jit_compile=True)).

Each backend runs in its own subprocess (the Keras backend is fixed at import).

    PYTHONPATH=. python benchmarks/two_arg.py                      # tensorflow and jax
    PYTHONPATH=. python benchmarks/two_arg.py --backends jax --steps 50
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _contraction_fns(backend, g, z, a):
    """Compiled callables: g on `z` (pairs, 2), and `a @ a`; both block until done."""
    if backend == "jax":
        import jax

        values = [v.value for v in g.trainable_variables]
        inner_fn = jax.jit(lambda vals, t: g.stateless_call(vals, [], t)[0])
        mm = jax.jit(lambda p: p @ p)
        return (lambda: inner_fn(values, z).block_until_ready()), (lambda: mm(a).block_until_ready())
    if backend == "tensorflow":
        import tensorflow as tf

        inner_fn = tf.function(lambda t: g(t), jit_compile=True)
        mm = tf.function(lambda p: tf.matmul(p, p), jit_compile=True)
        zt, at = tf.constant(z), tf.constant(a)
        return (lambda: inner_fn(zt).numpy()), (lambda: mm(at).numpy())
    import torch

    zt, at = torch.from_numpy(z), torch.from_numpy(a)
    return (lambda: g(zt).detach()), (lambda: at @ at)


def worker(args):
    import keras
    import numpy as np

    from keras_bioact import nin
    from keras_bioact.layers import InnerNonlinearity

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 784), dtype="float32")
    y = rng.integers(0, 10, args.batch)
    result = {"backend": backend, "train_step_ms": {}, "params": {}}
    relu_widths = nin.param_matched_relu_widths(784, [120, 120, 120], 10)
    models = {
        "2-arg MLP": nin.two_arg_mlp((784,), [120, 120, 120], 10, dropout=0.5),
        "ReLU MLP": nin.relu_mlp((784,), relu_widths, 10, dropout=0.5),
    }
    for name, model in models.items():
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        for _ in range(5):
            model.train_on_batch(x, y)
        result["train_step_ms"][name] = 1e3 * _median_time(lambda m=model: m.train_on_batch(x, y), args.steps)
        result["params"][name] = int(model.count_params())

    # Inner-MLP contraction vs a plain matmul of the same FLOPs.
    g = InnerNonlinearity()
    g.build((None, 2))
    sizes = g.sizes
    macs_per_pair = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    result["contraction"] = []
    for pairs in args.pairs:
        z = rng.normal(size=(pairs, 2)).astype("float32")
        flops = 2 * pairs * macs_per_pair
        n = max(8, round((flops / 2) ** (1 / 3)))
        a = rng.normal(size=(n, n)).astype("float32")
        run_inner, run_mm = _contraction_fns(backend, g, z, a)
        for fn in (run_inner, run_mm):
            for _ in range(3):
                fn()
        t_inner = _median_time(run_inner, args.repeats)
        t_mm = _median_time(run_mm, args.repeats)
        result["contraction"].append(
            {
                "pairs": pairs,
                "flops": flops,
                "inner_ms": 1e3 * t_inner,
                "inner_gflops": flops / t_inner / 1e9,
                "matmul_n": n,
                "matmul_ms": 1e3 * t_mm,
                "matmul_gflops": 2 * n**3 / t_mm / 1e9,
            }
        )
    print("RESULT " + json.dumps(result))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=30, help="timed train steps per model")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per contraction size")
    p.add_argument(
        "--pairs", type=int, nargs="+", default=[6000, 60000], help="(unit, sample) pairs fed to g"
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    results = []
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, __file__, "--worker", "--batch", str(args.batch), "--steps", str(args.steps)]
        cmd += ["--repeats", str(args.repeats), "--pairs", *map(str, args.pairs)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{backend}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
            continue
        results.append(json.loads(lines[-1][len("RESULT ") :]))

    print(f"\nTrain step, batch {args.batch}, jit_compile=True (median of {args.steps} steps)\n")
    print("| backend | 2-arg MLP (params) | ReLU MLP (params) | ms/step 2-arg | ms/step ReLU | ratio |")
    print("|---|---|---|---|---|---|")
    for r in results:
        t2, tr = r["train_step_ms"]["2-arg MLP"], r["train_step_ms"]["ReLU MLP"]
        label = "tensorflow (XLA)" if r["backend"] == "tensorflow" else r["backend"]
        print(
            f"| {label} | {r['params']['2-arg MLP']:,} | {r['params']['ReLU MLP']:,} | {t2:.2f} | {tr:.2f} "
            f"| {t2 / tr:.2f}x |"
        )
    print("\nInner MLP g (2-64-64-1) on (pairs, 2) vs square matmul of equal FLOPs (compiled)\n")
    print(
        "| backend | pairs | MFLOP | g ms | g GFLOP/s | matmul n | matmul ms | matmul GFLOP/s | g / matmul |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for c in r["contraction"]:
            print(
                f"| {r['backend']} | {c['pairs']:,} | {c['flops'] / 1e6:.1f} | {c['inner_ms']:.3f} "
                f"| {c['inner_gflops']:.1f} | {c['matmul_n']} | {c['matmul_ms']:.3f} "
                f"| {c['matmul_gflops']:.1f} "
                f"| {c['inner_gflops'] / c['matmul_gflops']:.2f} |"
            )


if __name__ == "__main__":
    main()
