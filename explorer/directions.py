"""Directions in a latent code space: which dimensions matter, principal directions, attribute vectors.

Ideas from:
  - Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016: a VAE leaves
    many dimensions "inactive", their posterior equal to the prior for every input; the KL of a
    dimension says how much information about x it carries.
  - White, "Sampling Generative Networks", 2016 (plat): attribute vectors as differences of mean
    codes of labelled groups, added to a code in steps.
  - Härkönen, Hertzmann, Lehtinen & Paris, "GANSpace", NeurIPS 2020: principal components of
    codes (or of a GAN's sampled codes) as directions that explain the most variation.

Pure tensor functions over the `LatentModel` interface, like `latent.py`: the app turns their
results into grids and plots. Directions are unit vectors in the model's standardized code
space (units of `latent_std()`, see `latent.standardize`), so a step of 1 along any of them is
a step of one code spread, the same scale the grid uses for single dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import latent
from .models.autoencoder import gaussian_kl
from .models.base import LatentModel

# A dimension is inactive when it carries less than this share of the strongest one's effect
# (KL for a VAE, image change for the others): its slider changes next to nothing.
INACTIVE_SHARE = 0.02
ENCODE_BATCH = 500   # images per encoder or decoder pass


@dataclass(frozen=True)
class DimensionRanking:
    """Latent dimensions ordered by how much they matter.

    effect: (D,) the measure per dimension, in dimension order; order: dimensions, strongest
    first; active: (D,) whether a dimension's effect reaches INACTIVE_SHARE of the strongest.
    """

    effect: torch.Tensor
    order: list[int]
    active: torch.Tensor
    measure: str

    def strongest(self, k: int = 2) -> list[int]:
        return self.order[:k]


@dataclass(frozen=True)
class PrincipalDirections:
    """Principal directions of a set of codes, in standardized code space.

    directions: (K, D), orthonormal rows, strongest first; explained: (K,) share of the codes'
    total variance along each; mean: (D,) their mean (standardized units); source: in words.
    """

    directions: torch.Tensor
    explained: torch.Tensor
    mean: torch.Tensor
    source: str


def _labels(model: LatentModel, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
    return y if model.num_classes and y is not None else (
        torch.zeros(n, dtype=torch.long) if model.num_classes else None)


@torch.no_grad()
def kl_per_dimension(model: LatentModel, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over images of KL(q(z_d | x) || N(0, 1)) per dimension, nats, (D,). VAEs only."""
    total = torch.zeros(model.latent_dim, dtype=torch.float64)
    for s in range(0, len(x), ENCODE_BATCH):
        xb = x[s:s + ENCODE_BATCH]
        mu, logvar = model.encode_params(xb, _labels(model, None if y is None else y[s:s + ENCODE_BATCH], len(xb)))
        total += gaussian_kl(mu, logvar).double().sum(0)
    return (total / len(x)).float()


@torch.no_grad()
def decoder_sensitivity(model: LatentModel, n: int = 256, seed: int = 0) -> torch.Tensor:
    """Mean absolute change of the decoded image (per pixel, images in [0, 1]) when one
    dimension moves by one code spread from prior draws, (D,): how much each slider does."""
    z = model.sample_latent(n, torch.Generator().manual_seed(seed))
    y = _labels(model, torch.arange(n) % model.num_classes if model.num_classes else None, n)
    base = model.decode(z, y)
    std = model.latent_std()
    effect = torch.empty(model.latent_dim)
    for d in range(model.latent_dim):
        moved = z.clone()
        moved[:, d] += std[d]
        effect[d] = (model.decode(moved, y) - base).abs().mean()
    return effect


def variational(model: LatentModel) -> bool:
    """Whether the model has a Gaussian posterior q(z|x) (encode_params gives its mean and log-variance)."""
    return bool(getattr(model, "variational", False)) and hasattr(model, "encode_params")


def rank_dimensions(model: LatentModel, x: torch.Tensor | None = None,
                    y: torch.Tensor | None = None) -> DimensionRanking:
    """Dimensions by effect: the KL per dimension on images `x` for a VAE (needs x), otherwise
    the change of the decoded image per step of one code spread."""
    if variational(model):
        if x is None:
            raise ValueError("ranking a VAE's dimensions by KL needs images")
        effect, measure = kl_per_dimension(model, x, y), "KL per dimension (nats), mean over images"
    else:
        effect, measure = decoder_sensitivity(model), "mean |change| of the image per step of one code spread"
    order = torch.argsort(effect, descending=True, stable=True).tolist()
    active = effect >= INACTIVE_SHARE * effect.max().clamp_min(1e-12)
    return DimensionRanking(effect=effect, order=order, active=active, measure=measure)


def principal_directions(model: LatentModel, codes: torch.Tensor, k: int | None = None,
                         source: str = "encoded images") -> PrincipalDirections:
    """The top-k principal directions of codes (N, D), in standardized code space."""
    u = latent.standardize(model, codes).double()
    mean = u.mean(0)
    centred = u - mean
    # SVD of the centred codes: right singular vectors are the principal directions.
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    var = s.pow(2)
    k = min(k or len(s), len(s))
    # Fix each direction's sign (largest component positive) so results are reproducible.
    signs = torch.sign(vh[torch.arange(len(vh)), vh.abs().argmax(1)])
    vh = vh * signs[:, None]
    return PrincipalDirections(directions=vh[:k].float(), explained=(var[:k] / var.sum()).float(),
                               mean=mean.float(), source=source)


def sampled_principal_directions(model: LatentModel, n: int = 4096, seed: int = 0,
                                 k: int | None = None) -> PrincipalDirections:
    """Principal directions for a model whose codes have no structure of their own to analyse
    (a GAN's prior samples are isotropic): as in GANSpace, take the principal axes of what the
    codes produce (here the decoded images, the generator's last features) and pull each back
    to code space by regressing the codes on the samples' coordinates along it. `explained` is
    the share of the images' variance along each axis."""
    z = model.sample_latent(n, torch.Generator().manual_seed(seed))
    y = _labels(model, torch.arange(n) % model.num_classes if model.num_classes else None, n)
    with torch.no_grad():
        images = torch.cat([model.decode(z[s:s + ENCODE_BATCH], None if y is None else y[s:s + ENCODE_BATCH])
                            for s in range(0, n, ENCODE_BATCH)]).flatten(1).double()
    u = latent.standardize(model, z).double()
    u = u - u.mean(0)
    images = images - images.mean(0)
    _, sing, vh = torch.linalg.svd(images, full_matrices=False)
    kk = min(k or model.latent_dim, model.latent_dim, len(vh))
    coords = images @ vh[:kk].T                                            # (n, kk) along the image axes
    solution = torch.linalg.lstsq(coords, u).solution                      # (kk, D): axis -> code direction
    q = torch.linalg.qr(solution.T).Q.T                                    # orthonormal rows, order kept
    q = q * torch.sign((q * solution).sum(1))[:, None]                     # same sense as the regression
    explained = sing[:kk].pow(2) / sing.pow(2).sum()
    return PrincipalDirections(directions=q.float(), explained=explained.float(),
                               mean=torch.zeros(model.latent_dim),
                               source=f"GANSpace-style: principal axes of {n} decoded prior samples")


def class_means(model: LatentModel, codes: torch.Tensor, labels: torch.Tensor, num_classes: int = 10
                ) -> torch.Tensor:
    """Mean standardized code of each class, (num_classes, D); NaN rows for absent classes."""
    u = latent.standardize(model, codes)
    out = torch.full((num_classes, u.shape[1]), float("nan"))
    for c in range(num_classes):
        sel = labels == c
        if sel.any():
            out[c] = u[sel].mean(0)
    return out


def attribute_vector(means: torch.Tensor, source: int, target: int) -> torch.Tensor:
    """The vector from class `source`'s mean code to class `target`'s (standardized units), (D,)."""
    for c in (source, target):
        if not 0 <= int(c) < len(means):
            raise ValueError(f"classes are 0..{len(means) - 1}, not {c}")
        if torch.isnan(means[int(c)]).any():
            raise ValueError(f"no images of class {c} were encoded, so it has no mean code")
    return means[int(target)] - means[int(source)]


def walk(model: LatentModel, z: torch.Tensor, direction: torch.Tensor, amounts: torch.Tensor) -> torch.Tensor:
    """Codes (len(amounts), D) from z (D,) moved by each amount along a standardized-space
    direction: amount 1 of an attribute vector lands on the target class's mean offset."""
    u = latent.standardize(model, z[None])[0]
    return latent.unstandardize(model, u[None] + amounts[:, None] * direction[None])


def project(model: LatentModel, codes: torch.Tensor, directions: PrincipalDirections) -> torch.Tensor:
    """Coordinates (N, K) of codes along principal directions (the 2-D scatter's axes)."""
    return (latent.standardize(model, codes) - directions.mean) @ directions.directions.T


@torch.no_grad()
def direction_grid(model: LatentModel, base: torch.Tensor, u_x: torch.Tensor, u_y: torch.Tensor, span: float,
                   size: int, label: int | None = None) -> latent.LatentGrid:
    """Like `latent.latent_grid`, but along two orthonormal directions of standardized code
    space: `base` (D,) keeps its components across them, and along them takes every value from
    -span to +span (as the dimension grid sets its two dims). x_values / y_values are those
    values; dim_x / dim_y are -1 (the axes are directions, not dimensions)."""
    if abs(float(u_x @ u_y)) > 1e-4 or abs(float(u_x.norm()) - 1) > 1e-4 or abs(float(u_y.norm()) - 1) > 1e-4:
        raise ValueError("the two grid directions must be orthonormal")
    t = latent.axis_values(span, size)
    u_base = latent.standardize(model, base.reshape(1, -1))[0]
    u_base = u_base - (u_base @ u_x) * u_x - (u_base @ u_y) * u_y
    steps = u_base[None, None] + t[None, :, None] * u_x[None, None] + t.flip(0)[:, None, None] * u_y[None, None]
    codes = latent.unstandardize(model, steps)                                   # (rows, cols, D)
    images = latent.decode(model, codes.reshape(-1, model.latent_dim), label)
    return latent.LatentGrid(images.reshape(size, size, *images.shape[1:]), codes, t, t.flip(0), -1, -1)


@torch.no_grad()
def sampled_class_means(model: LatentModel, classifier: torch.nn.Module, n: int = 2000, seed: int = 0,
                        num_classes: int = 10) -> torch.Tensor:
    """Class means for a model without an encoder: prior samples labelled by a classifier
    (standardized units), (num_classes, D); NaN rows for classes no sample was given."""
    z = model.sample_latent(n, torch.Generator().manual_seed(seed))
    images = latent.decode(model, z)
    preds = torch.cat([classifier(images[s:s + ENCODE_BATCH]).argmax(1) for s in range(0, n, ENCODE_BATCH)])
    return class_means(model, z, preds, num_classes)
