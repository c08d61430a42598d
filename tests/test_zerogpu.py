"""The real app on a ZeroGPU Space, simulated: the real `spaces` package in ZeroGPU mode (its
own switch, SPACES_ZERO_GPU), no CUDA, and a local stand-in for ZeroGPU's device API that
accepts the start-up report and refuses every GPU (tests/zerogpu_standin.py). The app must
start (nothing touches CUDA or asks for a GPU outside a visitor's request), answer one
endpoint of every tab through gradio_client, and run the heavy work a visitor starts (a GAN's
inversion, the likelihood scores) on the CPU when the GPU is refused, with one sentence.

Also: the installed package's `latent-explorer` command serves every shipped model from
another folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from explorer import checkpoints
from benchmarks.startup import first_calls
from tests.helpers import REPO, SHARED_DATA, app_py_serving, build_wheel, free_port
from tests.zerogpu_standin import DeviceAPI

pytestmark = pytest.mark.slow
spaces = pytest.importorskip("spaces")
gradio_client = pytest.importorskip("gradio_client")


def served_env(port: int, tmp_path) -> dict[str, str]:
    data = SHARED_DATA if (SHARED_DATA / "mnist").is_dir() else tmp_path / "no-data"  # offline: samples as examples
    env = {k: v for k, v in os.environ.items() if k != "LATENT_EXPLORER_TRAINED"}
    return {**env, "LATENT_EXPLORER_DATA": str(data), "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("refusal", ["quota", "busy"])
def test_the_app_boots_and_serves_every_tab_on_zerogpu_without_a_gpu(tmp_path, refusal):
    port, log = free_port(), []
    with DeviceAPI(refusal) as api:
        env = {**served_env(port, tmp_path), "SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api.url}
        with app_py_serving(env, port, log=log):
            client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False,
                                          download_files=str(tmp_path / "downloads"))
            answers = {tab: call() for tab, call in first_calls(client, gradio_client.handle_file).items()}
            client.close()
    printed = log[0]
    assert all(answers.values()), [k for k, v in answers.items() if not v]
    code, decoded, note = answers["Encode (a GAN's inversion)"]
    assert len(code) == checkpoints.load(REPO / "trained" / "mnist-dcgan.safetensors").model.latent_dim
    table, maps, reading = answers["Likelihood"]
    assert len(table["data"]) >= 4 and len(maps) >= 4
    assert len(answers["Pixel by pixel (Play)"]) >= 2 and len(answers["Discrete codes (Play)"]) >= 2
    assert len(answers) == 11  # one call for each tab
    # The two heavy calls asked ZeroGPU, were refused, and ran on the CPU, saying so; nothing
    # asked for a GPU at start-up (no visitor), and nothing reached CUDA.
    assert api.scheduled == 2, printed
    assert printed.count("ran on the server's CPU instead") == 2, printed
    assert "Traceback" not in printed and "CUDA" not in printed, printed


def test_the_installed_command_serves_every_shipped_model_from_another_folder(tmp_path):
    """`pip install .` then `latent-explorer` from elsewhere: the wheel (built as in
    test_hosting) unpacked as pip installs it, without the project on the path."""
    wheel = build_wheel(tmp_path)
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    env = {**served_env(port, tmp_path), "PYTHONPATH": str(site)}
    # What the console script `latent-explorer` runs (entry_points.txt, checked in test_hosting).
    command = [sys.executable, "-c", "import sys; from explorer.ui.server import main; sys.exit(main())"]
    where = subprocess.run([sys.executable, "-c", "import explorer, trained; print(explorer.__file__, trained.FOLDER)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
    assert str(REPO) not in where and str(site) in where  # the installed copy, not the checkout
    with app_py_serving(env, port, command=command, cwd=elsewhere) as config:
        served = config.text
    assert "Skipped" not in served and "Ignored" not in served  # the shipped folder gives no notice
    for path in (REPO / "trained").glob("*.safetensors"):
        if "classifier" not in path.name:
            assert f'"{path.stem}"' in served, path.stem
    missing = subprocess.run(command, cwd=elsewhere, env={**env, "LATENT_EXPLORER_TRAINED": str(tmp_path / "nope")},
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "no such checkpoint folder" in missing.stderr
