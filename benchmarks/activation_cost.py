"""Cost of composed activations and of the mixture cell against GELU (issue 29 item 5).

Prints, per backend and model, the median time of one train step (Keras' own compiled step,
`train_on_batch` with `jit_compile=True`, Adam) with GELU at every activation site, with a few
`keras_bioact.layers.ComposedActivation`s (a u-schema swish, a nested `u1(u2(x))` and a binary
`b(u1(x), u2(x))`, both with learnable scalars and the costlier primitives: erf, gamma, eru),
and with a `MixtureActivation` of the 8 default candidates and of all 14; and, on the MLP, the
mixture search's alternation step (`keras_bioact.search.mixture.Alternation.step`: an
architecture step on a validation batch and a weight step on a training batch, so two forward
and backward passes, compiled by us without `train_on_batch`'s per-call overhead). Models: the
digits MLP of `search/mixture.toml` (`mlp` template, 64-64-64-10, batch 64 of scikit-learn
digits) and the Fashion-MNIST CNN of `recipes/search_pays.py --arch cnn` (`cnn` template,
filters 16-32, dense 64, batch 64 of real Fashion-MNIST training images). Every round times
every variant of a model once (interleaved); the ratio is to GELU's train step on the same
backend and model; targets: composed <= 1.3x, mixture <= 3x.

    python benchmarks/activation_cost.py [--rounds 7] [--steps 10] [--backends jax tensorflow]
        [--models mlp cnn]

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

COMPOSED = ("mul(x, sigmoid(x))", "erf(gamma(x))", "wsum(eru(x), gelu(x))")
TARGET = {"composed": 1.3, "mixture": 3.0}
BATCH = 64


class Sites:
    """The part of `keras_bioact.search.activation.Activation` the templates use: every site
    gets a fresh layer from `make`."""

    family = "bench"

    def __init__(self, make):
        self.make = make

    def layer(self, index=0):
        return self.make()

    def dense(self, units, index=0, **kwargs):
        import keras

        return [keras.layers.Dense(units, **kwargs), self.make()]

    def conv2d(self, filters, kernel_size, index=0, **kwargs):
        import keras

        return [keras.layers.Conv2D(filters, kernel_size, **kwargs), self.make()]


def data(model):
    if model == "mlp":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x, y = (x / 16.0).astype("float32"), y.astype("int32")
    else:
        from keras_bioact import datasets

        (x, y), _ = datasets.load_fashion_mnist()  # float32 in [0, 1], int32 labels
    return (x[:BATCH], y[:BATCH]), (x[BATCH : 2 * BATCH], y[BATCH : 2 * BATCH])


def child(args):
    import keras

    from keras_bioact import mixture_candidates
    from keras_bioact.layers import ComposedActivation, MixtureActivation
    from keras_bioact.search import templates
    from keras_bioact.search.mixture import Alternation

    def build(model, make):
        keras.utils.set_random_seed(0)
        if model == "mlp":
            return templates.mlp(Sites(make), (64,), 10, hidden=(64, 64))
        return templates.cnn(Sites(make), (28, 28), 10, filters=(16, 32), dense=(64,))

    def fit_step(model, make, batch):
        net = build(model, make)
        net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
        return lambda: net.train_on_batch(*batch)

    def alternation_step(model, candidates, batch, val):
        alternation = Alternation(build(model, lambda: MixtureActivation(candidates=candidates)))
        return lambda: alternation.step(batch, val)

    default, everything = mixture_candidates.DEFAULT_CANDIDATES, mixture_candidates.names()
    results = {}
    for model in args.models:
        batch, val = data(model)
        variants = {("reference", "GELU"): fit_step(model, lambda: keras.layers.Activation("gelu"), batch)}
        for expression in COMPOSED:
            variants[("composed", expression)] = fit_step(
                model, lambda e=expression: ComposedActivation(e), batch
            )
        for candidates in (default, everything):
            variants[("mixture", f"mixture ({len(candidates)})")] = fit_step(
                model, lambda c=candidates: MixtureActivation(candidates=c), batch
            )
        if model == "mlp":
            for candidates in (default, everything):
                variants[("alternation", f"mixture ({len(candidates)}) alternation step")] = alternation_step(
                    model, candidates, batch, val
                )
        for step in variants.values():  # compile
            step()
            step()
        times = {key: [] for key in variants}
        for _ in range(args.rounds):
            for key, step in variants.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[key].append((time.perf_counter() - start) / args.steps * 1e3)
        results[model] = [[kind, name, statistics.median(t)] for (kind, name), t in times.items()]
    print(json.dumps(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow"])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print("| backend | model | variant | ms / step | x GELU | target | met |")
    print("|---|---|---|---:|---:|---:|---|")
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT}
        command = [sys.executable, __file__, "--child", "--rounds", str(args.rounds)]
        command += ["--steps", str(args.steps), "--models", *args.models]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        for model, rows in json.loads(out.strip().splitlines()[-1]).items():
            base = rows[0][2]
            for kind, name, ms in rows:
                target = TARGET.get(kind)
                ratio = ms / base
                shown = f"`{name}`" if kind == "composed" else name
                verdict = "-" if target is None else ("yes" if ratio <= target else "**no**")
                limit = "-" if target is None else f"{target:g}x"
                print(f"| {backend} | {model} | {shown} | {ms:.2f} | {ratio:.2f} | {limit} | {verdict} |")


if __name__ == "__main__":
    main()
