"""Where heavy work runs: on a ZeroGPU Space under `@spaces.GPU`, everywhere else as it is.

ZeroGPU (Hugging Face's free shared GPUs) lends a Space a GPU only for the length of a call
to a function decorated with `@spaces.GPU`, and bills each visitor's daily quota for it. So
only heavy, batched work that a person starts on purpose is marked `heavy` (GAN inversion,
scoring an image under every model); sliders and streams stay on the CPU and never spend
the quota.

`spaces` is imported here, before torch, when it is installed (`app.py` imports this module
first): ZeroGPU sets up torch's CUDA at that import. Without the package (a plain local
install) `heavy` leaves functions as they are. Off ZeroGPU, the package's own decorator is
effect-free too.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, TypeVar

try:  # before torch
    import spaces
except ImportError:  # a local install without the Hugging Face `spaces` package
    spaces = None

import torch
from torch import nn

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=nn.Module)


def heavy(duration: int) -> Callable[[F], F]:
    """Mark heavy work a person starts on purpose: on ZeroGPU it gets a GPU for at most
    `duration` seconds (shorter asks queue sooner); elsewhere the function is unchanged.

    On ZeroGPU the call runs in a forked process and its arguments and result are pickled,
    so a decorated function takes and returns models, tensors and plain values, never the
    app's catalog (it holds locks).
    """
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def work_device(device: str | torch.device | None = None) -> torch.device:
    """The device heavy work runs on: `device` if given, else CUDA where a GPU is attached
    (inside a ZeroGPU call, or a GPU machine), else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def placed(model: M, device: torch.device) -> M:
    """The model on `device`: the model itself when it is already there, else a copy.

    A copy, not `model.to(device)`: the app's models are shared by every request, and the
    light work running beside this call (sliders, streams) keeps using them on the CPU.
    The models here are small (under 10 MB), so the copy costs milliseconds.
    """
    current = next(model.parameters(), None)
    if current is None or current.device == device:
        return model
    return copy.deepcopy(model).to(device)
