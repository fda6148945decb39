"""Frozen two-argument g: the MLP `InnerNonlinearity((64, 64))` against `TabulatedInner`.

For each backend (one subprocess each) and each number of pairs, the median time of one
compiled evaluation of g (jax.jit / tf.function(jit_compile=True) / eager torch) and the
table's measured max |error| on [-5, 5]^2.

    PYTHONPATH=. python benchmarks/tabulated_inner.py --backends jax tensorflow torch --pairs 6000 60000
"""

import argparse
import json
import os
import subprocess
import sys
import time


def child(pairs, repeats):
    import keras
    import numpy as np

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
        times = {}
        for name, layer in (("mlp", g), ("table", fast)):
            fn = compiled(lambda x, layer=layer: layer(x))
            block(fn(x))  # compile
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                block(fn(x))
                samples.append(time.perf_counter() - t0)
            times[name] = sorted(samples)[len(samples) // 2]
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
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.pairs, args.repeats)
        return
    print("| backend | pairs | MLP g ms | table ms | speed-up | table max abs error on [-5, 5]^2 |")
    print("|---|---|---|---|---|---|")
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
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if not line:
            sys.exit(f"{backend} failed:\n{out.stderr[-3000:]}")
        result = json.loads(line[-1][len("RESULT ") :])
        for r in result["rows"]:
            print(
                f"| {r['backend']} | {r['pairs']:,} | {r['mlp_ms']:.3f} | {r['table_ms']:.3f} | "
                f"{r['mlp_ms'] / r['table_ms']:.1f}x | {result['max_error']:.2e} |"
            )


if __name__ == "__main__":
    main()
