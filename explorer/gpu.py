"""Where heavy work runs: on a ZeroGPU Space under `@spaces.GPU`, everywhere else as it is.

ZeroGPU (Hugging Face's free shared GPUs) lends a Space a GPU only for the length of a call
to a function decorated with `@spaces.GPU`, and bills each visitor's daily quota for it. So
only heavy, batched work that a person starts on purpose is marked `heavy` (GAN inversion,
scoring an image under every model); sliders and streams stay on the CPU and never spend
the quota.

`spaces` is imported here, before torch, when it is installed (`app.py` imports this module
first): ZeroGPU sets up torch's CUDA at that import. Without the package (a plain local
install) `heavy` leaves functions as they are.

Two rules keep a ZeroGPU Space alive (docs/ARCHITECTURE.md, "Hosting"):

- Outside a visitor's request nothing may ask ZeroGPU for a GPU (there is no visitor whose
  quota would pay, and the scheduler refuses), and nothing may touch CUDA: in ZeroGPU mode
  `torch.cuda.is_available()` is True, but any real CUDA call outside a GPU call is refused.
  So a call that names the CPU (`device="cpu"`) runs here, without ZeroGPU: the warm-up and
  every tab's first value do so.
- A GPU that is refused (the visitor's quota spent, the queue too long, the scheduler
  unreachable) is not the visitor's fault and the work is small: it runs on the CPU instead,
  and the visitor is told in one sentence (`on_fallback`, which the app points at a toast).
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import logging
from typing import Any, Callable, TypeVar

try:  # before torch
    import spaces
except ImportError:  # a local install without the Hugging Face `spaces` package
    spaces = None

import torch
from torch import nn

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=nn.Module)

log = logging.getLogger(__name__)

FALLBACK_SENTENCE = "No GPU could be lent just now ({why}), so this ran on the server's CPU instead."


def _tell_nobody(sentence: str) -> None:
    log.warning(sentence)


# Called with one plain sentence when a GPU call was refused and the work ran on the CPU;
# the app sets it to a toast for the visitor (explorer.ui.server), the library only logs.
on_fallback: Callable[[str], None] = _tell_nobody


def refusal_reason(error: BaseException) -> str | None:
    """In a few words, why ZeroGPU refused a GPU, or None when `error` is not a refusal
    (then it came from the work itself and must not be hidden by a CPU retry).

    The `spaces` package raises a Gradio error titled "ZeroGPU ..." for a spent quota, a
    queue timeout or no free GPU, an httpx error when its scheduler cannot be reached, and a
    RuntimeError naming ZeroGPU for other answers of the scheduler."""
    title = str(getattr(error, "title", "") or "")
    text = f"{title} {error}"
    if "quota" in text.lower():
        return "the daily GPU quota is spent"
    if "queue" in text.lower():
        return "the GPU queue is full"
    if title.startswith("ZeroGPU") or "ZeroGPU" in str(error):
        return "the GPU service said no"
    if type(error).__module__.startswith(("httpx", "httpcore")):
        return "the GPU service could not be reached"
    return None


def heavy(duration: int) -> Callable[[F], F]:
    """Mark heavy work a person starts on purpose: on ZeroGPU it gets a GPU for at most
    `duration` seconds (shorter asks queue sooner); elsewhere the function is unchanged.

    The function must take a keyword `device`. On ZeroGPU a call that names the CPU runs
    here, without asking for a GPU, and a call whose GPU is refused runs again with
    `device="cpu"` after telling `on_fallback`. The GPU call runs in a forked process and its
    arguments and result are pickled, so a decorated function takes and returns models,
    tensors and plain values, never the app's catalog (it holds locks).
    """
    if spaces is None:
        return lambda fn: fn

    def decorate(fn: F) -> F:
        on_gpu = spaces.GPU(duration=duration)(fn)
        if on_gpu is fn:  # the package outside ZeroGPU: effect-free
            return fn

        @functools.wraps(fn)
        def run(*args: Any, device: str | torch.device | None = None, **kwargs: Any) -> Any:
            if device is not None and torch.device(device).type == "cpu":
                return fn(*args, device=device, **kwargs)
            try:
                return on_gpu(*args, device=device, **kwargs)
            except Exception as error:  # noqa: BLE001  classified just below
                why = refusal_reason(error)
                if why is None:
                    raise
                log.warning("GPU refused for %s (%r); running on the CPU", fn.__name__, error)
                on_fallback(FALLBACK_SENTENCE.format(why=why))
                return fn(*args, device="cpu", **kwargs)

        run.on_zerogpu = on_gpu  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def outside_zerogpu_modes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` run in a thread of its own, its result (or error) handed back.

    In ZeroGPU mode `spaces` enters torch function and dispatch modes on the thread that
    imported it (the main thread; modes are per thread): every torch call there goes through
    Python hooks, and the app's start-up (loading checkpoints, each tab's first value) took
    12.6-13.5 s instead of 6.7-7.5. Request and warm-up threads never had the modes. The work
    stays on the CPU, where the modes have nothing to do. Elsewhere this only costs a thread."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="start-up") as pool:
        return pool.submit(fn, *args, **kwargs).result()


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
