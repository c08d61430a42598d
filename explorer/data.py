"""Data sets: MNIST and Fashion-MNIST as uint8 tensors, from IDX files or a download.

Where the files come from, in order:
  1. the `data_dir` argument (the training CLI's `--data-dir`),
  2. the environment variable LATENT_EXPLORER_DATA,
  3. otherwise a download of the split asked for (two files; the app asks only for the
     test split), once, into ~/.cache/latent-explorer, from torchvision's mirrors.

A data folder is laid out like `../shared/data`: one sub-folder per data set (`mnist/`,
`fashion-mnist/`) holding the four standard IDX files, gzip-compressed or not. A folder
that directly holds the four files also works.

Binary models train on *dynamically* binarized images (a fresh Bernoulli draw per batch)
and are scored on one *fixed* binarization of the test set, so that every model in the
project (and the literature's numbers) sees the same bits.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "LATENT_EXPLORER_DATA"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "latent-explorer"

# Folder name and class names of each data set.
DATASETS: dict[str, tuple[str, list[str]]] = {
    "mnist": ("mnist", [str(i) for i in range(10)]),
    "fashion-mnist": (
        "fashion-mnist",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), then the number of dims.
_IDX_UBYTE = 0x08


# Where the IDX files can be downloaded (torchvision's mirrors) and their MD5 sums.
MIRRORS: dict[str, list[str]] = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
# Seconds to wait on a mirror: without a network the app starts after at most this per mirror.
DOWNLOAD_TIMEOUT = 15


class DataError(RuntimeError):
    """A data file is missing or not what it should be; the message names the file.

    `brief` says the same for a web page: a short sentence with no server paths or raw
    network errors (those go to the log).
    """

    def __init__(self, message: str, brief: str = "the test images could not be read") -> None:
        super().__init__(message)
        self.brief = brief


@dataclass(frozen=True)
class Split:
    """One split of a data set: images (N, 28, 28) uint8 and labels (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def class_names(dataset: str) -> list[str]:
    return list(_dataset_entry(dataset)[1])


def _dataset_entry(dataset: str) -> tuple[str, list[str]]:
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[dataset]


def read_idx(path: str | Path, expected_ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzip or raw), checking its header against its size."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: damaged gzip data ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (expected the header 00 00 08 {expected_ndim:02x})")
    if raw[2] != _IDX_UBYTE or raw[3] != expected_ndim:
        raise DataError(
            f"{path}: IDX header says type 0x{raw[2]:02x} with {raw[3]} dims; "
            f"expected unsigned bytes (0x08) with {expected_ndim} dims"
        )
    header_len = 4 + 4 * expected_ndim
    if len(raw) < header_len:
        raise DataError(f"{path}: file ends inside its IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_ndim))
    expected_len = header_len + int(np.prod(shape))
    if len(raw) != expected_len:
        raise DataError(
            f"{path}: header promises shape {shape} ({expected_len} bytes) but the file "
            f"holds {len(raw)} bytes; it is truncated or damaged"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def _find_file(folder: Path, dataset: str, stem: str) -> Path:
    sub = _dataset_entry(dataset)[0]
    candidates = [folder / sub / stem, folder / sub / f"{stem}.gz", folder / stem, folder / f"{stem}.gz"]
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(
        f"{folder / sub / (stem + '.gz')}: file not found (looked for {stem} or {stem}.gz in "
        f"{folder / sub} and {folder}); point --data-dir or ${DATA_ENV} at a folder laid out "
        f"like <dir>/{sub}/{stem}.gz",
        f"they are not in the data folder (it needs {sub}/{stem}.gz)",
    )


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The folder to read from: the argument, else $LATENT_EXPLORER_DATA, else None (download)."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
    return Path(data_dir) if data_dir is not None else None


def load_split(dataset: str, split: str, data_dir: str | Path | None = None) -> Split:
    """Load one split ("train" or "test") of "mnist" or "fashion-mnist"."""
    if split not in SPLIT_PREFIX:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    classes = class_names(dataset)
    folder = resolve_data_dir(data_dir)
    if folder is None:
        images, labels = _download(dataset, split)
    else:
        prefix = SPLIT_PREFIX[split]
        img_path = _find_file(folder, dataset, f"{prefix}-images-idx3-ubyte")
        lab_path = _find_file(folder, dataset, f"{prefix}-labels-idx1-ubyte")
        images = read_idx(img_path, 3)
        labels = read_idx(lab_path, 1)
        if images.shape[1:] != (28, 28):
            raise DataError(f"{img_path}: images are {images.shape[1:]}, expected 28x28")
        if len(images) != len(labels):
            raise DataError(f"{lab_path}: {len(labels)} labels for {len(images)} images in {img_path}")
        if labels.size and labels.max() >= len(classes):
            raise DataError(f"{lab_path}: label {labels.max()} out of range 0..{len(classes) - 1}")
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), classes)


def _download(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split's two IDX files from the cache, downloading any that are missing (once:
    later runs find them there). Only used when no data folder is given."""
    prefix = SPLIT_PREFIX[split]
    folder = CACHE_DIR / _dataset_entry(dataset)[0]
    paths = [_fetch(dataset, f"{prefix}-{kind}.gz", folder) for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    return read_idx(paths[0], 3), read_idx(paths[1], 1)


def _fetch(dataset: str, name: str, folder: Path) -> Path:
    """One file of a data set in `folder`, checked against its MD5; downloaded if missing."""
    path = folder / name
    want = MD5[dataset][name]
    if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == want:
        return path
    reasons = []
    for mirror in MIRRORS[dataset]:
        try:
            with urllib.request.urlopen(mirror + name, timeout=DOWNLOAD_TIMEOUT) as response:
                data = response.read()
        except (OSError, ValueError) as err:  # no network, DNS, HTTP errors, timeouts
            reasons.append(f"{mirror + name}: {err}")
            continue
        if hashlib.md5(data).hexdigest() != want:
            reasons.append(f"{mirror + name}: wrong MD5 checksum")
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".part{os.getpid()}")
            partial.write_bytes(data)
            partial.replace(path)  # atomic: a reader never sees half a file
        except OSError as err:
            raise DataError(f"could not write {path} ({err})",
                            f"the downloaded {dataset} images could not be stored") from None
        return path
    message = (f"could not download {name} of {dataset} ({'; '.join(reasons)}); without internet, "
               f"point --data-dir or ${DATA_ENV} at a folder of IDX files")
    raise DataError(message, "they could not be downloaded (no internet connection?)")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel ~ Bernoulli(intensity). Input float in [0, 1]."""
    return torch.bernoulli(images, generator=generator)


def threshold(images: torch.Tensor) -> torch.Tensor:
    """Grey images in [0, 1] -> zeros and ones, cut at 0.5: how one picture (a drawing, an
    upload, an example) is shown to a binary model. Data sets are binarized at random instead."""
    return (images >= 0.5).float()


def fixed_binarized_test(images_uint8: torch.Tensor) -> torch.Tensor:
    """The one fixed binarization of a test set that every likelihood here is scored on.

    As `../shared/data/README.md` defines it: each pixel ~ Bernoulli(intensity / 255), drawn
    once with `torch.Generator().manual_seed(0)` over the whole test tensor in file order.
    Returns float (N, 1, 28, 28) of zeros and ones.
    """
    g = torch.Generator().manual_seed(0)
    probs = images_uint8.float() / 255.0  # (N, 28, 28), file order
    return torch.bernoulli(probs, generator=g).unsqueeze(1)
