"""Data loading: IDX parsing, folder layout, clear errors, binarization."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from explorer import data
from tests.helpers import SHARED_DATA, idx_bytes, needs_shared_data, write_fake_dataset


def test_read_idx_round_trip_gzip_and_raw(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "raw").write_bytes(idx_bytes(arr))
    (tmp_path / "gz").write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "raw", 3), arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "gz", 3), arr)


@pytest.mark.parametrize("compress", [True, False])
def test_load_split_from_folder(tmp_path, compress):
    root = write_fake_dataset(tmp_path, "fashion-mnist", n_train=32, n_test=16, compress=compress)
    split = data.load_split("fashion-mnist", "test", root)
    assert split.images.shape == (16, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.shape == (16,) and split.labels.dtype == torch.int64
    assert split.classes[9] == "Ankle boot"
    # A folder that holds the files directly works too.
    assert len(data.load_split("fashion-mnist", "train", root / "fashion-mnist")) == 32


def test_environment_variable_selects_folder(tmp_path, monkeypatch):
    root = write_fake_dataset(tmp_path, n_train=8, n_test=4)
    monkeypatch.setenv(data.DATA_ENV, str(root))
    assert len(data.load_split("mnist", "test")) == 4


def test_missing_file_names_it(tmp_path):
    root = write_fake_dataset(tmp_path, n_train=8, n_test=4)
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz: file not found"):
        data.load_split("mnist", "test", root)


def test_truncated_file_is_reported(tmp_path):
    root = write_fake_dataset(tmp_path, n_train=8, n_test=4, compress=False)
    path = root / "mnist" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte: .*truncated"):
        data.load_split("mnist", "test", root)


def test_wrong_header_and_damaged_gzip_are_reported(tmp_path):
    root = write_fake_dataset(tmp_path, n_train=8, n_test=4)
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.load_split("mnist", "test", root)
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(data.DataError, match="damaged gzip"):
        data.load_split("mnist", "test", root)
    # Labels file where images belong: right magic, wrong number of dims.
    labels = (root / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(labels)
    with pytest.raises(data.DataError, match="expected unsigned bytes .* with 3 dims"):
        data.load_split("mnist", "test", root)


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_split("cifar", "test", "/nowhere")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_split("mnist", "valid", "/nowhere")


def test_fixed_binarization_follows_the_definition():
    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8)
    bits = data.fixed_binarized_test(images)
    assert bits.shape == (50, 1, 28, 28)
    assert set(bits.unique().tolist()) <= {0.0, 1.0}
    expected = torch.bernoulli(images.float() / 255, generator=torch.Generator().manual_seed(0))
    assert torch.equal(bits[:, 0], expected)
    assert torch.equal(bits, data.fixed_binarized_test(images))  # fixed: the same every call
    # Black stays 0 and white stays 1.
    assert bits[images.unsqueeze(1) == 0].max() == 0 and bits[images.unsqueeze(1) == 255].min() == 1


def test_dynamic_binarization_redraws():
    x = torch.full((4, 1, 28, 28), 0.5)
    g = torch.Generator().manual_seed(1)
    a, b = data.binarize(x, g), data.binarize(x, g)
    assert not torch.equal(a, b)
    assert abs(float(torch.cat([a, b]).mean()) - 0.5) < 0.05


@needs_shared_data()
def test_real_mnist_test_split():
    split = data.load_split("mnist", "test", SHARED_DATA)
    assert split.images.shape == (10_000, 28, 28)
    assert torch.bincount(split.labels).tolist()[:2] == [980, 1135]  # official class counts
