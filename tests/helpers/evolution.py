"""Tiny known-optimum problems for the evolution tests (also run as a script by the resume test).

Teacher and student share every outer weight; the teacher's gamma parameters are the target
`TARGET_N`, `TARGET_S`; the student starts elsewhere. The fitness is the MSE between the
student's and the teacher's outputs, zero exactly at the target. The read-out is the identity,
so each output sees one neuron and every `(n_i, s_i)` is identifiable.
"""

import argparse
import json
import os
import sys

import keras
import numpy as np

from keras_bioact.layers import BRU, GammaActivation
from keras_bioact.seeding import set_random_seed

TARGET_N = np.array([1.0, 3.0, 2.0, 0.7], dtype="float32")
TARGET_S = np.array([0.2, 0.8, 0.5, 0.3], dtype="float32")


def gamma_model(n0, s0, seed=0):
    set_random_seed(seed)
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, name="d1")(inputs)
    h = GammaActivation(
        n_initializer=keras.initializers.Constant(n0),
        s_initializer=keras.initializers.Constant(s0),
        s_constraint="unit",
        name="gamma",
    )(h)
    outputs = keras.layers.Dense(4, kernel_initializer="identity", name="d2")(h)
    return keras.Model(inputs, outputs)


def teacher_problem(n_samples=256):
    """`(student, (x, y))`: y is the teacher's output on x."""
    x = np.random.default_rng(0).normal(size=(n_samples, 3)).astype("float32") * 2.0
    teacher = gamma_model(TARGET_N, TARGET_S)
    y = keras.ops.convert_to_numpy(teacher(x))
    student = gamma_model(1.5, 0.5)
    return student, (x, y)


def classifier(seed=0, per_neuron_r=True):
    """A small classifier with gamma (per neuron) and BRU (per neuron or per layer) units."""
    set_random_seed(seed)
    inputs = keras.Input((4, 4))
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(8, name="dense_a")(h)
    h = GammaActivation(name="gamma_a")(h)
    h = keras.layers.Dense(6, name="dense_b")(h)
    h = BRU(r=1.5, trainable_r=True, shared_axes=None if per_neuron_r else "all", name="bru_b")(h)
    outputs = keras.layers.Dense(3, name="logits")(h)
    return keras.Model(inputs, outputs)


def classification_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4, 4)).astype("float32")
    y = (x[:, :2].sum(axis=(1, 2)) * 1.5).astype("int32") % 3
    return x, y


def main(argv=None):
    """Run (or resume) a small seeded SNES search on the teacher problem; used by the SIGKILL test."""
    from keras_bioact.search.evolution import evolve

    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--generations", type=int, default=12)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--algorithm", default="snes")
    args = parser.parse_args(argv)

    import time

    student, data = teacher_problem()
    result = evolve(
        student,
        data,
        target="gamma",
        algorithm=args.algorithm,
        popsize=8,
        generations=args.generations,
        metric="mse",
        seed=7,
        out_dir=args.out_dir,
        resume=args.resume,
        progress=False,
        callbacks=[lambda row: time.sleep(args.sleep)],
    )
    with open(os.path.join(args.out_dir, "final.json"), "w") as f:
        json.dump({"best_fitness": result.best_fitness, "best_genes": result.best_genes.tolist()}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
