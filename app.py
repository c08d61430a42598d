"""`python app.py`: serve the Latent Explorer app (what a Hugging Face Space runs).

The same as the `latent-explorer` command that `pip install .` provides
(`explorer.ui.server.main`); this file keeps `demo` at module level, where Spaces and
`gradio app.py` look for it.

Environment:
  LATENT_EXPLORER_TRAINED  folder of checkpoints (default: the shipped ones, trained/)
  LATENT_EXPLORER_DATA     folder of MNIST / Fashion-MNIST IDX files for test examples
                           (default: the test splits, downloaded once into a cache; without
                           a network, samples from the models)
  LATENT_EXPLORER_THREADS  torch threads per request (default 1: requests run side by side)
  GRADIO_SERVER_NAME       host to bind (default 127.0.0.1; 0.0.0.0 for a network or Space)
  GRADIO_SERVER_PORT       port (default 7860, or the next free one)
"""

from __future__ import annotations

# First, before torch: on a ZeroGPU Space this imports `spaces`, which sets up CUDA for it.
import explorer.gpu  # noqa: F401  isort: skip

import os

import torch

from explorer import checkpoints
from explorer.ui import build_from_folder, launch

# Small decodes gain little from more threads, and on a 2-core Space two requests run at once.
torch.set_num_threads(int(os.environ.get("LATENT_EXPLORER_THREADS") or 1))

demo = build_from_folder(checkpoints.shipped_folder())

if __name__ == "__main__":
    launch(demo)
