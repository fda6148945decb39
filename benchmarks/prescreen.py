"""The training-free pre-screen of composed activations on digits: how well its features predict
trained validation accuracy, and what it costs.

Trains `--candidates` random expressions of the default `[space.composed]` schemas and primitives
(a digits MLP, `--epochs` epochs, one seed each, the same initial weights), computes each one's
pre-screen features, fits the ridge regressor on the first `--fit` candidates (in draw order) and
ranks the others: prints Spearman's rho between predicted and trained validation accuracy on the
candidates the regressor did not see, next to the rho of the output statistics alone and of the
Fisher summary alone, and the seconds per candidate of the features and of training.

    PYTHONPATH=$PWD KERAS_BACKEND=jax python benchmarks/prescreen.py --candidates 40 --fit 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--fit", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import keras
    from sklearn.datasets import load_digits

    from keras_bioact import stats
    from keras_bioact.families import composed
    from keras_bioact.search import Activation, SearchSpace, mlp
    from keras_bioact.search.optuna import prescreen as ps
    from keras_bioact.seeding import set_random_seed

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    (x_train, y_train), (x_val, y_val) = (x[:1200], y[:1200]), (x[1200:], y[1200:])
    space = SearchSpace.from_dict({"families": ["composed"]})

    def build(activation):
        return mlp(activation, (64,), 10, hidden=tuple(args.hidden))

    screen = ps.Prescreen(build, x_train, y_train, space, args.candidates, args.candidates, seed=args.seed)
    rng = np.random.default_rng([args.seed, 0])
    configs, seen = [], set()
    while len(configs) < args.candidates:
        config = ps._sample(space, ps._Proposer(rng))
        fp = composed.fingerprint(config)
        if fp not in seen:
            seen.add(fp)
            configs.append(config)

    features, accuracy, feature_s, train_s = [], [], [], []
    for config in configs:
        start = time.perf_counter()
        features.append(screen.features(config))
        feature_s.append(time.perf_counter() - start)
        set_random_seed(args.seed)
        model = build(Activation({"family": "composed", **config}))
        model.compile(keras.optimizers.Adam(0.005), "sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        history = model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=args.epochs,
            batch_size=64,
            verbose=0,
        )
        train_s.append(time.perf_counter() - start)
        value = history.history["val_accuracy"][-1]
        accuracy.append(value if np.isfinite(value) else np.nan)
        print(f"{config['expression']:<34} val_accuracy {value:.4f}", flush=True)

    features, accuracy = np.asarray(features), np.asarray(accuracy)
    k = args.fit
    print()
    print(
        f"{args.candidates} candidates, regressor fitted on the first {k}, "
        f"ranked the other {args.candidates - k}"
    )
    print(f"(backend {keras.backend.backend()}, MLP {args.hidden}, {args.epochs} epochs, seed {args.seed})")
    print()
    print("| features | Spearman rho on unseen candidates |")
    print("|---|---:|")
    for name, cols in (
        ("all 14", slice(None)),
        ("output statistics (9)", slice(0, 9)),
        ("Fisher (5)", slice(9, 14)),
    ):
        keep = np.isfinite(accuracy)
        fit_rows = np.arange(len(accuracy)) < k
        reg = ps.Regressor().fit(features[fit_rows & keep][:, cols], accuracy[fit_rows & keep])
        test = ~fit_rows & keep
        rho = stats.spearman(reg.predict(features[test][:, cols]), accuracy[test])
        print(f"| {name} | {rho:.3f} |")
    print()
    print("| cost per candidate | median s |")
    print("|---|---:|")
    print(f"| features (output statistics + Fisher) | {np.median(feature_s[1:]):.3f} |")
    print(f"| training ({args.epochs} epochs) | {np.median(train_s[1:]):.3f} |")


if __name__ == "__main__":
    main()
