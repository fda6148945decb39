"""Cost of the mixture cell (`keras_bioact.layers.MixtureActivation`) against GELU.

Prints, per backend, the median time of one train step of the digits MLP of `search/mixture.toml`
(64-64-64-10, batch 64) with GELU at both sites, and with a `MixtureActivation` of the 8 default
candidates and of all 14, each trained by Keras' own compiled train step (`train_on_batch`,
`jit_compile=True`); and the mixture search's alternation step (`keras_bioact.search.mixture.
Alternation.step`: an architecture step on a validation batch and a weight step on a training
batch, so two forward and backward passes). Every round times every variant once (interleaved);
the ratio is to GELU's train step.

    python benchmarks/mixture.py [--rounds 7] [--steps 20] [--backends jax tensorflow]

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
    from sklearn.datasets import load_digits

    from keras_bioact import mixture_candidates
    from keras_bioact.layers import MixtureActivation
    from keras_bioact.search.mixture import Alternation

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype("float32")[:64], y.astype("int32")[:64]
    xv, yv = x[::-1].copy(), y[::-1].copy()

    def build(make):
        keras.utils.set_random_seed(0)
        layers = [keras.Input((64,))]
        for _ in range(2):
            layers += [keras.layers.Dense(64), make()]
        return keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax")])

    def fit_step(make):
        model = build(make)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
        return lambda: model.train_on_batch(x, y)

    def alternation_step(candidates):
        model = build(lambda: MixtureActivation(candidates=candidates))
        alternation = Alternation(model)
        return lambda: alternation.step((x, y), (xv, yv))

    default, everything = mixture_candidates.DEFAULT_CANDIDATES, mixture_candidates.names()
    variants = {
        "GELU train step": fit_step(lambda: keras.layers.Activation("gelu")),
        "mixture (8) train step": fit_step(lambda: MixtureActivation(candidates=default)),
        f"mixture ({len(everything)}) train step": fit_step(lambda: MixtureActivation(candidates=everything)),
        "mixture (8) alternation step": alternation_step(default),
        f"mixture ({len(everything)}) alternation step": alternation_step(everything),
    }
    for step in variants.values():  # compile
        step()
        step()
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)
    print(json.dumps({name: statistics.median(t) for name, t in times.items()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print("| backend | variant | ms / step | x GELU train step |")
    print("|---|---|---:|---:|")
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT}
        command = [
            sys.executable,
            __file__,
            "--child",
            "--rounds",
            str(args.rounds),
            "--steps",
            str(args.steps),
        ]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        base = result["GELU train step"]
        for name, ms in result.items():
            print(f"| {backend} | {name} | {ms:.2f} | {ms / base:.2f} |")


if __name__ == "__main__":
    main()
