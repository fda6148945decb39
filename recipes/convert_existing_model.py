"""Use keras-bioact with your existing model: convert, fine-tune, save.

    PYTHONPATH=$PWD KERAS_BACKEND=jax python recipes/convert_existing_model.py [--epochs 3]
"""

import argparse

import keras

import keras_bioact
from keras_bioact.callbacks import StabilityGuard
from keras_bioact.datasets import load_digits
from keras_bioact.optimizers import ActivationLRMultiplier


def main(epochs=3, out="converted_digits.keras"):
    (x_train, y_train), (x_test, y_test) = load_digits()
    x_train, x_test = x_train[..., None], x_test[..., None]

    # 1. An ordinary Keras model with ReLUs, trained as usual.
    model = keras.Sequential(
        [
            keras.Input(x_train.shape[1:]),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
    print("original  test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])

    # 2. Convert: every ReLU becomes a learnable gamma activation that starts at the ReLU (its gain
    #    is calibrated per channel on probe_data, so the outputs move by less than 1 % of their scale).
    new_model, report = keras_bioact.convert(model, probe_data=x_test[:64], return_report=True)
    print(report)
    new_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print("converted test accuracy (before fine-tuning):", new_model.evaluate(x_test, y_test, verbose=0)[1])

    # 3. Fine-tune, with 10x the learning rate for the activation parameters and a NaN guard.
    optimizer = ActivationLRMultiplier(keras.optimizers.Adam(1e-3), 10.0, model=new_model)
    new_model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    new_model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0, callbacks=[StabilityGuard()])
    print("converted test accuracy (fine-tuned):", new_model.evaluate(x_test, y_test, verbose=0)[1])

    # 4. It saves and loads like any Keras model.
    new_model.save(out)
    keras.models.load_model(out)
    return new_model, report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="converted_digits.keras")
    args = parser.parse_args()
    main(args.epochs, args.out)
