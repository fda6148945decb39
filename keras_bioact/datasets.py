"""Offline data sets for recipes, searches and tests. Nothing is downloaded.

* `load_digits`: scikit-learn's bundled 8x8 digits (1,797 images), split reproducibly.
* `load_fashion_mnist`: Fashion-MNIST from Debian's `dataset-fashion-mnist` package
  (`/usr/share/datasets/fashion-mnist`), from `$KERAS_BIOACT_FASHION_MNIST`, or a path.
* `load_idx_dir`: any directory of MNIST-format IDX files (so real MNIST works where you have it).
* `sequential`: turns images into pixel-by-pixel sequences, optionally with a fixed random
  permutation (sequential / permuted-sequential tasks of Geadah et al. 2020 and Geadah et al. 2024).
* `pool_images`: average-pools images in square blocks (shorter pixel sequences).

Every loader returns `(x_train, y_train), (x_test, y_test)` with float32 images in [0, 1]
of shape `(N, H, W)` and int32 labels.
"""

import gzip
import math
import os
import pathlib
import stat
import struct

import numpy as np

from keras_bioact.errors import BioactError

__all__ = [
    "load", "load_digits", "load_fashion_mnist", "load_idx_dir", "pool_images", "sequential",
    "DatasetNotFoundError", "MAX_FILE_BYTES", "regular_file",
]  # fmt: skip

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "KERAS_BIOACT_FASHION_MNIST"
IDX_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


# The largest file read for a data set (an IDX file, or the data an IDX header announces) or
# named by a search spec (`model.path`): far above Fashion-MNIST's 47 MB, far below a machine's memory.
MAX_FILE_BYTES = 2 << 30


class DatasetNotFoundError(BioactError, FileNotFoundError):
    """A data set is not installed; the message says how to install it."""


def regular_file(path, limit=None):
    """The size of `path` in bytes; `ValueError` unless it is a regular file of at most `limit`
    bytes (default `MAX_FILE_BYTES`; `OSError` if it cannot be stat'ed). Checked before opening:
    a device (/dev/zero), a named pipe or a directory is never opened."""
    limit = MAX_FILE_BYTES if limit is None else limit
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file (devices, named pipes and folders are never read)")
    if st.st_size > limit:
        raise ValueError(f"{path} is {st.st_size:,} bytes, over the limit of {limit:,} bytes")
    return st.st_size


def load_digits(test_fraction=0.25, seed=0):
    """scikit-learn's digits: 1,797 8x8 images of 10 classes, scaled to [0, 1].

    Args:
        test_fraction: fraction held out as the test split (stratified by class).
        seed: seed of the split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits: `test_fraction` must be in (0, 1), got {test_fraction}.")
    from sklearn.datasets import load_digits as sk_load_digits

    data = sk_load_digits()
    x = (data.images / 16.0).astype("float32")
    y = data.target.astype("int32")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        test[idx[: int(round(test_fraction * len(idx)))]] = True
    train_idx = rng.permutation(np.flatnonzero(~test))
    test_idx = rng.permutation(np.flatnonzero(test))
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def _open(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path, expected_ndim=None):
    """Read one IDX file (optionally gzipped), validating the magic number and the size.

    The file must be a regular file (`regular_file`), and at most `MAX_FILE_BYTES` are read
    from it, gzipped or not, whatever its header announces."""
    path = pathlib.Path(path)
    try:
        regular_file(path)
    except OSError as e:
        raise ValueError(f"read_idx: cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ValueError(f"read_idx: {e}") from None
    try:
        return _read_idx(path, expected_ndim)
    except (EOFError, gzip.BadGzipFile) as e:  # a .gz cut short, e.g. by an interrupted copy
        raise ValueError(f"read_idx: {path} is truncated or corrupt: {e}") from e


def _read_idx(path, expected_ndim):
    with _open(path) as f:
        header = f.read(4)
        if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08:
            raise ValueError(
                f"read_idx: {path} is not an unsigned-byte IDX file (bad magic number {header!r}; "
                "expected 0x0000 08 followed by the number of dimensions)."
            )
        ndim = header[3]
        if expected_ndim is not None and ndim != expected_ndim:
            raise ValueError(f"read_idx: {path} has {ndim} dimensions, expected {expected_ndim}.")
        raw_dims = f.read(4 * ndim)
        if len(raw_dims) != 4 * ndim:
            raise ValueError(
                f"read_idx: {path} is truncated or corrupt: the header announces {ndim} dimensions "
                f"but holds only {len(raw_dims)} of their {4 * ndim} bytes."
            )
        dims = struct.unpack(">" + "I" * ndim, raw_dims)
        expected = math.prod(dims)
        if expected > MAX_FILE_BYTES:
            raise ValueError(
                f"read_idx: {path}'s header announces {dims} = {expected:,} bytes, over the limit "
                f"of {MAX_FILE_BYTES:,} bytes."
            )
        data = f.read(expected + 1)
    if len(data) != expected:
        found = "more" if len(data) > expected else f"{len(data)}"
        raise ValueError(
            f"read_idx: {path} is truncated or corrupt: header says {dims} = {expected} bytes, "
            f"found {found}."
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def find_idx(directory, key):
    for stem in IDX_NAMES[key]:
        for suffix in ("", ".gz"):
            candidate = directory / (stem + suffix)
            if candidate.exists():
                return candidate
    return None


def load_idx_dir(path, name="IDX data set", install_hint=None):
    """Load an MNIST-format directory (train/t10k images and labels, `.gz` or not)."""
    directory = pathlib.Path(path)
    files = {key: find_idx(directory, key) for key in IDX_NAMES}
    missing = [IDX_NAMES[k][0] for k, v in files.items() if v is None]
    if missing:
        hint = f" {install_hint}" if install_hint else ""
        raise DatasetNotFoundError(
            f"{name}: {directory} lacks {', '.join(missing)} (optionally .gz).{hint}"
        )
    arrays = {}
    for key, file in files.items():
        arrays[key] = read_idx(file, expected_ndim=3 if key.endswith("images") else 1)
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise ValueError(
                f"{name}: {split} images ({len(arrays[f'{split}_images'])}) and labels "
                f"({len(arrays[f'{split}_labels'])}) differ in count in {directory}."
            )

    def images(a):
        return (a.astype("float32") / 255.0)

    return (
        (images(arrays["train_images"]), arrays["train_labels"].astype("int32")),
        (images(arrays["test_images"]), arrays["test_labels"].astype("int32")),
    )


def load_fashion_mnist(path=None):
    """Fashion-MNIST (60,000 + 10,000 28x28 images) from a local install; never downloads.

    Looks in `path`, else `$KERAS_BIOACT_FASHION_MNIST`, else Debian's install location
    `/usr/share/datasets/fashion-mnist`.
    """
    path = path or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR
    hint = (
        "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the "
        f"four IDX files in a directory and pass `path=` or set ${FASHION_MNIST_ENV}."
    )
    if not pathlib.Path(path).is_dir():
        raise DatasetNotFoundError(f"Fashion-MNIST: directory {path} not found. {hint}")
    return load_idx_dir(path, name="Fashion-MNIST", install_hint=hint)


def pool_images(images, factor):
    """Average-pool `(N, H, W)` images in non-overlapping `factor x factor` blocks.

    `pool_images(x, 2)` turns 28x28 Fashion-MNIST into 14x14 images, i.e. 196-step pixel
    sequences. H and W must be multiples of `factor`.
    """
    images = np.asarray(images)
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"pool_images: `factor` must be an integer >= 1, got {factor}.")
    n, h, w = images.shape
    if h % factor or w % factor:
        raise ValueError(f"pool_images: image size {h}x{w} is not a multiple of `factor`={factor}.")
    blocks = images.reshape(n, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4), dtype="float64").astype("float32")


def sequential(images, permute=False, seed=400):
    """Flatten `(N, H, W)` images to `(N, H*W, 1)` pixel sequences.

    Args:
        images: array of shape `(N, H, W)` (or `(N, H*W)`).
        permute: apply one fixed random permutation of the time steps (the psMNIST protocol).
        seed: seed of the permutation (400, as in the authors' psMNIST script).
    """
    images = np.asarray(images)
    seq = images.reshape(len(images), -1)
    if permute:
        seq = seq[:, np.random.default_rng(seed).permutation(seq.shape[1])]
    return seq[..., None].astype("float32")


def load(name, **kwargs):
    """Load a data set by name: `"digits"`, `"fashion_mnist"`, or `"idx:/path/to/dir"`."""
    if name == "digits":
        return load_digits(**kwargs)
    if name in ("fashion_mnist", "fashion-mnist"):
        return load_fashion_mnist(**kwargs)
    if name.startswith("idx:"):
        return load_idx_dir(name[4:], **kwargs)
    raise ValueError(f"datasets.load: unknown data set {name!r}; use 'digits', 'fashion_mnist' or 'idx:DIR'.")
