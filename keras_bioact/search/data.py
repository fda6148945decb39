"""The data of a search, shared by both engines: the training split with validation carved out
of it (seeded), and the test split that the search never sees."""

from __future__ import annotations

import math

from keras_bioact.search.spec.model import SpecError

__all__ = ["load_data", "load_splits", "shape_and_classes"]


def load_splits(spec):
    """`{"train", "val", "test"}` -> `(x, y)` of `spec`'s `[data]`: validation carved out of the
    training split with `data.seed`; `SpecError` naming the key if the data cannot be used."""
    import numpy as np

    from keras_bioact import datasets

    name = spec.data["name"]
    opts = {
        k: v
        for k, v in spec.data.items()
        if k == "path" or (name == "digits" and k in ("test_fraction", "seed"))
    }
    data_key = "data.path" if "path" in spec.data else "data.name"
    try:
        (x, y), test = datasets.load(name, **opts)
    except (OSError, ValueError) as e:  # not installed, unreadable, damaged
        raise SpecError(spec.source, data_key, f"cannot load the data set: {e}") from None
    n = len(x)
    if n < 2 or not len(test[0]):
        raise SpecError(
            spec.source,
            "data.test_fraction" if "test_fraction" in spec.data else data_key,
            f"gives {n} training and {len(test[0])} test samples; a search needs at least 2 "
            "training samples (one is held out for validation) and 1 test sample",
        )
    order = np.random.default_rng(spec.data.get("seed", 0)).permutation(n)
    n_val = max(1, int(round(n * spec.data.get("validation_fraction", 0.2))))
    if n_val >= n:
        raise SpecError(
            spec.source,
            "data.validation_fraction",
            f"leaves no training sample of the {n} in {name}'s training split; legal for this "
            f"data: (0, {math.floor((n - 1) / n * 1e6) / 1e6}]",
        )
    val, train = order[:n_val], order[n_val:]
    splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test}
    for split in splits:
        limit = spec.data.get(f"max_{split}")
        if limit:
            splits[split] = tuple(a[:limit] for a in splits[split])
    return splits


def shape_and_classes(splits):
    """`(input_shape, num_classes)` of a `load_splits` result."""
    import numpy as np

    num_classes = int(max(np.max(y) for _, y in splits.values())) + 1
    return tuple(np.asarray(splits["train"][0]).shape[1:]), num_classes


def load_data(spec):
    """`((x_train, y_train), (x_val, y_val))` and `(input_shape, num_classes)` of `spec`; the
    test split is not returned (see `load_splits`)."""
    splits = load_splits(spec)
    return (splits["train"], splits["val"]), shape_and_classes(splits)
