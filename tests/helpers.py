"""Helpers the test modules share: tiny model configs, fake data sets, tiny checkpoints, test
pictures and a free port. Plain functions and constants; the fixtures built on them live in
`conftest.py`. Tests import from here, never from one another."""

from __future__ import annotations

import contextlib
import gzip
import io
import shutil
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import httpx
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from explorer import intake, latent, render
from explorer.data import DATA_ENV

if TYPE_CHECKING:
    from explorer.ui import Catalog

REPO = Path(__file__).resolve().parents[1]
# The real MNIST / Fashion-MNIST files: where $LATENT_EXPLORER_DATA points, else ../shared/data
# beside the checkout (the dev machines' layout). Tests that need them skip without them.
SHARED_DATA = Path(os.environ.get(DATA_ENV) or REPO.parent / "shared" / "data")

# Tiny configs: every latent model family, small enough to build and run in milliseconds.
TINY = {"hidden": 16, "channels": 4}
TINY_GAN = {"latent_dim": 8, "channels": 4}
TINY_CLASSIFIER = {"channels": 4, "features": 16}
REPLAY_EPOCHS = 3
# Tiny autoregressive checkpoints for the app: (file stem, model, config); the Fashion one is 8-bit.
TINY_AUTOREGRESSIVE = {
    "mnist-pixelcnn": ("pixelcnn", {"channels": 4, "layers": 1, "first_kernel": 3}),
    "mnist-gated_pixelcnn": ("gated_pixelcnn", {"channels": 4, "layers": 2, "first_kernel": 3}),
    "fashion-mnist-gated_pixelcnn": ("gated_pixelcnn", {"channels": 4, "layers": 1, "first_kernel": 3,
                                                        "output": "categorical256"}),
    "mnist-row_lstm": ("row_lstm", {"channels": 4, "layers": 1, "first_kernel": 3}),
    "mnist-diagonal_bilstm": ("diagonal_bilstm", {"channels": 4, "layers": 1, "first_kernel": 3}),
}

# A tiny class-conditional gated PixelCNN for the app (the three-kinds view), built from a seed of
# its own so that the other tiny models and the global random state stay as they were.
TINY_CONDITIONAL = ("mnist-gated_pixelcnn-classes", "gated_pixelcnn",
                    {"channels": 4, "layers": 2, "first_kernel": 3, "num_classes": 10})

# Tiny VQ-VAEs for the app (the codes tab): a codebook of 8, a one-layer prior; the second has a
# class-conditional prior. Built from a seed of their own, after every other tiny model.
TINY_VQVAE = {"channels": 4, "embedding_dim": 4, "num_codes": 8,
              "prior": {"channels": 4, "layers": 1, "first_kernel": 3, "kernel": 3}}
TINY_DISCRETE = {"mnist-vqvae": {}, "mnist-vqvae-cond": {"num_classes": 10}}

# Tiny PixelCNNs for the model and sampler tests: 10x10 images, a few channels; first kernel 5,
# then 3x3 layers. Each variant is (model, config on top of TINY_PIXELCNN).
TINY_PIXELCNN = {"channels": 6, "layers": 3, "first_kernel": 5, "kernel": 3, "data_shape": [1, 10, 10]}
PIXELCNN_VARIANTS = {
    "pixelcnn": ("pixelcnn", {}),
    "pixelcnn-256": ("pixelcnn", {"output": "categorical256"}),
    "gated": ("gated_pixelcnn", {}),
    "gated-256-classes": ("gated_pixelcnn", {"output": "categorical256", "num_classes": 3}),
}


# ------------------------------------------------------------------------------ data


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


def needs_shared_data():
    return pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(),
                              reason=f"real MNIST not found at {SHARED_DATA} (set ${DATA_ENV} to the data folder)")


# ------------------------------------------------------------------------ checkpoints


def save_tiny_gan(path: Path) -> None:
    """A tiny random-weight DCGAN whose history holds a training replay of REPLAY_EPOCHS epochs.

    Epoch e's replay is the generator's output for the fixed codes scaled by e: different
    pictures every epoch, as in a real run.
    """
    from explorer import checkpoints, packing
    from explorer.models import build

    model = build("dcgan", TINY_GAN).eval()
    z = model.sample_latent(100, torch.Generator().manual_seed(1234))
    with torch.no_grad():
        replay = [packing.pack_images(model.decode(z * e)) for e in range(1, REPLAY_EPOCHS + 1)]
    epochs = list(range(1, REPLAY_EPOCHS + 1))
    history = {"epoch": epochs, "train_loss": [1.4, 1.2, 1.1], "train_g_loss": [0.7, 0.9, 1.0],
               "critic_gap": [0.1, 0.3, 0.2], "seconds": [1.0, 2.0, 3.0], "replay": replay}
    checkpoints.save(path, model, dataset="mnist", history=history,
                     metrics={"critic_gap": 0.2, "headline": "critic_gap", "frechet_distance": 12.3,
                              "classes_covered": 7},
                     training={"command": "tiny test GAN", "epochs": REPLAY_EPOCHS})


# ------------------------------------------------------------------ tiny PixelCNNs


def tiny_pixelcnn(key: str, **extra):
    """A tiny PixelCNN variant (a key of PIXELCNN_VARIANTS), seeded, with class biases that matter."""
    from explorer.models import build

    name, cfg = PIXELCNN_VARIANTS[key]
    torch.manual_seed(0)
    model = build(name, {**TINY_PIXELCNN, **cfg, **extra}).eval()
    for layer in getattr(model, "layers", []):  # class biases start at zero; make them matter
        if layer.class_bias is not None:
            torch.nn.init.normal_(layer.class_bias.weight)
    return model


def random_images(model, n: int, seed: int = 0) -> torch.Tensor:
    """n random images the autoregressive model takes: 0/1 pixels, or the 256 grey levels."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand((n, *model.data_shape), generator=g)
    return (u < 0.5).float() if model.output_kind == "bernoulli" else torch.round(u * 255) / 255


def labels(model, n: int):
    """The classes in turn for a class-conditional model; None otherwise."""
    return torch.arange(n) % model.num_classes if model.num_classes else None


# --------------------------------------------------------------------------- pictures


def seven(size=(600, 400), ink="black", paper="white", width=24, mode="RGB") -> Image.Image:
    """A '7' drawn with thick strokes, off-centre, on a canvas of any size and colour."""
    img = Image.new(mode, size, paper)
    w, h = size
    d = ImageDraw.Draw(img)
    d.line([(0.30 * w, 0.20 * h), (0.55 * w, 0.20 * h), (0.38 * w, 0.85 * h)], fill=ink, width=width)
    return img


def png_with_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims width x height (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC
    return bytes(data)


def picture(path: str) -> np.ndarray:
    """A picture file the app served, as an array."""
    return np.asarray(Image.open(path))


def rgb(path: str) -> np.ndarray:
    """A colour picture file the app served, as an (H, W, 3) array."""
    return np.asarray(Image.open(path).convert("RGB"))


def model_code_image(catalog: Catalog, name: str, image_path: str, label=None) -> torch.Tensor:
    """Encode a served 28x28 preview here, the way the app should."""
    x = intake.prepare_digit(picture(image_path))
    return latent.encode(catalog.checkpoint(name, "latent").model, x.unsqueeze(0), label)[0]


def grid_tiles(path: str, size: int) -> np.ndarray:
    """Cut a served grid picture back into its (size, size, 28, 28) tiles."""
    arr = picture(path)
    geo = render.grid_geometry(size, size, render.auto_scale(size))
    assert arr.shape == (geo.height, geo.width)
    tiles = np.empty((size, size, 28, 28), np.uint8)
    for i in range(size):
        for j in range(size):
            top, left, bottom, right = geo.tile_box(i, j)
            tiles[i, j] = arr[top:bottom:geo.scale, left:right:geo.scale]
    return tiles


def expected_tiles(catalog: Catalog, name: str, base: torch.Tensor, dx: int, dy: int, span: float,
                   size: int, label=None) -> np.ndarray:
    """The tiles a grid of the served model should show, computed here: (size, size, 28, 28) uint8."""
    g = latent.latent_grid(catalog.checkpoint(name, "latent").model, base, dx, dy, span, size, label)
    return render.to_uint8(g.images)


# ------------------------------------------------------------------------------ serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_py_serving(env: dict[str, str], port: int, timeout: float = 300, command: list[str] | None = None,
                   cwd: Path = REPO, log: list[str] | None = None) -> Iterator[httpx.Response]:
    """`python app.py` (or `command`) run with `env` in `cwd` until it serves on `port`: yields
    its /config response, and stops the process afterwards; `log`, if given, receives what it
    printed. Fails the test if it exits or is not serving in time (generous: a loaded 2-core
    machine may take a minute to import torch and gradio)."""
    proc = subprocess.Popen(command or [sys.executable, "app.py"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=2)
                if config.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        else:
            pytest.fail(f"python app.py did not start serving within {timeout:.0f} s")
        yield config
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if log is not None:
            log.append(out or "")


def benchmark_setup(tiny_trained_dir: Path, tmp_path: Path, stems: tuple[str, ...], n_train: int = 16,
                    n_test: int = 32) -> tuple[Path, Path]:
    """A `trained/` folder holding copies of some tiny checkpoints, and a fake data set: what a
    benchmark smoke test runs on. Returns (folder, data folder)."""
    import shutil

    folder = tmp_path / "trained"
    folder.mkdir()
    for stem in stems:
        shutil.copy(tiny_trained_dir / f"{stem}.safetensors", folder)
    return folder, write_fake_dataset(tmp_path / "data", n_train=n_train, n_test=n_test)


# --- a real browser: Debian's Chromium driven by Playwright (tests skip where it is absent) ---

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: install Debian's "
                                    "chromium (apt-get install chromium) to run the browser tests")


def serve_on_loopback(demo) -> str:
    """Launch a built app on a free loopback port, in this process; its address."""
    from explorer.ui import launch

    _, local_url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                             quiet=True, ssr_mode=False)
    return local_url


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium browser, closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browser_page(viewport: dict) -> Iterator:
    """One page of a fresh browser at the given viewport size."""
    with chromium() as browser:
        yield browser.new_page(viewport=viewport)


def progress_lines(job) -> list[str]:
    """Every progress description the client received for a finished job, in order."""
    lines = []
    while not job.communicator.updates.empty():
        update = job.communicator.updates.get_nowait()
        for unit in getattr(update, "progress_data", None) or []:
            lines.append(unit.desc)
    return lines


def build_wheel(tmp_path: Path, dirty: bool = False) -> Path:
    """The project's wheel, built from a copy of the working tree (setuptools writes build/ and
    *.egg-info/ beside the sources). `dirty`: first leave in the copy what a build, a test run
    and Gradio leave behind (the generated component stubs among them)."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "data", "__pycache__",
                                                               "build", "*.egg-info", ".pytest_cache", "*.pyi"))
    if dirty:
        (source / "explorer" / "ui" / "grid.pyi").write_text("# generated by gradio\n")
        (source / "explorer" / "__pycache__").mkdir()
        (source / "explorer" / "__pycache__" / "gpu.cpython-311.pyc").write_bytes(b"\0")
        (source / "trained" / "mnist-vae.resume.safetensors").write_bytes(b"\0")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("latent_explorer-*.whl")
    return wheel
