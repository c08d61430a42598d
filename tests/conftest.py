"""Shared fixtures: tiny fake data sets, tiny checkpoints and the app served once per session,
so tests never need real data or a network. The plain helpers they use live in `helpers.py`."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from tests.helpers import (TINY, TINY_AUTOREGRESSIVE, TINY_CLASSIFIER, TINY_CONDITIONAL, TINY_DISCRETE, TINY_VQVAE,
                           free_port, save_tiny_gan, write_fake_dataset)

torch.set_num_threads(1)  # CI has 2 cores; keep one for the servers some tests start
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio keeps served files in one folder per machine, named by their content, and a server
# deletes its files when it closes. Another test run on the same machine serves the same
# tiny models' pictures under the same names, so each run gets a folder of its own (set
# before gradio is imported; app.py started by a test inherits it).
if "GRADIO_TEMP_DIR" not in os.environ:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="latent-explorer-tests-gradio-")
    atexit.register(shutil.rmtree, os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)


@pytest.fixture
def fake_data(tmp_path: Path) -> Path:
    return write_fake_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_trained_dir(tmp_path_factory) -> Path:
    """A `trained/`-like folder with tiny random-weight latent models of every kind (a GAN with
    a training replay among them), tiny autoregressive models, a tiny MNIST classifier and two
    tiny VQ-VAEs (one with a class-conditional prior)."""
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
    with torch.random.fork_rng():
        torch.manual_seed(1)
        stem, name, cfg = TINY_CONDITIONAL
        checkpoints.save(folder / f"{stem}.safetensors", build(name, cfg).eval(), dataset="mnist",
                         metrics={"test_nll": 500.0, "headline": "test_nll"},
                         training={"command": "tiny test model", "epochs": 0, "binarized": True})
    checkpoints.save(folder / "mnist-classifier.safetensors", build("classifier", TINY_CLASSIFIER).eval(),
                     dataset="mnist", metrics={"test_accuracy": 0.1, "headline": "test_accuracy"},
                     training={"command": "tiny test classifier", "epochs": 0})
    with torch.random.fork_rng():
        torch.manual_seed(2)
        for stem, extra in TINY_DISCRETE.items():
            checkpoints.save(folder / f"{stem}.safetensors", build("vqvae", {**TINY_VQVAE, **extra}).eval(),
                             dataset="mnist", metrics={"test_mse": 0.05, "test_recon_nll": 150.0,
                                                       "headline": "test_recon_nll"},
                             training={"command": "tiny test VQ-VAE", "epochs": 0, "binarized": False})
    return folder


# ------------------------------------------------------------- the app, served once per session


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
def services(catalog):
    """The cached computations over `catalog`, as the tabs use them (the server has its own)."""
    from explorer.ui import Services

    return Services(catalog)


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

