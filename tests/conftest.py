"""Shared fixtures: tiny fake data sets and tiny checkpoints, so tests never need ../shared."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # CI has 2 cores; keep one for the servers some tests start

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tiny configs: every latent model family, small enough to build and run in milliseconds.
TINY = {"hidden": 16, "channels": 4}
TINY_GAN = {"latent_dim": 8, "channels": 4}
TINY_CLASSIFIER = {"channels": 4, "features": 16}
REPLAY_EPOCHS = 3
# Tiny autoregressive models: (file stem, model, config); the Fashion one is 8-bit.
TINY_AUTOREGRESSIVE = {
    "mnist-pixelcnn": ("pixelcnn", {"channels": 4, "layers": 1, "first_kernel": 3}),
    "mnist-gated_pixelcnn": ("gated_pixelcnn", {"channels": 4, "layers": 2, "first_kernel": 3}),
    "fashion-mnist-gated_pixelcnn": ("gated_pixelcnn", {"channels": 4, "layers": 1, "first_kernel": 3,
                                                        "output": "categorical256"}),
    "mnist-row_lstm": ("row_lstm", {"channels": 4, "layers": 1, "first_kernel": 3}),
    "mnist-diagonal_bilstm": ("diagonal_bilstm", {"channels": 4, "layers": 1, "first_kernel": 3}),
}


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
    """A `trained/`-like folder with tiny random-weight latent models of every kind (a GAN with
    a training replay among them), tiny autoregressive models and a tiny MNIST classifier."""
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
                         training={"command": "tiny test model", "epochs": 0, "binarized": dataset == "mnist"})
    save_tiny_gan(folder / "mnist-dcgan.safetensors")
    for stem, (name, cfg) in TINY_AUTOREGRESSIVE.items():
        dataset = "fashion-mnist" if stem.startswith("fashion") else "mnist"
        checkpoints.save(folder / f"{stem}.safetensors", build(name, cfg).eval(), dataset=dataset,
                         metrics={"test_nll": 500.0, "headline": "test_nll"},
                         training={"command": "tiny test model", "epochs": 0, "binarized": dataset == "mnist"})
    checkpoints.save(folder / "mnist-classifier.safetensors", build("classifier", TINY_CLASSIFIER).eval(),
                     dataset="mnist", metrics={"test_accuracy": 0.1, "headline": "test_accuracy"},
                     training={"command": "tiny test classifier", "epochs": 0})
    return folder


def save_tiny_gan(path: Path) -> None:
    """A tiny random-weight DCGAN whose history holds a training replay of REPLAY_EPOCHS epochs.

    Epoch e's replay is the generator's output for the fixed codes scaled by e: different
    pictures every epoch, as in a real run.
    """
    from explorer import checkpoints, metrics
    from explorer.models import build

    model = build("dcgan", TINY_GAN).eval()
    z = model.sample_latent(100, torch.Generator().manual_seed(1234))
    with torch.no_grad():
        replay = [metrics.encode_images(model.decode(z * e)) for e in range(1, REPLAY_EPOCHS + 1)]
    epochs = list(range(1, REPLAY_EPOCHS + 1))
    history = {"epoch": epochs, "train_loss": [1.4, 1.2, 1.1], "train_g_loss": [0.7, 0.9, 1.0],
               "critic_gap": [0.1, 0.3, 0.2], "seconds": [1.0, 2.0, 3.0], "replay": replay}
    checkpoints.save(path, model, dataset="mnist", history=history,
                     metrics={"critic_gap": 0.2, "headline": "critic_gap", "frechet_distance": 12.3,
                              "classes_covered": 7},
                     training={"command": "tiny test GAN", "epochs": REPLAY_EPOCHS})


def needs_shared_data():
    return pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(),
                              reason=f"real MNIST not found at {SHARED_DATA} (only on the dev machines)")


# ------------------------------------------------------------- the app, served once per session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_folder(tiny_trained_dir: Path, tmp_path_factory) -> Path:
    """The tiny checkpoints plus a garbage file and a truncated checkpoint."""
    folder = tmp_path_factory.mktemp("served")
    for f in tiny_trained_dir.glob("*.safetensors"):
        shutil.copy(f, folder / f.name)
    (folder / "garbage.safetensors").write_bytes(b"this is not a checkpoint")
    whole = (tiny_trained_dir / "mnist-vae.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(whole[: len(whole) // 2])
    return folder


@pytest.fixture(scope="session")
def catalog(app_folder: Path, tmp_path_factory):
    """The app's catalog over `app_folder`, with a fake MNIST test set (no Fashion-MNIST)."""
    from explorer.ui import Catalog

    data = write_fake_dataset(tmp_path_factory.mktemp("data"), "mnist")
    return Catalog.from_folder(app_folder, data_dir=data, download=False)


@pytest.fixture(scope="session")
def server(catalog, tmp_path_factory):
    """The app over `catalog`, served in-process on a free port: (url, gradio_client.Client)."""
    from gradio_client import Client

    from explorer.ui import build_demo, launch

    demo = build_demo(catalog)
    _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                       quiet=True, ssr_mode=False)
    client = Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    yield url, client
    client.close()
    demo.close()


@pytest.fixture
def client(server):
    return server[1]


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
