"""GANs for 28x28 grey images: DCGAN, WGAN-GP, and a plain GAN that shows mode collapse.

Papers:
  - Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014: the minimax game, and
    the non-saturating generator loss that gives useful gradients early in training.
  - Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks", ICLR 2016 (DCGAN): strided convolutions instead of
    pooling, batch norm except at the generator output and discriminator input, ReLU in the
    generator with a tanh output, LeakyReLU(0.2) in the discriminator, Adam(2e-4, beta1 0.5).
  - Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017, and Gulrajani et al.,
    "Improved Training of Wasserstein GANs", NeurIPS 2017 (WGAN-GP): a critic without batch
    norm, a gradient penalty (lambda 10) on points between real and fake, 5 critic steps
    per generator step, Adam(1e-4, betas (0, 0.9)).

The networks (c = `channels`):

    generator:      z -fc-> 4c x 7 x 7 -deconv4/2-> 2c x 14 x 14 -deconv4/2-> 1 x 28 x 28, tanh
    discriminator:  x -conv4/2-> c x 14 x 14 -conv4/2-> 2c x 7 x 7 -fc-> 1 logit / critic score

`refine` (DCGAN and WGAN-GP, default 0) adds that many size-keeping 3x3 conv blocks after
each of the generator's 7x7 and 14x14 stages and after each strided conv of the
discriminator: more depth at the same resolutions, for sharper strokes. Checkpoints saved
before the option existed have no `refine` in their config and load as refine=0.

The plain GAN (`gan`) is a small fully connected pair trained with a choice of generator
loss; its shipped checkpoint is configured to collapse onto a few digits, which the app's
training replay makes visible.

A GAN has no encoder. `encode` inverts the generator by optimisation (several restarts,
a fixed budget of Adam steps, a light prior term) so that interpolating between two real
images works for GANs as for VAEs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .base import LatentModel, register
from .deconv import ConvTranspose2d


def _refine(ch: int, blocks: int, norm: Callable[[int], nn.Module], act: Callable[[], nn.Module]) -> list[nn.Module]:
    """`blocks` size-keeping 3x3 convolutions, each with its norm and activation."""
    return [m for _ in range(blocks) for m in (nn.Conv2d(ch, ch, 3, 1, 1), norm(ch), act())]


def _dcgan_generator(d: int, c: int, batch_norm: bool, refine: int = 0) -> nn.Module:
    norm = (lambda ch: nn.BatchNorm2d(ch)) if batch_norm else (lambda ch: nn.Identity())
    return nn.Sequential(
        nn.Linear(d, 4 * c * 49), nn.Unflatten(1, (4 * c, 7, 7)), norm(4 * c), nn.ReLU(),
        *_refine(4 * c, refine, norm, nn.ReLU),
        ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), norm(2 * c), nn.ReLU(),   # (N, 2c, 14, 14)
        *_refine(2 * c, refine, norm, nn.ReLU),
        ConvTranspose2d(2 * c, 1, 4, 2, 1), nn.Tanh(),                      # (N, 1, 28, 28)
    )


def _dcgan_discriminator(c: int, batch_norm: bool, refine: int = 0) -> nn.Module:
    norm = (lambda ch: nn.BatchNorm2d(ch)) if batch_norm else (lambda ch: nn.Identity())
    leaky = lambda: nn.LeakyReLU(0.2)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),                           # no norm at the input
        *_refine(c, refine, norm, leaky),
        nn.Conv2d(c, 2 * c, 4, 2, 1), norm(2 * c),
        nn.LeakyReLU(0.2),                                                     # (N, 2c, 7, 7)
        *_refine(2 * c, refine, norm, leaky),
        nn.Flatten(), nn.Linear(2 * c * 49, 1),
    )


def _mlp_generator(d: int, h: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                         nn.Linear(h, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))


def _mlp_discriminator(h: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, h), nn.LeakyReLU(0.2),
                         nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, 1))


@dataclass
class Inversion:
    """The result of inverting a generator: codes and how well they reproduce the images."""

    z: torch.Tensor      # (N, D)
    error: torch.Tensor  # (N,) mean squared error per pixel, images in [0, 1]


class _GAN(LatentModel):
    """Generator + discriminator; `decode` is the generator mapped from [-1, 1] to [0, 1]."""

    defaults = {"latent_dim": 64, "channels": 16, "num_classes": 0, "data_shape": [1, 28, 28]}
    # Inversion budget: restarts x steps of Adam on z. Generated images come back within
    # 1e-4 MSE per pixel, in one to two seconds on a CPU for a few images. The prior term is
    # tiny: it only breaks ties towards typical codes; larger weights bias the fit.
    inversion = {"restarts": 4, "steps": 120, "lr": 0.05, "prior_weight": 1e-6}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        if tuple(self.data_shape) != (1, 28, 28):
            raise ValueError(f"{self.name} is built for 1x28x28 images, not {self.data_shape}")

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, D) -> images in [-1, 1], the range the discriminator sees."""
        return self.generator(z)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return (self.generate(z) + 1) / 2

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> one score (logit for GANs, critic value for WGAN) per image, (N,)."""
        return self.discriminator(x).squeeze(1)

    def invert(self, x: torch.Tensor, generator: torch.Generator | None = None, restarts: int | None = None,
               steps: int | None = None, progress: Callable[[int, int], None] | None = None) -> Inversion:
        """Find z with decode(z) close to x (images in [0, 1]) by gradient descent from several starts.

        Minimises mean squared error plus a small ||z||^2 term (keeps codes where the prior
        puts them); keeps, per image, the restart with the lowest error. `progress`, if given,
        is called with (steps done, steps) before the first step and after each (it takes a
        second or two: the app shows how far it is).
        """
        cfg = self.inversion
        restarts = restarts or cfg["restarts"]
        steps = steps or cfg["steps"]
        x = x.detach()
        n = len(x)
        was_training = self.training
        self.eval()
        params = [p for p in self.parameters()]
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            # All restarts in one batch: (restarts * N, D).
            z = self.sample_latent(restarts * n, generator).to(x.device).requires_grad_(True)
            target = x.repeat(restarts, 1, 1, 1)
            opt = Adam(z, lr=cfg["lr"])
            if progress is not None:
                progress(0, steps)
            with torch.enable_grad():
                for step in range(steps):
                    err = (self.decode(z) - target).pow(2).flatten(1).mean(1)
                    loss = err.sum() + cfg["prior_weight"] * z.pow(2).sum()
                    z.grad = None
                    loss.backward()
                    opt.step()
                    if progress is not None:
                        progress(step + 1, steps)
            with torch.no_grad():
                err = (self.decode(z) - target).pow(2).flatten(1).mean(1).view(restarts, n)
                best = err.argmin(0)                                        # (N,)
                z = z.detach().view(restarts, n, -1)[best, torch.arange(n)]
                return Inversion(z=z, error=err[best, torch.arange(n)])
        finally:
            for p, f in zip(params, flags):
                p.requires_grad_(f)
            self.train(was_training)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None,
               progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Codes for images by generator inversion (deterministic: a fixed seed); `progress` as
        for `invert`."""
        return self.invert(x, torch.Generator().manual_seed(0), progress=progress).z


class Adam:
    """Adam (Kingma & Ba, ICLR 2015) on one tensor, written out: the arithmetic of
    torch.optim.Adam's single-tensor step with its defaults (tested equal, bit for bit).

    Why not torch.optim.Adam: its step first asks the accelerator whether a CUDA graph is being
    captured, a CUDA call. On a ZeroGPU Space CUDA looks available but is refused outside a GPU
    call, and inversion must also run on the CPU there (the warm-up, and the fallback when no
    GPU is lent; see explorer.gpu).
    """

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.steps = 0
        self.mean = torch.zeros_like(param)     # first moment of the gradient
        self.square = torch.zeros_like(param)   # second moment

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        grad = self.param.grad
        self.steps += 1
        self.mean.lerp_(grad, 1 - beta1)
        self.square.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1 ** self.steps)
        denominator = (self.square.sqrt() / math.sqrt(1 - beta2 ** self.steps)).add_(self.eps)
        self.param.addcdiv_(self.mean, denominator, value=-step_size)


@register
class DCGAN(_GAN):
    name = "dcgan"
    description = "DCGAN"

    defaults = {**_GAN.defaults, "refine": 0}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, refine = self.config["channels"], self.config["refine"]
        self.generator = _dcgan_generator(self.latent_dim, c, batch_norm=True, refine=refine)
        self.discriminator = _dcgan_discriminator(c, batch_norm=True, refine=refine)


@register
class WGANGP(_GAN):
    name = "wgan_gp"
    description = "WGAN-GP"
    defaults = {**_GAN.defaults, "gp_weight": 10.0, "n_critic": 5, "refine": 0}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, refine = self.config["channels"], self.config["refine"]
        self.generator = _dcgan_generator(self.latent_dim, c, batch_norm=True, refine=refine)
        # No batch norm in the critic: the penalty is per example, batch norm mixes examples.
        self.discriminator = _dcgan_discriminator(c, batch_norm=False, refine=refine)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over the batch of (||grad_x critic(x_hat)||_2 - 1)^2, x_hat on real-fake lines."""
        eps = torch.rand(len(real), 1, 1, 1, generator=generator, device=real.device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(self.critic(x_hat).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


@register
class PlainGAN(_GAN):
    """The original GAN with small fully connected networks; `g_loss` picks the generator loss.

    "saturating":     G minimises log(1 - D(G(z)))  (the minimax game as written)
    "non_saturating": G maximises log D(G(z))       (the paper's practical fix)

    `g_steps` generator updates follow each discriminator update. Goodfellow et al. warn that
    "G must not be trained too much without updating D" lest it map many z to the same x
    (their "Helvetica scenario"); with g_steps > 1 that is exactly what happens: mode collapse.

    `discriminator`: "mlp" (fully connected, `hidden` units) or "conv" (DCGAN's discriminator
    with `channels`, without batch norm). A convolutional discriminator knows strokes, so the
    one image a collapsed generator makes is pushed to look like a real digit; without batch
    norm nothing in it compares the images of a batch, so nothing holds the generator back from
    making one image for every z. With `discriminator=conv g_steps=3` the generator collapses
    onto one digit and hops to another whenever the discriminator learns to reject the last.

    `generator`: "mlp" (fully connected) or "conv" (DCGAN's generator without batch norm, so
    each sample depends on its own z alone). The shipped collapsing GAN uses the MLP. With the
    convolutional one, `python -m train gan --set generator=conv discriminator=conv channels=16
    g_steps=8 --lr 1e-3 ...` lost to its discriminator in its first epoch (its log: D(real)
    0.98, D(fake) 0.03).
    """

    name = "gan"
    description = "plain GAN"
    # A run may learn with one generator step per discriminator step, then be resumed with
    # more, or with the discriminator frozen (`--resume --set d_frozen=true`: G trained with no
    # update of D at all, Goodfellow et al.'s warning taken to its end), to show the collapse.
    retunable = ("g_steps", "g_loss", "d_frozen")
    defaults = {"latent_dim": 64, "hidden": 256, "g_loss": "non_saturating", "g_steps": 1, "d_frozen": False,
                "generator": "mlp", "discriminator": "mlp", "channels": 16, "num_classes": 0,
                "data_shape": [1, 28, 28]}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        if self.config["g_loss"] not in ("saturating", "non_saturating"):
            raise ValueError("g_loss must be 'saturating' or 'non_saturating'")
        for part in ("generator", "discriminator"):
            if self.config[part] not in ("mlp", "conv"):
                raise ValueError(f"{part} must be 'mlp' or 'conv'")
        if int(self.config["g_steps"]) < 1:
            raise ValueError("g_steps must be at least 1")
        self.generator = (_dcgan_generator(self.latent_dim, self.config["channels"], batch_norm=False)
                          if self.config["generator"] == "conv" else _mlp_generator(self.latent_dim, self.config["hidden"]))
        self.discriminator = (_dcgan_discriminator(self.config["channels"], batch_norm=False)
                              if self.config["discriminator"] == "conv" else _mlp_discriminator(self.config["hidden"]))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))), averaged: the discriminator's side of the game."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """The generator's side: non-saturating -log D(G(z)), or saturating log(1 - D(G(z)))."""
    if kind == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
