"""Benchmark: two-argument MLP vs parameter-matched ReLU MLP, and the inner-MLP contraction.

1. Train-step time (median over `--steps` interleaved calls of `train_on_batch`, after warm-up)
   of SPEC's MNIST-sized pair: 2-arg MLP 784 -> [120, 120, 120] pre-activations (60 units each, one shared
   g 2-64-64-1) -> 10, 113,867 parameters, vs ReLU MLP 784 -> [112, 112, 112] -> 10, 114,362
   parameters; batch 100, Adam, dropout 0.5, `jit_compile=True`.
2. Achieved GFLOP/s of evaluating g on `(pairs, 2)` (one 2-D matmul per layer) vs one square
   matmul with the same FLOP count, both compiled (jax.jit / tf.function(jit_compile=True)); and
   of g's forward + backward (gradients for g's weights and its inputs, 3x the forward FLOPs),
   what a train step pays. The three calls are timed interleaved (round-robin), so that load
   on the machine hits all of them alike.

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


def _interleaved_medians(fns, repeats):
    """Median seconds of each callable, timed round-robin (`repeats` rounds)."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, samples in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
    return [statistics.median(samples) for samples in times]


def _contraction_fns(backend, g, z, ct, a):
    """Callables that block until done: g on `z` (pairs, 2); the gradients of `sum(g(z) * ct)`
    for g's weights and `z`; and `a @ a`. Compiled on jax / tensorflow, eager on torch."""
    if backend == "jax":
        import jax

        values = [v.value for v in g.trainable_variables]
        inner_fn = jax.jit(lambda vals, t: g.stateless_call(vals, [], t)[0])

        def loss(vals, t, c):
            return (g.stateless_call(vals, [], t)[0] * c).sum()

        grad_fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
        mm = jax.jit(lambda p: p @ p)
        return (
            lambda: inner_fn(values, z).block_until_ready(),
            lambda: jax.block_until_ready(grad_fn(values, z, ct)),
            lambda: mm(a).block_until_ready(),
        )
    if backend == "tensorflow":
        import tensorflow as tf

        inner_fn = tf.function(lambda t: g(t), jit_compile=True)
        mm = tf.function(lambda p: tf.matmul(p, p), jit_compile=True)
        zt, ctt, at = tf.constant(z), tf.constant(ct), tf.constant(a)

        @tf.function(jit_compile=True)
        def grad_fn(t, c):
            with tf.GradientTape() as tape:
                tape.watch(t)
                loss = tf.reduce_sum(g(t) * c)
            return tape.gradient(loss, [*g.trainable_variables, t])

        return (
            lambda: inner_fn(zt).numpy(),
            lambda: [v.numpy() for v in grad_fn(zt, ctt)],
            lambda: mm(at).numpy(),
        )
    import torch

    zt, ctt, at = torch.from_numpy(z), torch.from_numpy(ct), torch.from_numpy(a)

    def grad_fn():
        t = zt.clone().requires_grad_()
        return torch.autograd.grad((g(t) * ctt).sum(), [v.value for v in g.trainable_variables] + [t])

    return (lambda: g(zt).detach()), grad_fn, (lambda: at @ at)


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
        result["params"][name] = int(model.count_params())
    steps = [lambda m=model: m.train_on_batch(x, y) for model in models.values()]
    for name, t in zip(models, _interleaved_medians(steps, args.steps), strict=True):
        result["train_step_ms"][name] = 1e3 * t

    # Inner-MLP contraction vs a plain matmul of the same FLOPs.
    g = InnerNonlinearity()
    g.build((None, 2))
    sizes = g.sizes
    macs_per_pair = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    result["contraction"] = []
    for pairs in args.pairs:
        z = rng.normal(size=(pairs, 2)).astype("float32")
        ct = rng.normal(size=(pairs, 1)).astype("float32")
        flops = 2 * pairs * macs_per_pair
        n = max(8, round((flops / 2) ** (1 / 3)))
        a = rng.normal(size=(n, n)).astype("float32")
        fns = _contraction_fns(backend, g, z, ct, a)
        for fn in fns:
            for _ in range(3):
                fn()
        t_inner, t_grad, t_mm = _interleaved_medians(fns, args.repeats)
        result["contraction"].append(
            {
                "pairs": pairs,
                "flops": flops,
                "inner_ms": 1e3 * t_inner,
                "inner_gflops": flops / t_inner / 1e9,
                "grad_ms": 1e3 * t_grad,
                "grad_gflops": 3 * flops / t_grad / 1e9,
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

    print(
        f"\nTrain step, batch {args.batch}, jit_compile=True "
        f"(median of {args.steps} interleaved steps each)\n"
    )
    print("| backend | 2-arg MLP (params) | ReLU MLP (params) | ms/step 2-arg | ms/step ReLU | ratio |")
    print("|---|---|---|---|---|---|")
    for r in results:
        t2, tr = r["train_step_ms"]["2-arg MLP"], r["train_step_ms"]["ReLU MLP"]
        label = "tensorflow (XLA)" if r["backend"] == "tensorflow" else r["backend"]
        print(
            f"| {label} | {r['params']['2-arg MLP']:,} | {r['params']['ReLU MLP']:,} | {t2:.2f} | {tr:.2f} "
            f"| {t2 / tr:.2f}x |"
        )
    print(
        "\nInner MLP g (2-64-64-1) on (pairs, 2) vs square matmul of equal FLOPs "
        f"(compiled except torch; medians of {args.repeats} interleaved rounds)\n"
    )
    print(
        "| backend | pairs | MFLOP | g ms | g GFLOP/s | matmul n | matmul ms | matmul GFLOP/s "
        "| **g / matmul** | g fwd+bwd ms | fwd+bwd GFLOP/s | **fwd+bwd / matmul** |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for c in r["contraction"]:
            print(
                f"| {r['backend']} | {c['pairs']:,} | {c['flops'] / 1e6:.1f} | {c['inner_ms']:.3f} "
                f"| {c['inner_gflops']:.1f} | {c['matmul_n']} | {c['matmul_ms']:.3f} "
                f"| {c['matmul_gflops']:.1f} | {c['inner_gflops'] / c['matmul_gflops']:.2f} "
                f"| {c['grad_ms']:.3f} | {c['grad_gflops']:.1f} "
                f"| {c['grad_gflops'] / c['matmul_gflops']:.2f} |"
            )


if __name__ == "__main__":
    main()
