"""keras_bioact.datasets: digits split, IDX reader and directory loader, Fashion-MNIST, sequences."""

import gzip
import os
import struct

import numpy as np
import pytest

from keras_bioact import datasets

pytestmark = pytest.mark.single_backend  # backend-independent: spec, CLI and data plumbing


def _idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.tobytes()


def _write(path, array, gz=False):
    data = _idx_bytes(array)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _idx_dir(tmp_path, gz=False, alt_names=False, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 3, 2), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 3, 2), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        if alt_names:
            name = name.replace("-idx", ".idx")
        _write(tmp_path / (name + (".gz" if gz else "")), array, gz=gz)
    return arrays


def test_digits_split():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(test_fraction=0.25, seed=0)
    assert x_train.shape[1:] == (8, 8) and x_test.shape[1:] == (8, 8)
    assert len(x_train) + len(x_test) == 1797 and len(x_train) == len(y_train) and len(x_test) == len(y_test)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0 and x_train.max() == 1.0
    all_labels = np.concatenate([y_train, y_test])
    for label in range(10):  # stratified: each class split 3:1
        total = np.sum(all_labels == label)
        assert np.sum(y_test == label) == round(0.25 * total)
    # Shuffled, not sorted by class.
    assert np.any(np.diff(y_train) < 0)


def test_digits_deterministic_and_seeded():
    a = datasets.load_digits(seed=3)
    b = datasets.load_digits(seed=3)
    c = datasets.load_digits(seed=4)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    np.testing.assert_array_equal(a[1][1], b[1][1])
    assert not np.array_equal(a[1][0], c[1][0])
    (x_train, _), (x_test, _) = datasets.load_digits(test_fraction=0.5)
    assert abs(len(x_test) - len(x_train)) < 20
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            datasets.load_digits(test_fraction=bad)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx(tmp_path, gz):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = _write(tmp_path / "a.idx", array, gz=gz)
    np.testing.assert_array_equal(datasets.read_idx(path), array)
    np.testing.assert_array_equal(datasets.read_idx(str(path), expected_ndim=3), array)
    with pytest.raises(ValueError, match=r"a\.idx.*dimensions"):
        datasets.read_idx(path, expected_ndim=1)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + b"\x01\x02")
    with pytest.raises(ValueError, match=r"bad\.idx.*magic"):
        datasets.read_idx(path)
    empty = tmp_path / "empty.idx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.idx"):
        datasets.read_idx(empty)


@pytest.mark.parametrize("cut", ["data", "header"])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path, cut, gz):
    data = _idx_bytes(np.zeros((5, 4, 4), np.uint8))
    data = data[:-3] if cut == "data" else data[:9]  # 9 bytes: magic + part of the dimensions
    path = tmp_path / "short.idx"
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    with pytest.raises(ValueError, match=r"short\.idx.*truncated"):
        datasets.read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    # A gzip file cut short (interrupted download) is reported as such, naming the file.
    blob = gzip.compress(_idx_bytes(np.arange(200, dtype=np.uint8).reshape(10, 20)))
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cut\.idx\.gz"):
        datasets.read_idx(path)


@pytest.mark.parametrize("gz, alt_names", [(False, False), (True, False), (False, True), (True, True)])
def test_load_idx_dir(tmp_path, gz, alt_names):
    arrays = _idx_dir(tmp_path, gz=gz, alt_names=alt_names)
    (x_train, y_train), (x_test, y_test) = datasets.load_idx_dir(tmp_path)
    assert x_train.shape == (6, 3, 2) and x_test.shape == (4, 3, 2)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    np.testing.assert_allclose(x_train, arrays["train-images-idx3-ubyte"] / 255.0, rtol=1e-7)
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert datasets.load(f"idx:{tmp_path}")[0][0].shape == (6, 3, 2)


def test_load_idx_dir_missing_and_mismatched(tmp_path):
    _idx_dir(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(datasets.DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_idx_dir(tmp_path)
    _write(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))  # 4 images, 3 labels
    with pytest.raises(ValueError, match="differ in count"):
        datasets.load_idx_dir(tmp_path)


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.FASHION_MNIST_ENV, raising=False)
    with pytest.raises(datasets.DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        datasets.load_fashion_mnist(tmp_path / "nowhere")
    assert "nowhere" in str(info.value)
    # A directory without the files: the same hint.
    with pytest.raises(datasets.DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(tmp_path)
    assert issubclass(datasets.DatasetNotFoundError, FileNotFoundError)


def test_fashion_mnist_from_env_var(tmp_path, monkeypatch):
    _idx_dir(tmp_path, gz=True)
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path))
    (x_train, _), (x_test, _) = datasets.load_fashion_mnist()
    assert x_train.shape == (6, 3, 2) and x_test.shape == (4, 3, 2)
    assert datasets.load("fashion_mnist")[0][0].shape == (6, 3, 2)


@pytest.mark.skipif(not os.path.isdir(datasets.FASHION_MNIST_DIR), reason="dataset-fashion-mnist missing")
def test_fashion_mnist_installed(monkeypatch):
    monkeypatch.delenv(datasets.FASHION_MNIST_ENV, raising=False)
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and set(np.unique(y_test)) == set(range(10))
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0


def test_load_unknown_name():
    with pytest.raises(ValueError, match="unknown data set"):
        datasets.load("mnist-from-the-internet")


def test_sequential_and_permuted():
    images = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    seq = datasets.sequential(images)
    assert seq.shape == (2, 12, 1) and seq.dtype == np.float32
    np.testing.assert_array_equal(seq[1, :, 0], images[1].reshape(-1))
    perm = datasets.sequential(images, permute=True)
    assert perm.shape == (2, 12, 1)
    assert not np.array_equal(perm, seq)
    np.testing.assert_array_equal(np.sort(perm[:, :, 0], axis=1), np.sort(seq[:, :, 0], axis=1))
    # One fixed permutation: the same for every image and every call (train and test alike).
    order = perm[0, :, 0].astype(int)  # image 0 holds 0..11, so it shows the permutation
    np.testing.assert_array_equal(perm[1, :, 0], seq[1, order, 0])
    np.testing.assert_array_equal(datasets.sequential(images[1:], permute=True), perm[1:])
    other = datasets.sequential(images, permute=True, seed=401)
    assert not np.array_equal(other, perm)
    np.testing.assert_array_equal(datasets.sequential(images.reshape(2, 12)), seq)


def test_pool_images_block_means():
    rng = np.random.default_rng(0)
    images = rng.random((3, 4, 6)).astype(np.float32)
    pooled = datasets.pool_images(images, 2)
    assert pooled.shape == (3, 2, 3) and pooled.dtype == np.float32
    for i, r, c in [(0, 0, 0), (1, 1, 2), (2, 0, 1)]:
        block = images[i, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2]
        np.testing.assert_allclose(pooled[i, r, c], block.mean(), rtol=1e-6)
    np.testing.assert_array_equal(datasets.pool_images(images, 1), images)
    assert datasets.sequential(pooled).shape == (3, 6, 1)
    with pytest.raises(ValueError, match="not a multiple of `factor`=4"):
        datasets.pool_images(images, 4)
    with pytest.raises(ValueError, match="`factor` must be an integer >= 1"):
        datasets.pool_images(images, 0)
