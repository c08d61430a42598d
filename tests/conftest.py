"""Shared fixtures: tiny fake data sets and tiny checkpoints, so tests never need ../shared."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # CI has 2 cores; keep one for the servers some tests start

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tiny configs: every latent model family, small enough to build and run in milliseconds.
TINY = {"hidden": 16, "channels": 4}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (the MNIST file format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake_dataset(folder: Path, dataset: str = "mnist", n_train: int = 256, n_test: int = 64,
                       seed: int = 0, compress: bool = True) -> Path:
    """Write random 28x28 'digits' with labels, laid out like ../shared/data; returns the root."""
    rng = np.random.default_rng(seed)
    sub = folder / dataset
    sub.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        # A bright bar whose row depends on the label, plus noise: learnable but tiny.
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, lab in enumerate(labels):
            images[i, 4 + 2 * lab: 6 + 2 * lab, 4:24] = 255
        for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            data = idx_bytes(arr)
            name = f"{prefix}-{kind}"
            if compress:
                (sub / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (sub / name).write_bytes(data)
    return folder


@pytest.fixture
def fake_data(tmp_path: Path) -> Path:
    return write_fake_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_trained_dir(tmp_path_factory) -> Path:
    """A `trained/`-like folder with tiny random-weight latent models of every kind."""
    from explorer import checkpoints
    from explorer.models import build

    folder = tmp_path_factory.mktemp("trained")
    torch.manual_seed(0)
    specs = {
        "mnist-ae": ("ae", {"latent_dim": 4}),
        "mnist-vae": ("vae", {"latent_dim": 4}),
        "mnist-vae2d": ("vae", {"latent_dim": 2}),
        "mnist-cvae": ("cvae", {"latent_dim": 4}),
        "fashion-mnist-vae": ("vae", {"latent_dim": 4}),
    }
    for stem, (name, cfg) in specs.items():
        model = build(name, {**TINY, **cfg}).eval()
        dataset = "fashion-mnist" if stem.startswith("fashion") else "mnist"
        checkpoints.save(folder / f"{stem}.safetensors", model, dataset=dataset,
                         metrics={"test_neg_elbo": 123.4, "headline": "test_neg_elbo"},
                         training={"command": "tiny test model", "epochs": 0})
    return folder


def needs_shared_data():
    return pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(),
                              reason=f"real MNIST not found at {SHARED_DATA} (only on the dev machines)")


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
