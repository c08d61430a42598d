"""Where benchmark reports go and how they are written (one place for all benchmark scripts)."""

from __future__ import annotations

import argparse
import platform
import shlex
from pathlib import Path

import torch

from explorer import checkpoints, data

REPORTS = Path(__file__).parent / "reports"


def machine() -> str:
    """One line on what the figures were measured on."""
    return (f"{platform.machine()}, {torch.get_num_threads()} torch thread(s) of {torch.get_num_interop_threads()} "
            f"interop, torch {torch.__version__}, Python {platform.python_version()}")


def command(module: str, argv: list[str]) -> str:
    return f"python -m {module} {shlex.join(argv)}".rstrip()


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (0..1) of `values` by nearest rank: a value that was measured; NaN if none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def write(path: Path, lines: list[str]) -> None:
    """Write a markdown report (creating its folder) and say where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {path}")


def checkpoint_arguments(p: argparse.ArgumentParser, report: Path) -> None:
    """The options every benchmark over trained/ shares."""
    p.add_argument("--trained", type=Path, default=Path("trained"), help="folder of checkpoints")
    p.add_argument("--data-dir", help=f"IDX folder (default ${data.DATA_ENV}, else download)")
    p.add_argument("--only", nargs="*", help="checkpoint names (without .safetensors) to include")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--write-metadata", action="store_true", help="store the results in each checkpoint")
    p.add_argument("--report", type=Path, default=report, help="markdown report to write")


def selected_checkpoints(folder: Path, only: list[str] | None, kind: str | tuple[str, ...]):
    """(name, path, checkpoint) for each checkpoint of `kind` (or kinds) in `folder`, limited to
    `only` if given."""
    kinds = (kind,) if isinstance(kind, str) else kind
    for path in checkpoints.checkpoint_files(folder):
        name = path.name.removesuffix(".safetensors")
        if only and name not in only:
            continue
        ckpt = checkpoints.load(path)
        if ckpt.model.kind in kinds:
            yield name, path, ckpt
