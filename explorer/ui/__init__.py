"""The Gradio app: one module per tab, the served checkpoints found by name (catalog), the
cached computations over them (services), `demo`, which joins the tabs into one page, and
`server`, which runs it (process settings, start-up, the `latent-explorer` command)."""

from .. import gpu  # noqa: F401  isort: skip  (first: imports `spaces` before torch, for ZeroGPU)
from .catalog import Catalog
from .demo import build_demo, build_from_folder
from .server import launch, main
from .services import Services

__all__ = ["Catalog", "Services", "build_demo", "build_from_folder", "launch", "main"]
