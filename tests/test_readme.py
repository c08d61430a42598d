"""The README's Python snippets run as printed (the gradio_client one against the test server,
its address swapped for the server's)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import REPO

README = (REPO / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)


def snippet(containing: str) -> str:
    (found,) = [s for s in SNIPPETS if containing in s]
    return found


def run(code: str, cwd) -> str:
    """Run a snippet in `cwd` with the checkout importable (as an installed package would be)."""
    env = {k: v for k, v in os.environ.items() if k != "LATENT_EXPLORER_TRAINED"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_library_snippet_samples_pictures_as_numpy(tmp_path):
    out = run(snippet("checkpoints.load"), tmp_path).splitlines()  # from another folder
    assert out[0] == "(16, 1, 28, 28) uint8"
    assert "mnist-vae.safetensors: " in out[1]  # the list of shipped checkpoints


def test_the_gradio_client_snippet_encodes_an_example(server, catalog, tmp_path):
    url, _ = server
    code = snippet("gradio_client")
    assert 'Client("http://127.0.0.1:7860/")' in code
    out = run(code.replace("http://127.0.0.1:7860/", url), tmp_path)
    dim = catalog.checkpoint("mnist-vae", "latent").model.latent_dim
    label = int(catalog.test_set("mnist-vae").labels[3])
    assert out.splitlines()[-1].startswith(f"mnist test image #3: {label} -> {dim} numbers: [")
