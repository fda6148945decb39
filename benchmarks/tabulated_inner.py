"""Frozen two-argument g: the MLP `InnerNonlinearity((64, 64))` against `TabulatedInner`.

For each backend (one subprocess each) and each number of pairs, the median time of one
compiled evaluation of g (jax.jit / tf.function(jit_compile=True) / eager torch), MLP and table
timed interleaved (round-robin, so that load hits both alike), the speed-up against the 10x
target, and the table's measured max |error| on [-5, 5]^2.

    PYTHONPATH=. python benchmarks/tabulated_inner.py --backends jax tensorflow torch --pairs 6000 60000
    PYTHONPATH=. python benchmarks/tabulated_inner.py --backends torch --torch-threads 1
"""

import argparse
import json
import os
import subprocess
import sys
import time


def child(pairs, repeats, torch_threads):
    import keras
    import numpy as np

    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)

    from keras_bioact.layers import InnerNonlinearity, TabulatedInner

    keras.utils.set_random_seed(0)
    g = InnerNonlinearity(hidden_units=(64, 64))
    g.build((None, 2))
    fast = TabulatedInner.from_inner(g)
    backend = keras.backend.backend()

    def compiled(fn):
        if backend == "jax":
            import jax

            return jax.jit(fn)
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.function(fn, jit_compile=True)
        return fn

    def block(y):
        return keras.ops.convert_to_numpy(y)

    rows = []
    for n in pairs:
        x = keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=(n, 2)).astype("float32"))
        layers = (("mlp", g), ("table", fast))
        fns = {name: compiled(lambda x, layer=layer: layer(x)) for name, layer in layers}
        samples = {name: [] for name in fns}
        for fn in fns.values():
            block(fn(x))  # compile
            block(fn(x))
        for _ in range(repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                block(fn(x))
                samples[name].append(time.perf_counter() - t0)
        times = {name: sorted(s)[len(s) // 2] for name, s in samples.items()}
        rows.append(
            {"backend": backend, "pairs": n, "mlp_ms": 1e3 * times["mlp"], "table_ms": 1e3 * times["table"]}
        )
    print("RESULT " + json.dumps({"rows": rows, "max_error": fast.max_error}))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", nargs="*", default=["jax", "tensorflow", "torch"])
    parser.add_argument("--pairs", nargs="*", type=int, default=[6000, 60000])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (0: default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.pairs, args.repeats, args.torch_threads)
        return
    print(f"median of {args.repeats} interleaved calls each; target: speed-up >= 10x, error <= 1e-3\n")
    print("| backend | pairs | MLP g ms | table ms | speed-up | 10x target | max abs error on [-5, 5]^2 |")
    print("|---|---|---|---|---|---|---|")
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend}
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--repeats",
            str(args.repeats),
            "--pairs",
            *map(str, args.pairs),
            "--torch-threads",
            str(args.torch_threads),
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if not line:
            sys.exit(f"{backend} failed:\n{out.stderr[-3000:]}")
        result = json.loads(line[-1][len("RESULT ") :])
        label = backend
        if backend == "torch":
            threads = f", {args.torch_threads} intra-op thread(s)" if args.torch_threads else ""
            label += f" (eager{threads})"
        for r in result["rows"]:
            speedup = r["mlp_ms"] / r["table_ms"]
            verdict = "met" if speedup >= 10 else f"missed ({speedup / 10:.2f} of it)"
            print(
                f"| {label} | {r['pairs']:,} | {r['mlp_ms']:.3f} | {r['table_ms']:.3f} | "
                f"{speedup:.1f}x | {verdict} | {result['max_error']:.2e} |"
            )


if __name__ == "__main__":
    main()
