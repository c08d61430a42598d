"""Walking a latent space: grids over two dimensions, interpolation paths, prior densities.

Pure tensor functions over the `LatentModel` interface (docs/ARCHITECTURE.md); the app calls these
and only turns their tensors into pictures. Everything is laid out in units of the model's
own code spread (`latent_mean()` / `latent_std()`): the prior N(0, I) for a VAE, a Gaussian
fitted to the training codes for a plain autoencoder. That makes "two standard deviations"
mean the same thing for every model, so grids of different models can be compared.

Random draws take a `torch.Generator`, so every picture is reproducible from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from .models.base import LatentModel

Method = Literal["lerp", "slerp"]
METHODS: tuple[str, ...] = ("lerp", "slerp")
# Codes decoded per forward pass: big enough to be fast, small enough to bound memory.
DECODE_BATCH = 256


@dataclass(frozen=True)
class LatentGrid:
    """Decoded images on a rows x cols grid, with the code values along each axis.

    images: (rows, cols, C, H, W) in [0, 1]; row 0 is the *largest* y value (top of a plot),
    column 0 the smallest x value. x_values / y_values are the actual code values (not
    standard deviations) of dims `dim_x` / `dim_y`, in the order the columns / rows appear.
    """

    images: torch.Tensor
    codes: torch.Tensor  # (rows, cols, D)
    x_values: torch.Tensor  # (cols,)
    y_values: torch.Tensor  # (rows,)
    dim_x: int
    dim_y: int


def _check_dim(model: LatentModel, dim: int, what: str) -> int:
    if not 0 <= int(dim) < model.latent_dim:
        raise ValueError(f"{what} must be a latent dimension in 0..{model.latent_dim - 1}, got {dim}")
    return int(dim)


def prior_mean(model: LatentModel) -> torch.Tensor:
    """The centre of the model's code space, (D,)."""
    return model.latent_mean().clone()


def seeded_code(model: LatentModel, seed: int) -> torch.Tensor:
    """One code drawn from the model's prior (or fitted Gaussian) with a fixed seed, (D,)."""
    generator = torch.Generator().manual_seed(int(seed))
    return model.sample_latent(1, generator=generator)[0].detach()


def standardize(model: LatentModel, z: torch.Tensor) -> torch.Tensor:
    """Codes -> units of the model's spread: (z - mean) / std. Shapes (..., D)."""
    return (z - model.latent_mean()) / model.latent_std()


def unstandardize(model: LatentModel, u: torch.Tensor) -> torch.Tensor:
    """Units of the model's spread -> codes: mean + std * u. Shapes (..., D)."""
    return model.latent_mean() + model.latent_std() * u


def standard_draw(dim: int, seed: int) -> torch.Tensor:
    """A seeded N(0, I) vector (D,), to place several models at the 'same' random code."""
    return torch.randn(dim, generator=torch.Generator().manual_seed(int(seed)))


def axis_values(span: float, size: int) -> torch.Tensor:
    """`size` evenly spaced values from -span to +span (standard-deviation units)."""
    if size < 1:
        raise ValueError(f"grid size must be at least 1, got {size}")
    if not (span > 0 and math.isfinite(span)):
        raise ValueError(f"span must be a positive number of standard deviations, got {span}")
    return torch.linspace(-float(span), float(span), int(size))


def normal_quantiles(size: int, edge: float = 0.05) -> torch.Tensor:
    """Standard-normal quantiles of `size` evenly spaced probabilities in [edge, 1 - edge].

    Spacing a grid by quantiles gives equal prior mass to every cell: the classic picture
    of a 2-D VAE's whole learned manifold (Kingma & Welling 2014, fig. 4).
    """
    if size < 1:
        raise ValueError(f"grid size must be at least 1, got {size}")
    if size == 1:
        return torch.zeros(1)
    p = torch.linspace(edge, 1.0 - edge, int(size), dtype=torch.float64)
    return torch.distributions.Normal(0.0, 1.0).icdf(p).float()


def grid_codes(base: torch.Tensor, dim_x: int, dim_y: int, x_values: torch.Tensor,
               y_values: torch.Tensor) -> torch.Tensor:
    """Copies of `base` (D,) with dims dim_x / dim_y set to every (x, y) pair.

    Returns (rows, cols, D) where rows follow `y_values` and columns follow `x_values`.
    """
    if dim_x == dim_y:
        raise ValueError("choose two different latent dimensions for the grid axes")
    rows, cols = len(y_values), len(x_values)
    codes = base.detach().to(torch.float32).reshape(1, 1, -1).repeat(rows, cols, 1)
    codes[:, :, dim_x] = x_values.reshape(1, cols).to(codes.dtype)
    codes[:, :, dim_y] = y_values.reshape(rows, 1).to(codes.dtype)
    return codes


@torch.no_grad()
def decode(model: LatentModel, z: torch.Tensor, label: int | None = None,
           batch: int = DECODE_BATCH) -> torch.Tensor:
    """Decode codes (N, D) in batches; `label` is the class for a conditional model."""
    y = model._check_labels(label, len(z), z.device)
    out = [model.decode(z[i:i + batch], None if y is None else y[i:i + batch])
           for i in range(0, len(z), batch)]
    return torch.cat(out) if out else torch.empty(0, *model.data_shape)


def encode(model: LatentModel, x: torch.Tensor, label: int | torch.Tensor | None = None,
           batch: int = DECODE_BATCH, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Codes (N, D) of images (N, C, H, W) in [0, 1]; `label`: one class for all, or (N,) classes
    (used by conditional models only). `progress`: for a model that inverts (a GAN), called
    with (steps done, steps) as its optimisation goes, once over for each batch.

    Not wrapped in no_grad: a GAN's encoder is an optimisation (inversion) that needs
    gradients; it manages them itself. The result is detached.
    """
    y = model._check_labels(label, len(x), x.device)   # one class for all, or one per image
    how = {"progress": progress} if progress is not None and inverts(model) else {}
    out = [model.encode(x[i:i + batch], None if y is None else y[i:i + batch], **how).detach()
           for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.empty(0, model.latent_dim)


def inverts(model: LatentModel) -> bool:
    """Whether the model finds codes by optimisation rather than with an encoder network (a
    GAN inverts its generator): about a second per image, and only as good as the fit."""
    return callable(getattr(model, "invert", None))


@torch.no_grad()
def reconstruction_error(model: LatentModel, x: torch.Tensor, z: torch.Tensor,
                         label: int | None = None) -> torch.Tensor:
    """Mean squared error per pixel between images x (N, C, H, W) in [0, 1] and decode(z), (N,).

    For a GAN this is the error its inversion reached: how well the generator can make x.
    """
    return (decode(model, z, label) - x).pow(2).flatten(1).mean(1)


def latent_grid(model: LatentModel, base: torch.Tensor, dim_x: int, dim_y: int, span: float,
                size: int, label: int | None = None) -> LatentGrid:
    """Decode a size x size grid over dims (dim_x, dim_y), the other dims fixed at `base`.

    The grid spans mean +- span * std along each of the two dims (centred on the code
    space, not on `base`), so the same settings show the same region for any base code.
    """
    dim_x = _check_dim(model, dim_x, "x dimension")
    dim_y = _check_dim(model, dim_y, "y dimension")
    if base.shape != (model.latent_dim,):
        raise ValueError(f"base code must have shape ({model.latent_dim},), got {tuple(base.shape)}")
    t = axis_values(span, size)
    mean, std = model.latent_mean(), model.latent_std()
    xs = mean[dim_x] + std[dim_x] * t
    ys = mean[dim_y] + std[dim_y] * t.flip(0)  # top row = largest y
    codes = grid_codes(base, dim_x, dim_y, xs, ys)  # (rows, cols, D)
    images = decode(model, codes.reshape(-1, model.latent_dim), label)
    return LatentGrid(images.reshape(size, size, *images.shape[1:]), codes, xs, ys, dim_x, dim_y)


def manifold_grid(model: LatentModel, size: int, label: int | None = None,
                  dims: tuple[int, int] = (0, 1), base: torch.Tensor | None = None) -> LatentGrid:
    """The whole learned manifold over two dims, spaced by prior quantiles (equal mass per cell).

    Meant for 2-D-latent models; for larger ones the other dims sit at `base` (default: mean).
    """
    dim_x = _check_dim(model, dims[0], "x dimension")
    dim_y = _check_dim(model, dims[1], "y dimension")
    base = prior_mean(model) if base is None else base
    q = normal_quantiles(size)
    mean, std = model.latent_mean(), model.latent_std()
    xs = mean[dim_x] + std[dim_x] * q
    ys = mean[dim_y] + std[dim_y] * q.flip(0)
    codes = grid_codes(base, dim_x, dim_y, xs, ys)
    images = decode(model, codes.reshape(-1, model.latent_dim), label)
    return LatentGrid(images.reshape(size, size, *images.shape[1:]), codes, xs, ys, dim_x, dim_y)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight line: (1 - t) z0 + t z1 for each t. z0, z1 (D,), t (T,) -> (T, D)."""
    t = t.reshape(-1, 1).to(z0.dtype)
    return (1.0 - t) * z0.reshape(1, -1) + t * z1.reshape(1, -1)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor,
          center: torch.Tensor | None = None) -> torch.Tensor:
    """Spherical interpolation about `center` (default the origin). (D,), (D,), (T,) -> (T, D).

    Moves along the great circle between the two directions while blending the lengths,
    so the path keeps the norm typical of prior samples instead of cutting through the
    low-norm middle of a high-dimensional Gaussian (White, "Sampling Generative Networks",
    2016). Falls back to lerp when the two directions (nearly) coincide.
    """
    c = torch.zeros_like(z0) if center is None else center.to(z0.dtype)
    a, b = z0 - c, z1 - c
    na, nb = a.norm(), b.norm()
    t = t.reshape(-1, 1).to(z0.dtype)
    if na < 1e-8 or nb < 1e-8:
        return lerp(z0, z1, t.reshape(-1))
    cos = torch.clamp((a @ b) / (na * nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega < 1e-4:
        return lerp(z0, z1, t.reshape(-1))
    # Angle interpolated on the unit sphere, length interpolated linearly.
    so = torch.sin(omega)
    direction = (torch.sin((1.0 - t) * omega) * (a / na) + torch.sin(t * omega) * (b / nb)) / so
    length = (1.0 - t) * na + t * nb
    path = c + length * direction
    # Exact endpoints (no rounding drift), so the strip ends at the two encodings.
    path[t.reshape(-1) == 0] = z0
    path[t.reshape(-1) == 1] = z1
    return path


def interpolate(model: LatentModel, z0: torch.Tensor, z1: torch.Tensor, steps: int,
                method: Method = "lerp") -> torch.Tensor:
    """`steps` codes (steps, D) from z0 to z1 inclusive; slerp turns about the code-space centre."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    t = torch.linspace(0.0, 1.0, int(steps))
    if method == "lerp":
        return lerp(z0, z1, t)
    if method == "slerp":
        return slerp(z0, z1, t, center=model.latent_mean())
    raise ValueError(f"unknown interpolation method {method!r}; choose one of {METHODS}")


@torch.no_grad()
def path_log_density(model: LatentModel, z0: torch.Tensor, z1: torch.Tensor,
                     steps: int) -> dict[str, torch.Tensor]:
    """Prior log-density (nats) along the lerp and the slerp path, each (steps,)."""
    return {m: model.log_prior(interpolate(model, z0, z1, steps, m)) for m in METHODS}


@torch.no_grad()
def typical_log_density(model: LatentModel, n: int = 2048, seed: int = 0) -> float:
    """Average prior log-density of codes drawn from the prior: where typical codes live.

    In D dimensions this is far below the density at the mean; a path whose log-density
    climbs well above it runs through codes the decoder rarely saw during training.
    """
    g = torch.Generator().manual_seed(seed)
    return float(model.log_prior(model.sample_latent(n, generator=g)).mean())
