"""Evolve activation parameters on digits and compare with gradient training and Optuna.

Two experiments on scikit-learn's digits (train 1,010 / validation 337 / test 450):

A. Per-neuron gamma (n_i, s_i) of an MLP 64 -> 64 gamma -> 10. The outer weights are trained
   once by Adam with gamma held at its initialisation (n0 = 5 + 2U(0,1), s = 0), then frozen.
B. The shared inner MLP g (2 -> 16 -> 16 -> 1, 337 weights) of a two-argument MLP
   64 -> TwoArgDense(32) -> 10. The outer weights are trained once with g held at its random
   initialisation, then frozen.

For each, from the same frozen start:

* evolution: SNES on the activation parameters (validation cross-entropy), popsize x gens
  model evaluations, whole population per compiled call;
* Optuna: TPE over the same parameters (n in [0.5, 20] log, s in [0, 1]; g's weights in
  [-2, 2]) with the same number of model evaluations (trials);
* gradient: Adam on the same activation parameters only (outer weights frozen), same number
  of epochs as the pretraining;
* gradient, joint: the whole network (weights and activation parameters) trained by Adam from
  scratch, for reference.

    python recipes/evolve_activations.py [--popsize 32] [--generations 20] [--epochs 30]

Prints a markdown table (test accuracy, validation loss, model evaluations, seconds).
"""

import argparse
import json
import time

import keras
import numpy as np

from keras_bioact.datasets import load_digits
from keras_bioact.layers import GammaActivation, InnerNonlinearity, TwoArgDense
from keras_bioact.params import ParameterView
from keras_bioact.search.evolution import PopulationEvaluator, evolve, select_parameters


def data(seed=0):
    (x_train, y_train), test = load_digits(seed=seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    n_val = len(x_train) // 4
    val, train = order[:n_val], order[n_val:]
    return (x_train[train], y_train[train]), (x_train[val], y_train[val]), test


def gamma_mlp(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8))
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(64, name="dense")(h)
    h = GammaActivation(name="gamma")(h)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(h))


def twoarg_mlp(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8))
    h = keras.layers.Flatten()(inputs)
    h = TwoArgDense(32, inner=InnerNonlinearity(hidden_units=(16, 16), name="g"), name="twoarg")(h)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(h))


def fit(model, train, val, epochs, trainable, lr=3e-3):
    """Adam on the variables whose ids are in `trainable` (all when None)."""
    flags = [(v, v.trainable) for v in model.weights]
    if trainable is not None:
        for v in model.weights:
            v.trainable = id(v) in trainable
    try:
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(*train, validation_data=val, epochs=epochs, batch_size=64, verbose=0)
    finally:
        for v, flag in flags:
            v.trainable = flag


def scores(model, val, test):
    ce = PopulationEvaluator(model, *val, metric="crossentropy")
    acc = PopulationEvaluator(model, *test, metric="accuracy")
    return ce.score_current(), acc.score_current()


def optuna_search(model, val, params, trials, suggest, seed):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    view = ParameterView(model, parameters=params)
    evaluator = PopulationEvaluator(model, *val, parameters=params, metric="crossentropy")
    names = [f"{p.path}[{i}]" for p in params for i in range(p.size)]

    def objective(trial):
        vector = np.array([suggest(trial, name) for name in names])
        return float(evaluator.evaluate(vector[None])[0])

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    best = np.array([study.best_params[name] for name in names])
    view.set_vector(best)
    return study.best_value


def suggest_gamma(trial, name):
    if name.startswith("gamma/n"):
        return trial.suggest_float(name, 0.5, 20.0, log=True)
    return trial.suggest_float(name, 0.0, 1.0)


def suggest_weight(trial, name):
    return trial.suggest_float(name, -2.0, 2.0)


def experiment(label, build, target, suggest, splits, args):
    train, val, test = splits
    rows = []
    budget = args.popsize * args.generations

    start = build(args.seed)
    held = {id(p.variable) for p in select_parameters(start, target)}
    outer = {id(v) for v in start.weights} - held
    t0 = time.perf_counter()
    fit(start, train, val, args.epochs, trainable=outer)
    pretrain_s = time.perf_counter() - t0
    start_weights = start.get_weights()
    rows.append(
        (label, "start (outer weights trained, activation at init)", *scores(start, val, test), 0, pretrain_s)
    )

    def fresh():
        model = build(args.seed)
        model.set_weights(start_weights)
        return model

    model = fresh()
    t0 = time.perf_counter()
    evolve(
        model,
        val,
        target=target,
        algorithm="snes",
        popsize=args.popsize,
        generations=args.generations,
        metric="crossentropy",
        stdev_init=args.stdev[target],
        seed=args.seed,
        progress=False,
    )
    rows.append((label, "evolution (SNES)", *scores(model, val, test), budget, time.perf_counter() - t0))

    model = fresh()
    t0 = time.perf_counter()
    optuna_search(model, val, select_parameters(model, target), budget, suggest, args.seed)
    rows.append((label, "Optuna TPE", *scores(model, val, test), budget, time.perf_counter() - t0))

    model = fresh()
    t0 = time.perf_counter()
    fit(model, train, val, args.epochs, trainable={id(p.variable) for p in select_parameters(model, target)})
    rows.append(
        (label, "gradient (activation params only)", *scores(model, val, test), 0, time.perf_counter() - t0)
    )

    model = build(args.seed)
    t0 = time.perf_counter()
    fit(model, train, val, args.epochs, trainable=None)
    rows.append(
        (label, "gradient, joint (all weights)", *scores(model, val, test), 0, time.perf_counter() - t0)
    )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--popsize", type=int, default=32)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["gamma", "inner"], help="run one experiment")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    args.stdev = {"gamma": 0.5, "inner": 0.1}
    splits = data(args.seed)
    rows = []
    if args.only in (None, "gamma"):
        rows += experiment(
            "A: per-neuron gamma (128 params)", gamma_mlp, "gamma", suggest_gamma, splits, args
        )
    if args.only in (None, "inner"):
        rows += experiment("B: inner MLP g (337 weights)", twoarg_mlp, "inner", suggest_weight, splits, args)
    print(f"backend: {keras.backend.backend()}")
    print("| experiment | method | val cross-entropy | test accuracy | model evaluations | seconds |")
    print("|---|---|---:|---:|---:|---:|")
    for label, method, ce, acc, evals, secs in rows:
        print(f"| {label} | {method} | {ce:.4f} | {acc:.4f} | {evals or '-'} | {secs:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
