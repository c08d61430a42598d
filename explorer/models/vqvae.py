"""VQ-VAE: images as a grid of discrete codes, with a gated PixelCNN prior over the grid.

Papers:
  - van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS
    2017 (VQ-VAE: nearest-neighbour quantization, straight-through gradients, the
    commitment loss, the EMA codebook of its appendix, a PixelCNN prior over the codes).
  - Razavi, van den Oord & Vinyals, "Generating Diverse High-Fidelity Images with VQ-VAE-2",
    NeurIPS 2019 (the lecture notes' VQ-VAE-2: EMA codebooks, autoregressive priors over
    code maps; one level here, for 28x28 images).
  - Dhariwal, Jun, Payne, Kim, Radford & Sutskever, "Jukebox: A Generative Model for Music",
    2020 (restarting dead codes at random encoder outputs).

The idea. A VAE's code is one continuous vector, and its Gaussian decoder term blurs what the
code leaves uncertain. A VQ-VAE's code is a 7x7 grid of symbols from a codebook of K
vectors: the encoder's output at each cell is replaced by its nearest codebook vector, so an
image becomes 49 integers. The decoder sees only those; the prior is learnt afterwards, as
a distribution over code grids, by an autoregressive model (a gated PixelCNN over K-way codes,
`pixelcnn.py` / `causal.py`). Sampling draws a code grid from the prior, cell by cell, and
decodes it once. Sharp samples come from the decoder never having to average over codes.

    encoder: x (1x28x28) -conv4/2-> c x 14 x 14 -conv4/2-> 2c x 7 x 7 -res, res-> -1x1-> D x 7 x 7 = z_e
    quantize: each cell's z_e (D) -> nearest codebook vector e_k: code k (7x7 integers), z_q = e_k
    decoder: z_q -3x3-> 2c x 7 x 7 -res, res-> -deconv4/2-> c x 14 x 14 -deconv4/2-> 1 x 28 x 28 logits

Straight-through gradients. Quantization has no gradient; the decoder's gradient at z_q is
copied to z_e unchanged: the decoder reads z = z_e + sg(z_q - z_e), which equals z_q going
forward and z_e going back (sg: stop-gradient).

Loss per image (nats): -log p(x | z_q) (Bernoulli decoder) + beta * ||z_e - sg(z_q)||^2 (the
commitment term keeps the encoder near its codes) + -log p_prior(sg(codes)) (the prior, on
the codes of the training images as they are; the codes are integers, so the prior shapes
neither encoder nor codebook). While the codebook still moves, the prior chases it; a second
stage (config fit="prior", `python -m train vqvae --init <first stage> --set fit=prior`)
freezes encoder, codebook and decoder and fits the prior alone, on the encoded training set.

The codebook learns by exponential moving averages, not by gradient (the paper's appendix).
With n_k the number of cells assigned to code k in a batch and s_k the sum of their z_e:

    N_k <- g N_k + (1 - g) n_k        m_k <- g m_k + (1 - g) s_k        e_k = m_k / N_k

so e_k tracks the mean of the encoder outputs it wins (k-means, online). A code whose N_k
falls below `dead_below` (default 1: less than one cell per batch, on average) is dead; it
restarts at a random encoder output of the batch, with N_k = 1, and keeps restarting each
step until it wins cells. The codebook starts empty (N = 0), so the first step restarts
every code that won too little: the codebook starts on the data.

An honest likelihood. The encoder is deterministic, q(z|x) puts all its mass on the nearest
codes z_q, and its KL to the prior is -log p(z_q). So the ELBO gives

    -log p(x) <= -log p(x | z_q) - log p_prior(z_q)

(nats per image; the prior's term, in bits, is the cost of the code grid), comparable with
a VAE's bound and a PixelCNN's exact figure on the same binarized test set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, build, register
from .deconv import ConvTranspose2d
from .causal import CausalModel


class Residual(nn.Module):
    """x + 1x1(relu(3x3(relu(x)))), as in the paper's encoder and decoder."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def perplexity(codes: torch.Tensor, num_codes: int) -> float:
    """exp(entropy of how often each code is used): K if all K are used equally, 1 if one is."""
    usage = torch.bincount(codes.flatten(), minlength=num_codes).double()
    p = usage / usage.sum()
    return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))


@register
class VQVAE(GenerativeModel):
    """Encoder, codebook (EMA), decoder, and the prior: a gated PixelCNN over the code grid.

    Codes are (N, 7, 7) long tensors of integers 0..K-1 (`encode`, `sample`'s first half);
    `decode` turns them into images (N, 1, 28, 28) in [0, 1].
    """

    name = "vqvae"
    kind = "discrete_latent"
    description = "VQ-VAE with a gated PixelCNN prior"
    has_encoder = True
    likelihood = "bound"
    defaults = {"channels": 32, "embedding_dim": 16, "num_codes": 128, "beta": 0.25, "decay": 0.99,
                "dead_below": 1.0, "num_classes": 0, "fit": "all",
                "prior": {"channels": 48, "layers": 5, "first_kernel": 5, "kernel": 3},
                "data_shape": [1, 28, 28]}
    grid = (7, 7)   # code grid of a 28x28 image: two stride-2 convolutions

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, d, k = self.config["channels"], self.config["embedding_dim"], self.config["num_codes"]
        if tuple(self.data_shape) != (1, 28, 28):
            raise ValueError(f"{self.name} is built for 1x28x28 images, not {self.data_shape}")
        if k < 2:
            raise ValueError(f"{self.name}: num_codes must be at least 2")
        if self.config["fit"] not in ("all", "prior"):
            raise ValueError(f"{self.name}: fit must be 'all' or 'prior', not {self.config['fit']!r}")
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.ReLU(),              # (N, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1),                     # (N, 2c, 7, 7)
            Residual(2 * c), Residual(2 * c), nn.ReLU(),
            nn.Conv2d(2 * c, d, 1),                           # (N, D, 7, 7): z_e
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(d, 2 * c, 3, 1, 1),                     # (N, 2c, 7, 7)
            Residual(2 * c), Residual(2 * c), nn.ReLU(),
            ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(),  # (N, c, 14, 14)
            ConvTranspose2d(c, 1, 4, 2, 1),                 # (N, 1, 28, 28) logits
        )
        # The codebook and its moving averages: buffers, updated without gradients.
        self.register_buffer("codebook", torch.randn(k, d))    # (K, D): e_k
        self.register_buffer("ema_count", torch.zeros(k))     # (K,): N_k (zero: restart at first step)
        self.register_buffer("ema_sum", torch.zeros(k, d))    # (K, D): m_k
        prior_config = {**self.config["prior"], "output": "codes", "num_codes": k,
                        "num_classes": self.num_classes, "data_shape": [1, *self.grid]}
        self.prior: CausalModel = build("gated_pixelcnn", prior_config)  # type: ignore[assignment]

    @property
    def num_codes(self) -> int:
        return int(self.config["num_codes"])

    # ------------------------------------------------------------------ codes

    def quantize(self, z_e: torch.Tensor) -> torch.Tensor:
        """Encoder outputs (N, D, h, w) -> the nearest code at every cell, (N, h, w) long."""
        flat = z_e.detach().float().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])       # (N h w, D)
        book = self.codebook.float()
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is the same for every code
        distances = book.pow(2).sum(1) - 2 * flat @ book.t()                            # (N h w, K)
        return distances.argmin(1).view(z_e.shape[0], *z_e.shape[2:])

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (N, h, w) -> their codebook vectors z_q, (N, D, h, w)."""
        return self.codebook[codes.long()].permute(0, 3, 1, 2)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, 1, 28, 28) in [0, 1] -> codes (N, 7, 7), integers 0..K-1."""
        return self.quantize(self.encoder(x))

    def decode_logits(self, codes: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.embed(codes))

    def decode(self, codes: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (N, 7, 7) -> images (N, 1, 28, 28) in [0, 1] (the decoder's probabilities)."""
        return torch.sigmoid(self.decode_logits(codes, y))

    @torch.no_grad()
    def blank_code(self) -> int:
        """The code of empty background: what the corner of an all-zero image encodes to."""
        return int(self.encode(torch.zeros(1, *self.data_shape, device=self.codebook.device))[0, 0, 0])

    @staticmethod
    def as_grid(codes: torch.Tensor) -> torch.Tensor:
        """Codes (N, h, w) long -> the prior's grid (N, 1, h, w) of floats (see `causal.GridInput`)."""
        return codes[:, None].float()

    def prior_nll(self, codes: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """-log p_prior(codes) per code grid, nats: (N,). Exact (the prior is autoregressive)."""
        return -self.prior.log_prob(self.as_grid(codes), self._check_labels(y, codes.shape[0]))

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | codes) per image in nats, Bernoulli pixels; x may be grey (a soft target)."""
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)

    # ------------------------------------------------------------------ training

    @torch.no_grad()
    def update_codebook(self, z_e: torch.Tensor, codes: torch.Tensor,
                        generator: torch.Generator | None = None) -> None:
        """One EMA step of the codebook from a batch, then restarts of dead codes.

        z_e: encoder outputs (N, D, h, w); codes: their nearest codes (N, h, w).
        """
        with torch.autocast(z_e.device.type, enabled=False):
            g, k = self.config["decay"], self.num_codes
            flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])          # (M, D)
            onehot = F.one_hot(codes.flatten(), k).float()                             # (M, K)
            self.ema_count.mul_(g).add_(onehot.sum(0), alpha=1 - g)                    # N_k
            self.ema_sum.mul_(g).add_(onehot.t() @ flat, alpha=1 - g)                  # m_k
            alive = self.ema_count >= self.config["dead_below"]
            self.codebook[alive] = self.ema_sum[alive] / self.ema_count[alive, None]   # e_k = m_k / N_k
            dead = (~alive).nonzero()[:, 0]
            if len(dead):
                picks = torch.randint(len(flat), (len(dead),), generator=generator).to(flat.device)
                self.codebook[dead] = flat[picks]
                self.ema_sum[dead] = flat[picks]
                self.ema_count[dead] = 1.0

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Reconstruction + beta * commitment + the prior's NLL of the (detached) codes, per image.

        In training mode each call also moves the codebook one EMA step (see the module docstring).
        With config fit="prior" (a second stage, started from a trained VQ-VAE) encoder, codebook
        and decoder stay as they are, and only the prior learns, on a fixed code for every image.
        """
        if self.config["fit"] == "prior":
            with torch.no_grad():
                codes = self.encode(x)
            prior = self.prior_nll(codes, y)
            return {"loss": prior.mean(), "prior_nll": prior.mean().detach()}
        z_e = self.encoder(x)                                      # (N, D, 7, 7)
        codes = self.quantize(z_e)                                 # (N, 7, 7)
        z_q = self.embed(codes).to(z_e.dtype)                      # (N, D, 7, 7), no gradient
        commitment = (z_e - z_q).pow(2).flatten(1).sum(1)          # z_q carries no gradient: sg(z_q)
        z = z_e + (z_q - z_e).detach()                             # straight-through
        recon = self.reconstruction_nll(self.decoder(z), x)
        prior = self.prior_nll(codes, y)
        if self.training:
            self.update_codebook(z_e.detach(), codes)
        total = recon + self.config["beta"] * commitment + prior
        return {"loss": total.mean(), "recon": recon.mean().detach(), "commitment": commitment.mean().detach(),
                "prior_nll": prior.mean().detach(),
                "perplexity": torch.tensor(perplexity(codes, self.num_codes))}
