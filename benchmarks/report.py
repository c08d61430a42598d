"""Where benchmark reports go and how they are written (one place for all benchmark scripts)."""

from __future__ import annotations

import platform
import shlex
from pathlib import Path

import torch

REPORTS = Path(__file__).parent / "reports"


def machine() -> str:
    """One line on what the figures were measured on."""
    return (f"{platform.machine()}, {torch.get_num_threads()} torch thread(s) of {torch.get_num_interop_threads()} "
            f"interop, torch {torch.__version__}, Python {platform.python_version()}")


def command(module: str, argv: list[str]) -> str:
    return f"python -m {module} {shlex.join(argv)}".rstrip()


def write(path: Path, lines: list[str]) -> None:
    """Write a markdown report (creating its folder) and say where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {path}")
