"""Training precision: float32, or bfloat16 autocast where the hardware computes it natively.

Under `torch.autocast(dtype=torch.bfloat16)` convolutions and matrix products run in bf16
while the weights, their gradients, the optimizer state and the losses stay float32; on a GPU
with bf16 units, or a CPU with AMX / AVX-512 BF16 (oneDNN uses them), that is several times
faster. Without such hardware bf16 is emulated and much slower than float32 (measured on an
AVX2-only AMD EPYC: 7-12x slower, `benchmarks/reports/training_speed.md`), so `auto` picks
bf16 only where the hardware has it. Evaluation (likelihoods, bounds, sample scores) always
runs in float32, outside the autocast region.

channels_last (NHWC) memory layout is what oneDNN's and cuDNN's fast convolution kernels
want; it helps convolution stacks and hurts models made of many small ops, so each training
recipe says whether to use it (`train.families.Recipe.channels_last`), measured by
`python -m benchmarks.training_speed`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "auto")


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere: no claim of bf16 support)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 matrix products in hardware (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    return False


def resolve(precision: str, device: torch.device) -> str:
    """`fp32`, `bf16` or `auto` -> the precision to train in ("fp32" or "bf16")."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training step runs in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def to_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch of images in the training layout (4-D tensors only; others pass through)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
