"""Cost of keras-bioact activations against built-in ones.

Prints, per backend (TensorFlow with XLA, JAX), the median train-step time of an MLP
784-256-256-10 (batch 256) for each activation, measured in one run and interleaved
(every round times every variant once), with the ratio to `relu`; then the forward time of
each op alone on a 4096x4096 float32 tensor under `tf.function(jit_compile=True)` and
`jax.jit`.

    python benchmarks/activation_overhead.py [--rounds 15] [--steps 20] [--backends tensorflow jax]

Each backend runs in its own subprocess (Keras picks its backend at import).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def child(args):
    import keras
    import numpy as np
    from keras import layers

    from keras_bioact import ops as bops
    from keras_bioact.layers import BRU, GammaActivation

    backend = keras.backend.backend()

    class GammaAutodiff(GammaActivation):
        def call(self, inputs):
            return bops.gamma(inputs, self.n, self.s)

    variants = {
        "relu": lambda: layers.Activation("relu"),
        "elu": lambda: layers.Activation("elu"),
        "PReLU": lambda: layers.PReLU(),
        "GammaActivation": lambda: GammaActivation(),  # custom gradient on TF and JAX
        "GammaActivation (autodiff)": lambda: GammaAutodiff(),
        "BRU eru": lambda: BRU("eru", r=2.0),
        "BRU oru": lambda: BRU("oru", r=2.0),
    }
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 784)).astype("float32")
    y = rng.integers(0, 10, 256).astype("int32")

    def build(make):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((784,)), layers.Dense(256), make(), layers.Dense(256), make(), layers.Dense(10)]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        for _ in range(3):  # compile and warm up
            model.train_on_batch(x, y)
        return model

    models = {name: build(make) for name, make in variants.items()}
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                logs = model.train_on_batch(x, y, return_dict=True)
            keras.ops.convert_to_numpy(logs["loss"])
            times[name].append((time.perf_counter() - t0) / args.steps)
    train = {name: statistics.median(v) for name, v in times.items()}

    big = rng.standard_normal((4096, 4096)).astype("float32")
    n = rng.uniform(5, 7, 4096).astype("float32")
    s = rng.uniform(0, 1, 4096).astype("float32")
    r = np.float32(2.0)
    ops_fns = {
        "relu": lambda t: keras.ops.relu(t),
        "elu": lambda t: keras.ops.elu(t),
        "gamma": lambda t: bops.gamma(t, n, s),
        "eru": lambda t: bops.eru(t, r),
        "oru": lambda t: bops.oru(t, r),
    }
    if backend == "jax":
        import jax

        compiled = {k: jax.jit(f) for k, f in ops_fns.items()}
        arg = jax.numpy.asarray(big)

        def run(f):
            f(arg).block_until_ready()
    elif backend == "tensorflow":
        import tensorflow as tf

        compiled = {k: tf.function(f, jit_compile=True) for k, f in ops_fns.items()}
        arg = tf.constant(big)

        def run(f):
            f(arg).numpy()
    else:
        compiled, run = {}, None
    op_times = {k: [] for k in compiled}
    for f in compiled.values():
        run(f)
        run(f)
    for _ in range(args.rounds):
        for k, f in compiled.items():
            t0 = time.perf_counter()
            for _ in range(5):
                run(f)
            op_times[k].append((time.perf_counter() - t0) / 5)
    fwd = {k: statistics.median(v) for k, v in op_times.items()}
    print("RESULT " + json.dumps({"backend": backend, "train": train, "op": fwd}))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    results = []
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, __file__, "--child", "--rounds", str(args.rounds), "--steps", str(args.steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode or not line:
            sys.exit(f"{backend} benchmark failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(line[-1][len("RESULT "):]))
    title = "Train step, MLP 784-256-256-10, batch 256, Adam (median of interleaved rounds)"
    print_table(title, "train", results)
    with_ops = [r for r in results if r["op"]]
    if with_ops:
        print_table("Forward of the op alone on a 4096x4096 float32 tensor (median)", "op", with_ops)


def print_table(title, key, results):
    """One markdown table: milliseconds per backend, then the ratio to relu per backend."""
    label = {"tensorflow": "TF (jit_compile=True)", "jax": "JAX (jit)", "torch": "torch (eager)"}
    print(f"\n{title}\n")
    first = "activation" if key == "train" else "op"
    print(f"| {first} | {' | '.join(label[r['backend']] + ' ms' for r in results)} | "
          f"{' | '.join('x relu (' + r['backend'] + ')' for r in results)} |")
    print("|---" * (1 + 2 * len(results)) + "|")
    for name in results[0][key]:
        ms = " | ".join(f"{r[key][name] * 1e3:.2f}" for r in results)
        ratio = " | ".join(f"{r[key][name] / r[key]['relu']:.2f}" for r in results)
        print(f"| {name} | {ms} | {ratio} |")

if __name__ == "__main__":
    main()
