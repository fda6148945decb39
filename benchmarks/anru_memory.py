"""Peak memory of one ANRU training step: plain BPTT vs. rematerialised controller vs. segments.

Paths: `plain` = `keras.layers.RNN(ANRUCell(...))`; `remat` = `ANRUCell(..., remat=True)` (the
controller step is recomputed in the backward pass); `segments` = `CheckpointedRNN(ANRUCell(...,
remat=True), segment_length=28)` (segment-wise checkpointing through time).

Each configuration runs in a fresh subprocess (so peaks do not mix); the parent polls the
child's resident set (/proc/PID/status VmRSS) and kills it above `--max-gib`, and the child
reports `ru_maxrss` after (a) building and compiling the model and running one forward pass and
(b) one `train_on_batch` step. The step's cost is (b) - (a), and includes XLA/TF compilation
workspace. The table also lists the size of the controller states `g_t` that backpropagation
through time must keep: batch * units * controller_units * steps * 4 bytes.

Example (psMNIST scale; needs a lot of memory for the plain path):
    PYTHONPATH=. KERAS_BACKEND=jax python benchmarks/anru_memory.py \
        --units 400 --controller 50 --steps 784 --batch 100 --paths plain,remat,segments
"""

import argparse
import json
import os
import subprocess
import sys
import time


def child(args):
    import resource

    import keras
    import numpy as np

    from keras_bioact.layers import ANRUCell, CheckpointedRNN

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    keras.utils.set_random_seed(0)
    inputs = keras.Input((args.steps, 1), batch_size=args.batch)
    cell = ANRUCell(args.units, args.controller, remat=args.path in ("remat", "segments"))
    if args.path == "segments":
        rnn = CheckpointedRNN(cell, segment_length=args.segment_length)
    else:
        rnn = keras.layers.RNN(cell)
    outputs = keras.layers.Dense(10)(rnn(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(1e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile={"true": True, "false": False, "auto": "auto"}[args.jit_compile],
    )
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, args.steps, 1), dtype="float32")
    y = rng.integers(0, 10, args.batch)
    model.predict_on_batch(x)
    before = peak_mib()
    t0 = time.perf_counter()
    loss = model.train_on_batch(x, y)
    first = time.perf_counter() - t0
    after = peak_mib()
    t0 = time.perf_counter()
    model.train_on_batch(x, y)  # compiled: the step's own time
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "before_mib": before,
                "peak_mib": after,
                "first_s": first,
                "seconds": seconds,
                "loss": float(loss),
            }
        )
    )


def run_one(args, path):
    cmd = [sys.executable, __file__, "--child", "--path", path]
    for name in ("units", "controller", "steps", "batch", "segment_length", "jit_compile"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    limit_kib = args.max_gib * 1024 * 1024
    max_seen = 0
    killed = False
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                        max_seen = max(max_seen, rss)
                        if rss > limit_kib:
                            proc.kill()
                            killed = True
        except FileNotFoundError:
            break
        time.sleep(0.1)
    out, err = proc.communicate()
    if killed:
        return {"path": path, "status": f"killed above {args.max_gib} GiB", "polled_max_mib": max_seen / 1024}
    if proc.returncode != 0:
        return {"path": path, "status": f"failed rc={proc.returncode}: {err.strip().splitlines()[-1:]}"}
    result = json.loads(out.strip().splitlines()[-1])
    result.update(path=path, status="ok", polled_max_mib=max_seen / 1024)
    return result


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=int, default=400)
    parser.add_argument("--controller", type=int, default=50)
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--paths",
        default="plain,remat,segments",
        help="comma-separated: plain (keras.layers.RNN), remat (ANRUCell(remat=True)), "
        "segments (CheckpointedRNN + ANRUCell(remat=True))",
    )
    parser.add_argument("--segment-length", type=int, default=28, help="CheckpointedRNN segment length")
    parser.add_argument(
        "--jit-compile",
        choices=("true", "false", "auto"),
        default="true",
        help="Model.compile(jit_compile=...): XLA on TF/JAX, torch.compile on torch (default true)",
    )
    parser.add_argument("--max-gib", type=float, default=12.0, help="kill a child whose RSS exceeds this")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    import keras

    states_mib = args.batch * args.units * args.controller * args.steps * 4 / 2**20
    print(
        f"backend={keras.backend.backend()} units={args.units} controller={args.controller} "
        f"steps={args.steps} batch={args.batch} jit_compile={args.jit_compile}; "
        f"g_t over all steps (plain BPTT keeps them): {states_mib:.0f} MiB"
    )
    rows = []
    header = (
        f"{'path':<8} {'status':<8} {'RSS before step MiB':>20} {'peak RSS MiB':>13} {'step MiB':>9} "
        f"{'1st step s':>10} {'step s':>7}"
    )
    print(header)
    for path in args.paths.split(","):
        r = run_one(args, path.strip())
        rows.append(r)
        if r["status"] == "ok":
            print(
                f"{r['path']:<8} {r['status']:<8} {r['before_mib']:>20.0f} {r['peak_mib']:>13.0f} "
                f"{r['peak_mib'] - r['before_mib']:>9.0f} {r['first_s']:>10.1f} {r['seconds']:>7.1f}"
            )
        else:
            print(f"{r['path']:<8} {r['status']}  (polled max RSS {r.get('polled_max_mib', 0):.0f} MiB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": vars(args), "states_mib": states_mib, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
