"""The Gradio app: one module per tab (grid, interpolate, encode, compare, manifold, replay, pixels,
likelihood), the shared digit input (digits) and small shared pieces (common), the served
checkpoints found by name (catalog), the cached computations over them (services), and
`demo`, which joins them."""

from .catalog import Catalog
from .demo import build_demo, build_from_folder, launch
from .services import Services

__all__ = ["Catalog", "Services", "build_demo", "build_from_folder", "launch"]
