"""The Gradio app: one module per tab (grid, interpolate, compare, manifold, replay), shared digit
inputs (digits), the loaded models (catalog), and `demo`, which joins them."""

from .catalog import Catalog
from .demo import build_demo, build_from_folder, launch

__all__ = ["Catalog", "build_demo", "build_from_folder", "launch"]
