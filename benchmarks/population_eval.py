"""Population evaluation for neuroevolution: one vectorised call vs the obvious loop.

Model: digits MLP 64-64-64-10 with per-neuron GammaActivation (2 x 64 activation parameters)
after each hidden Dense; fitness = accuracy on the 450 test images. For each population size
it times

* vectorised: `keras_bioact.search.evolution.PopulationEvaluator(vectorized=True)`, the whole
  population in one compiled call (`jax.vmap` / `torch.func.vmap` / `tf.vectorized_map` over
  `model.stateless_call`), after one warm-up call;
* loop: for each candidate, `ParameterView.set_vector(...)` then `model.evaluate(...)` on the
  same data (compiled once by Keras, warm), i.e. assign parameters, evaluate, repeat;

and prints candidates per second (best of `--repeats`; the loop timed on the first
`min(P, --loop-candidates)` candidates), the speed-up, and the vectorised call's GFLOP/s (the
Dense layers' multiply-adds) next to one compiled square float32 matmul with the same FLOP
count. `--chunk C` evaluates the population in chunks of C (`population_chunk`), e.g. for 1,024.

Training (Baldwinian / Lamarckian modes): for each of `--train-pops`, every candidate is trained
for `--train-epochs` epochs of SGD (lr 0.05, batch 32, the 1,347 training images in order) from
the same weights and then scored on the test images, by

* vectorised: `keras_bioact.search.evolution.PopulationTrainer(vectorized=True)` (JAX: one
  `jit(vmap(scan))` call; PyTorch: one `torch.func.vmap` call per batch; TensorFlow: one XLA
  call per candidate), after one warm-up call;
* loop: `PopulationTrainer(vectorized=False)`, i.e. per candidate `set_weights`, reset the
  optimizer, `model.fit(shuffle=False)`, evaluate (warm); timed on the first
  `min(P, --loop-candidates)` candidates (its cost per candidate does not depend on P);
  the two are timed alternately, `--repeats` times each, and the best time of each is kept.

    python benchmarks/population_eval.py [--pops 16 64 256] [--repeats 3] [--backends jax tensorflow torch]
        [--train-pops 8 32 64] [--train-epochs 1] [--skip-eval] [--skip-train] [--threads N]

`--threads N` limits each backend's intra-op threads (PyTorch `set_num_threads`, TensorFlow's
intra/inter-op pools, XLA's Eigen threading off for JAX), which keeps timings steady on a
machine shared with other work.

Each backend runs in its own subprocess (Keras picks its backend at import).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def child(args):
    if args.threads:
        limit_threads(args.threads)
    import keras

    from keras_bioact.datasets import load_digits
    from keras_bioact.layers import GammaActivation
    from keras_bioact.params import ParameterView

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits()
    inputs = keras.Input((8, 8))
    h = keras.layers.Flatten()(inputs)
    for i in range(2):
        h = keras.layers.Dense(64, name=f"dense_{i}")(h)
        h = GammaActivation(name=f"gamma_{i}")(h)
    outputs = keras.layers.Dense(10, name="logits")(h)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    view = ParameterView(model)
    rows = [] if args.skip_eval else eval_rows(args, model, view, x_test, y_test)
    train_rows = (
        [] if args.skip_train else training_rows(args, model, view, (x_train, y_train), (x_test, y_test))
    )
    print("RESULT " + json.dumps({"eval": rows, "train": train_rows}))


def limit_threads(n):
    """Intra-op threads of the backend (a shared machine makes multi-threaded timings erratic)."""
    backend = os.environ["KERAS_BACKEND"]
    if backend == "torch":
        import torch

        torch.set_num_threads(n)
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)


def eval_rows(args, model, view, x_test, y_test):
    import keras
    import numpy as np

    from keras_bioact.search.evolution import PopulationEvaluator

    rng = np.random.default_rng(0)
    evaluator = PopulationEvaluator(
        model, x_test, y_test, metric="accuracy", vectorized=True, population_chunk=args.chunk or None
    )
    flops = candidate_flops(model, len(x_test))
    rows = []
    for pop in args.pops:
        u = view.get_vector("unconstrained") + 0.3 * rng.normal(size=(pop, view.size))
        natural = view.to_natural(u, "unconstrained")
        evaluator.evaluate(natural)  # compile for this population size
        vec = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            scores_vec = evaluator.evaluate(natural)
            vec.append(time.perf_counter() - t0)
        saved = view.get_vector()
        view.set_vector(natural[0])
        model.evaluate(x_test, y_test, batch_size=len(x_test), verbose=0)  # warm-up
        loop = []
        k = min(pop, args.loop_candidates)  # the loop's cost per candidate does not depend on P
        for _ in range(args.repeats):
            scores_loop = np.empty(k)
            t0 = time.perf_counter()
            for i in range(k):
                view.set_vector(natural[i])
                scores_loop[i] = model.evaluate(
                    x_test, y_test, batch_size=len(x_test), verbose=0, return_dict=True
                )["accuracy"]
            loop.append(time.perf_counter() - t0)
        view.set_vector(saved)
        n = max(1, round((pop * flops / 2) ** (1 / 3)))
        rows.append(
            {
                "backend": keras.backend.backend(),
                "popsize": pop,
                "chunk": args.chunk or pop,
                "vectorized_cps": pop / min(vec),
                "loop_cps": k / min(loop),
                "gflops": pop * flops / min(vec) / 1e9,
                "matmul_n": n,
                "matmul_gflops": 2 * n**3 / matmul_seconds(n, args.repeats) / 1e9,
                "max_abs_fitness_diff": float(np.max(np.abs(scores_vec[:k] - scores_loop))),
            }
        )
    return rows


def candidate_flops(model, samples):
    """Multiply-add FLOPs (2 per MAC) of one forward pass of `samples` inputs through the
    model's Dense layers (the activations' elementwise work is not counted)."""
    import numpy as np

    return (
        2
        * samples
        * sum(int(np.prod(layer.kernel.shape)) for layer in model.layers if hasattr(layer, "kernel"))
    )


def matmul_seconds(n, repeats):
    """Best time of one compiled float32 `n x n` matmul on this backend."""
    import keras
    import numpy as np
    from keras import ops

    a = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(n, n)).astype("float32"))
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        f = jax.jit(lambda x: x @ x)
        sync = lambda y: y.block_until_ready()  # noqa: E731
    elif backend == "tensorflow":
        import tensorflow as tf

        f = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)
        sync = lambda y: y.numpy()  # noqa: E731
    else:
        f = lambda x: ops.matmul(x, x)  # noqa: E731
        sync = lambda y: y  # noqa: E731
    sync(f(a))
    times = []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        sync(f(a))
        times.append(time.perf_counter() - t0)
    return min(times)


def training_rows(args, model, view, train, val):
    import keras
    import numpy as np

    from keras_bioact.search.evolution import PopulationTrainer

    kw = dict(
        loss="crossentropy",
        from_logits=True,
        learning_rate=0.05,
        epochs=args.train_epochs,
        batch_size=32,
        val_data=val,
        metric="accuracy",
    )
    vec = PopulationTrainer(model, view.parameters, *train, vectorized=True, **kw)
    loop = PopulationTrainer(model, view.parameters, *train, vectorized=False, **kw)
    rng = np.random.default_rng(1)
    rows = []
    for pop in args.train_pops:
        u = view.get_vector("unconstrained") + 0.3 * rng.normal(size=(pop, view.size))
        natural = view.to_natural(u, "unconstrained")
        k = min(pop, args.loop_candidates)
        t0 = time.perf_counter()
        vec.train(natural)  # compile for this population size
        first = time.perf_counter() - t0
        loop.train(natural[:1])  # warm-up (compiles model.fit)
        vec_times, loop_times = [], []
        for _ in range(args.repeats):  # interleaved, so that both see the same machine load
            t0 = time.perf_counter()
            res_vec = vec.train(natural)
            vec_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            res_loop = loop.train(natural[:k])
            loop_times.append(time.perf_counter() - t0)
        rows.append(
            {
                "backend": keras.backend.backend(),
                "popsize": pop,
                "loop_candidates": k,
                "first_call_s": first,
                "vectorized_cps": pop / min(vec_times),
                "loop_cps": k / min(loop_times),
                "max_abs_param_diff": float(np.max(np.abs(res_vec.learned[:k] - res_loop.learned))),
                "max_abs_score_diff": float(np.max(np.abs(res_vec.scores[:k] - res_loop.scores))),
                "changed": float(np.max(np.abs(res_vec.learned - natural))),
            }
        )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pops", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    parser.add_argument("--train-pops", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--loop-candidates", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads per backend (0: default)")
    parser.add_argument("--chunk", type=int, default=0, help="population_chunk of the evaluator (0: none)")
    parser.add_argument("--skip-eval", action="store_true", help="skip the frozen-mode evaluation table")
    parser.add_argument("--skip-train", action="store_true", help="skip the training table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows, train_rows = [], []
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
        if args.threads and backend == "jax":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--repeats", str(args.repeats), "--pops"]
        cmd += [str(p) for p in args.pops] + ["--train-pops"] + [str(p) for p in args.train_pops]
        cmd += ["--train-epochs", str(args.train_epochs), "--loop-candidates", str(args.loop_candidates)]
        cmd += ["--chunk", str(args.chunk)]
        cmd += (
            ["--threads", str(args.threads)]
            + ["--skip-eval"] * args.skip_eval
            + ["--skip-train"] * args.skip_train
        )
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            print(f"{backend}: failed\n{out.stderr[-3000:]}", file=sys.stderr)
            continue
        result = json.loads(lines[-1][len("RESULT ") :])
        rows += result["eval"]
        train_rows += result["train"]
    if rows:
        print("Frozen-mode evaluation")
        print(
            "| backend | population | chunk | vectorised cand/s | loop cand/s | speed-up | GFLOP/s "
            "| matmul GFLOP/s (n) | ratio | max |fitness diff| |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['popsize']} | {r['chunk']} | {r['vectorized_cps']:.0f} | "
            f"{r['loop_cps']:.1f} | "
            f"{r['vectorized_cps'] / r['loop_cps']:.1f}x | {r['gflops']:.2f} | {r['matmul_gflops']:.2f} "
            f"({r['matmul_n']}) | {r['gflops'] / r['matmul_gflops']:.2f} | {r['max_abs_fitness_diff']:.1e} |"
        )
    if train_rows:
        print(f"\nTraining ({args.train_epochs} epoch(s) of SGD per candidate, then scoring)")
        print(
            "| backend | population | vectorised cand/s | loop cand/s | speed-up | first call s "
            "| max |param diff| | max |score diff| |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in train_rows:
        print(
            f"| {r['backend']} | {r['popsize']} | {r['vectorized_cps']:.1f} | {r['loop_cps']:.2f} | "
            f"{r['vectorized_cps'] / r['loop_cps']:.1f}x | {r['first_call_s']:.1f} | "
            f"{r['max_abs_param_diff']:.1e} | {r['max_abs_score_diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
