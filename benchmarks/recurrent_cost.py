"""Per-step cost of recurrent units: one training step of ANRUCell, GammaRNNCell,
SimpleRNN(relu), LSTM and GRU, all with the same number of units, in the same run.

Model: `Input((T, d))` -> `keras.layers.RNN(cell)` -> `Dense(10)`, Adam, sparse categorical
cross-entropy, `jit_compile=True` on TensorFlow and JAX (torch eager). The input is a
psMNIST-like pixel sequence of length T with d = 784 / T pixels per step (T = 784: one pixel;
T = 98: eight). For each T and unit, the first `train_on_batch` (tracing and compilation) is
timed apart, then the median of `--steps` more. The table gives ms per training step, ms per
time step, and the ratios to LSTM and to SimpleRNN measured in the same process.

`ANRUCell` runs with `remat=True` at T >= 392 (the controller states of a plain BPTT step at
T = 784 need more than 18 GiB, see anru_memory.py), plain below.

    PYTHONPATH=$PWD python benchmarks/recurrent_cost.py [--backends jax tensorflow torch]
        [--lengths 98 784] [--torch-lengths 98 784] [--units 400] [--controller 50]
        [--batch 32] [--steps 3] [--cells anru gamma simple_rnn lstm gru]

Each backend runs in its own subprocess (Keras picks its backend at import); `--torch-lengths`
(default: `--lengths`) gives torch, which runs eagerly and is the slowest at T = 784, its own
lengths. The wall time of each backend and of the whole run is printed at the end.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CELLS = ("anru", "gamma", "simple_rnn", "lstm", "gru")


def make_cell(name, units, controller, length):
    import keras

    from keras_bioact.layers import ANRUCell, GammaRNNCell

    if name == "anru":
        return ANRUCell(units, controller_units=controller, remat=length >= 392)
    if name == "gamma":
        return GammaRNNCell(units)
    if name == "simple_rnn":
        return keras.layers.SimpleRNNCell(units, activation="relu")
    if name == "lstm":
        return keras.layers.LSTMCell(units)
    if name == "gru":
        return keras.layers.GRUCell(units)
    raise ValueError(f"unknown cell {name!r}; legal: {', '.join(CELLS)}")


def child(args):
    import keras
    import numpy as np

    rows = []
    rng = np.random.default_rng(0)
    for length in args.lengths:
        dim = max(1, 784 // length)
        x = rng.random((args.batch, length, dim), dtype="float32")
        y = rng.integers(0, 10, size=(args.batch,))
        for name in args.cells:
            keras.utils.set_random_seed(0)
            inputs = keras.Input((length, dim))
            h = keras.layers.RNN(make_cell(name, args.units, args.controller, length))(inputs)
            model = keras.Model(inputs, keras.layers.Dense(10)(h))
            model.compile(
                optimizer="adam",
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=keras.backend.backend() != "torch",
            )
            t0 = time.perf_counter()
            model.train_on_batch(x, y)
            first = time.perf_counter() - t0
            times = []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                loss = model.train_on_batch(x, y)
                times.append(time.perf_counter() - t0)
            rows.append(
                {
                    "backend": keras.backend.backend(),
                    "T": length,
                    "cell": name,
                    "params": int(model.count_params()),
                    "first_s": first,
                    "step_ms": 1e3 * sorted(times)[len(times) // 2],
                    "loss": float(np.asarray(loss).reshape(-1)[0]),
                }
            )
            print("ROW " + json.dumps(rows[-1]), flush=True)
    return rows


def _ratio(row, reference_ms):
    return f"{row['step_ms'] / reference_ms:.2f}" if reference_ms else "-"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    p.add_argument("--lengths", type=int, nargs="+", default=[98, 784])
    p.add_argument("--torch-lengths", type=int, nargs="+", default=None)
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--controller", type=int, default=50)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    print(
        f"units={args.units} controller={args.controller} batch={args.batch} steps={args.steps} "
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}"
    )
    cols = "| backend | T | cell | params | 1st step s | ms / step | ms / time step | x LSTM | x SimpleRNN |"
    print(cols)
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|", flush=True)
    start = time.perf_counter()
    walls = []
    for backend in args.backends:
        lengths = args.torch_lengths if backend == "torch" and args.torch_lengths else args.lengths
        t0 = time.perf_counter()
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--units", str(args.units)]
        cmd += ["--controller", str(args.controller), "--batch", str(args.batch), "--steps", str(args.steps)]
        cmd += ["--lengths", *map(str, lengths), "--cells", *args.cells]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        rows = [json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith("ROW ")]
        if out.returncode != 0:
            print(f"{backend}: failed after {len(rows)} rows\n{out.stderr[-2000:]}", file=sys.stderr)
        walls.append(f"{backend} {time.perf_counter() - t0:.0f} s")
        for length in lengths:
            here = {r["cell"]: r for r in rows if r["T"] == length}
            for name in args.cells:
                if name not in here:
                    continue
                r = here[name]
                lstm = here.get("lstm", {}).get("step_ms")
                simple = here.get("simple_rnn", {}).get("step_ms")
                print(
                    f"| {backend} | {length} | {name} | {r['params']:,} | {r['first_s']:.1f} | "
                    f"{r['step_ms']:.1f} | {r['step_ms'] / length:.3f} | {_ratio(r, lstm)} | "
                    f"{_ratio(r, simple)} |",
                    flush=True,
                )
    print(f"wall time: {', '.join(walls)}; total {time.perf_counter() - start:.0f} s")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
