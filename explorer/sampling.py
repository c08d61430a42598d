"""Autoregressive generation as a stream of steps, completion of partly given images, and
the receptive field of a pixel.

`sample_stream` is a Python generator: for every pixel, in raster order, it yields a
`PixelStep` (the images so far, the position, the predictive distribution there), so a UI
can show generation live and stop whenever it likes. It works for any
`AutoregressiveModel`:

  - "cached" path: the model's `fast_stepper` keeps per-layer state between pixels, so each
    step computes only what the new pixel changes (Ramachandran et al. 2017);
  - "naive" path: re-runs the full parallel `logits` for every pixel. Slow, but it needs
    nothing but `logits`, so it is the reference the cached path is tested against.

Both paths draw randomness identically: one uniform number per pixel, drawn up front from
the generator, is turned into a pixel value by the inverse CDF of the predictive
distribution. So with the same generator seed both give the same samples, up to float32
rounding: the paths add the same terms in different orders, so their probabilities differ in
the 7th digit, and a uniform that falls between the two versions of a CDF boundary picks
neighbouring values. Such ties are rare; `benchmarks.sampling_speed` reports any it meets, with
the pixel and its distance to the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .models.base import AutoregressiveModel, GenerativeModel, PixelStepper
from .models.causal import CausalModel


@dataclass
class PixelStep:
    """One step of generation: the pixel at (row, col) has just been decided."""

    image: torch.Tensor    # (N, C, H, W) in [0, 1]: pixels up to (row, col) final, later ones
    #                        zero unless given (completion)
    row: int
    col: int
    probs: torch.Tensor    # (N, 1) p(pixel = 1) for Bernoulli, (N, 256) over grey levels, (N, K) over codes
    sampled: torch.Tensor  # (N,) bool: True where the pixel was drawn, False where it was given
    index: int             # 0 .. total - 1, the position in raster order
    total: int             # H * W


class NaiveStepper(PixelStepper):
    """The reference: the whole network on the whole image for every pixel."""

    def __init__(self, model: AutoregressiveModel, y: torch.Tensor | None = None) -> None:
        self.model, self.y = model, y

    @torch.no_grad()
    def logits_at(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        return self.model.logits(x, self.y)[:, :, 0, row, col]    # (N, K)


def predictive(model: AutoregressiveModel, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Logits (N, K) -> the distribution sampled from: (N, 1) p(1), or (N, K) probabilities (256 levels, K codes)."""
    if temperature != 1.0:  # dividing by 1 changes nothing; skipping it saves a step
        logits = logits / temperature
    return torch.sigmoid(logits) if model.output_kind == "bernoulli" else torch.softmax(logits, dim=-1)


def draw(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw: class index (N,) from probabilities (N, K) and uniforms (N,) in [0, 1).

    For K = 1 (Bernoulli) the index is 1 where u < p. For K = 256 it is the first level whose
    cumulative probability exceeds u.
    """
    if probs.shape[1] == 1:
        return (uniform < probs[:, 0]).long()
    cdf = probs.cumsum(dim=1)
    return (cdf <= uniform[:, None]).sum(dim=1).clamp(max=probs.shape[1] - 1)


def _broadcast_known(model: AutoregressiveModel, n: int, known: torch.Tensor | None,
                     known_mask: torch.Tensor | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Given pixels and their mask, each as (N, C, H, W); (H, W) or (C, H, W) broadcast over N."""
    shape = (n, *model.data_shape)
    if known is None and known_mask is None:
        return torch.zeros(shape, device=device), torch.zeros(shape, dtype=torch.bool, device=device)
    if known is None or known_mask is None:
        raise ValueError("completion needs both the given image and the mask of known pixels")
    try:
        known = torch.as_tensor(known, dtype=torch.float32, device=device).expand(shape)
        known_mask = torch.as_tensor(known_mask, device=device).bool().expand(shape)
    except RuntimeError:
        raise ValueError(f"the given image and mask must broadcast to {tuple(shape)}, got "
                         f"{tuple(torch.as_tensor(known).shape)} and {tuple(torch.as_tensor(known_mask).shape)}") from None
    # Check given values (0/1 for binary models, [0, 1] for 8-bit) and snap them to levels.
    values = model.as_input(torch.where(known_mask, known, torch.zeros_like(known)))
    return values, known_mask.clone()


def sample_stream(model: AutoregressiveModel, n: int = 1, *, y: torch.Tensor | int | None = None,
                  temperature: float = 1.0, generator: torch.Generator | None = None,
                  known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
                  method: str = "auto") -> Iterator[PixelStep]:
    """Generate n images pixel by pixel, yielding a `PixelStep` after every pixel.

    y: class labels (N,) or one label, for class-conditional models.
    temperature: divides the logits; < 1 sharper, > 1 flatter.
    generator: the only source of randomness (all uniforms are drawn from it first).
    known, known_mask: completion; pixels where the mask is true are given and never
        changed, the rest are sampled. Either may be (H, W), (C, H, W) or (N, C, H, W).
    method: "cached" (the model's fast stepper), "naive" (full recompute per pixel), or
        "auto" (cached when the model has a fast stepper).

    Bad arguments raise ValueError here, at the call, before any pixel is drawn. Steps are
    computed lazily: stop iterating (or `close()` the stream) and no more work is done.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if method not in ("auto", "cached", "naive"):
        raise ValueError(f"method must be 'auto', 'cached' or 'naive', not {method!r}")
    param = next(model.parameters())
    labels = model._check_labels(y, n)
    labels = None if labels is None else labels.to(param.device)
    image, given = _broadcast_known(model, n, known, known_mask, param.device)
    image = image.to(param.dtype)
    uniforms = pixel_uniforms(model, n, generator).to(param.device, param.dtype)

    stepper = None if method == "naive" else model.fast_stepper(n, labels)
    if stepper is None:
        if method == "cached":
            raise ValueError(f"{model.name} has no cached sampler; use method='naive' or 'auto'")
        stepper = NaiveStepper(model, labels)

    return _generate(model, stepper, image, given[:, 0], uniforms[:, 0], temperature)


def pixel_uniforms(model: AutoregressiveModel, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The uniforms a generation of n images turns into pixels: (N, C, H, W), one per pixel.

    Drawn before anything else, in the same order for every path, so a seed fixes them all.
    """
    return torch.rand((n, *model.data_shape), generator=generator)


def _generate(model: AutoregressiveModel, stepper: PixelStepper, image: torch.Tensor, given: torch.Tensor,
              uniforms: torch.Tensor, temperature: float) -> Iterator[PixelStep]:
    """The loop behind `sample_stream` (kept apart so that bad arguments fail at the call)."""
    n, height, width = given.shape
    total = height * width
    # Per-pixel views, cut once: indexing inside the loop would cost an operation per pixel.
    pixels = image.view(n, total).unbind(1)                            # (N,) each, into `image`
    keep = given.reshape(n, total).unbind(1)
    drawn = (~given).reshape(n, total).unbind(1)
    uniform = uniforms.reshape(n, total).unbind(1)
    any_given = given.reshape(n, total).any(0).tolist()   # Python bools: where `torch.where` is needed at all
    was_training = model.training
    model.eval()
    try:
        for index in range(total):
            row, col = divmod(index, width)
            with torch.no_grad():
                logits = stepper.logits_at(image, row, col)            # (N, K)
                probs = predictive(model, logits, temperature)
                value = model.values(draw(probs, uniform[index])).to(image.dtype)
                if any_given[index]:
                    value = torch.where(keep[index], pixels[index], value)
                pixels[index].copy_(value)
            yield PixelStep(image=image.clone(), row=row, col=col, probs=probs,
                            sampled=drawn[index], index=index, total=total)
    finally:
        model.train(was_training)


def sample(model: AutoregressiveModel, n: int = 1, **kwargs) -> torch.Tensor:
    """The finished images (N, C, H, W) of `sample_stream` (same arguments)."""
    last = None
    for last in sample_stream(model, n, **kwargs):
        pass
    assert last is not None
    return last.image


def sample_codes(model: GenerativeModel, n: int = 1, **kwargs) -> torch.Tensor:
    """n code grids (N, h, w) long from a VQ-VAE's prior, drawn position by position (the
    arguments of `sample_stream`); `model.decode` turns them into images."""
    return sample(model.prior, n, **kwargs)[:, 0].long()


@dataclass
class CodeStep:
    """One step of a VQ-VAE's generation: the code at step.(row, col) has just been drawn."""

    codes: torch.Tensor    # (N, h, w) long: the codes drawn so far, -1 where none is drawn yet
    image: torch.Tensor    # (N, C, H, W) in [0, 1]: the decoder's picture of them, cells not
    #                        drawn yet filled with the blank code (what an empty image encodes to)
    step: PixelStep        # the prior's step: position, distribution over the K codes


def code_stream(model: GenerativeModel, n: int = 1, **kwargs) -> Iterator[CodeStep]:
    """A VQ-VAE's generation as a stream: the prior draws codes one at a time (the arguments
    of `sample_stream`), and after each the decoder redraws the whole image."""
    blank = model.blank_code()
    stream = sample_stream(model.prior, n, **kwargs)   # bad arguments fail here, at the call

    def steps() -> Iterator[CodeStep]:
        for step in stream:
            drawn = torch.arange(step.total, device=step.image.device).view(step.image.shape[2:]) <= step.index
            codes = torch.where(drawn, step.image[:, 0].long(), -1)                          # (N, h, w)
            with torch.no_grad():
                image = model.decode(torch.where(drawn, codes, blank))
            yield CodeStep(codes=codes, image=image, step=step)
    return steps()


def complete(model: AutoregressiveModel, image: torch.Tensor, known_mask: torch.Tensor, n: int = 1,
             **kwargs) -> torch.Tensor:
    """n completions (N, C, H, W) of one partly given image: pixels under the mask are kept."""
    return sample(model, n, known=image, known_mask=known_mask, **kwargs)


def top_rows_mask(model: AutoregressiveModel, rows: int) -> torch.Tensor:
    """A (C, H, W) mask that gives the top `rows` rows: the usual 'complete the bottom' task."""
    mask = torch.zeros(model.data_shape, dtype=torch.bool)
    mask[:, :rows] = True
    return mask


def receptive_field(model: CausalModel, row: int, col: int, y: torch.Tensor | None = None, *,
                    probes: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Which pixels the prediction at (row, col) depends on, measured from gradients: (H, W).

    The map holds |d logits(row, col) / d x| summed over `probes` random images (and over
    the logits and channels), scaled to a maximum of 1. A pixel the model cannot see has
    exactly 0; for a causal model that includes (row, col) itself and every later pixel.
    A class-conditional model is probed with label y (default 0).
    """
    param = next(model.parameters())
    channels, height, width = model.data_shape
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"pixel ({row}, {col}) is outside the {height}x{width} image")
    u = torch.rand((probes, channels, height, width), generator=generator)
    # Random values at the grid's own levels: one uniform per position picks the level.
    x = model.values(torch.clamp((u * model.num_logits).long(), max=model.num_logits - 1)) \
        if model.output_kind != "bernoulli" else (u < 0.5).float()
    labels = model._check_labels(y if y is not None or model.num_classes == 0 else 0, probes)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # Gradients at the input features (2x - 1 for pixels, embeddings for codes, which
            # have no gradient as integers): the same zero pattern as at the pixels themselves.
            features = model.grid_input(x.to(param.device, param.dtype)).detach().requires_grad_(True)
            out = model.features_to_logits(features, labels)[:, :, :, row, col]   # (P, K, 1)
            # Sum of |.| would not be differentiable at 0; squares keep the zero pattern.
            (grad,) = torch.autograd.grad(out.pow(2).sum(), features)
    finally:
        model.train(was_training)
    field = grad.abs().sum(dim=(0, 1))                                  # (H, W)
    top = field.max()
    return (field / top if top > 0 else field).detach().cpu()
