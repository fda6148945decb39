"""Population evaluation for neuroevolution: one vectorised call vs the obvious loop.

Model: digits MLP 64-64-64-10 with per-neuron GammaActivation (2 x 64 activation parameters)
after each hidden Dense; fitness = accuracy on the 450 test images. For each population size
it times

* vectorised: `keras_bioact.search.evolution.PopulationEvaluator(vectorized=True)`, the whole
  population in one compiled call (`jax.vmap` / `torch.func.vmap` / `tf.vectorized_map` over
  `model.stateless_call`), after one warm-up call;
* loop: for each candidate, `ParameterView.set_vector(...)` then `model.evaluate(...)` on the
  same data (compiled once by Keras, warm), i.e. assign parameters, evaluate, repeat;

and prints candidates per second (best of `--repeats`) and the speed-up.

    python benchmarks/population_eval.py [--pops 16 64 256] [--repeats 3] [--backends jax tensorflow torch]

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
    import keras
    import numpy as np

    from keras_bioact.datasets import load_digits
    from keras_bioact.layers import GammaActivation
    from keras_bioact.params import ParameterView
    from keras_bioact.search.evolution import PopulationEvaluator

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
    rng = np.random.default_rng(0)
    evaluator = PopulationEvaluator(model, x_test, y_test, metric="accuracy", vectorized=True)
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
        for _ in range(args.repeats):
            scores_loop = np.empty(pop)
            t0 = time.perf_counter()
            for i in range(pop):
                view.set_vector(natural[i])
                scores_loop[i] = model.evaluate(
                    x_test, y_test, batch_size=len(x_test), verbose=0, return_dict=True
                )["accuracy"]
            loop.append(time.perf_counter() - t0)
        view.set_vector(saved)
        rows.append(
            {
                "backend": keras.backend.backend(),
                "popsize": pop,
                "vectorized_cps": pop / min(vec),
                "loop_cps": pop / min(loop),
                "max_abs_fitness_diff": float(np.max(np.abs(scores_vec - scores_loop))),
            }
        )
    print("RESULT " + json.dumps(rows))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pops", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--repeats", str(args.repeats), "--pops"]
        cmd += [str(p) for p in args.pops]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            print(f"{backend}: failed\n{out.stderr[-3000:]}", file=sys.stderr)
            continue
        rows += json.loads(lines[-1][len("RESULT ") :])
    print("| backend | population | vectorised cand/s | loop cand/s | speed-up | max |fitness diff| |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['popsize']} | {r['vectorized_cps']:.0f} | {r['loop_cps']:.1f} | "
            f"{r['vectorized_cps'] / r['loop_cps']:.1f}x | {r['max_abs_fitness_diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
