"""Training recipes, one per model name: optimizers, one step, and the per-epoch evaluation.

The shared loop in `loop.py` knows nothing of model maths; a recipe knows nothing of
epochs, files or progress bars. The models of a family share most of a recipe (the
autoencoders, the GANs, the autoregressive models); adding a model means registering its
recipe in RECIPES here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from explorer import metrics, packing
from explorer.models import GenerativeModel, gan

Optimizers = dict[str, torch.optim.Optimizer]


@dataclass(frozen=True)
class Recipe:
    """How to train one family. `step` returns the losses to log (python floats)."""

    make_optimizers: Callable[[GenerativeModel, dict[str, Any]], Optimizers]
    step: Callable[[GenerativeModel, Optimizers, torch.Tensor, torch.Tensor], dict[str, float]]
    evaluate: Callable[[GenerativeModel, torch.Tensor, torch.Tensor, bool], dict[str, Any]]
    after_epoch: Callable[[GenerativeModel, torch.Tensor, torch.Tensor], None] | None = None
    defaults: dict[str, Any] | None = None  # lr, batch size, ...
    # Train in the channels_last layout (see train.precision): on for the families whose
    # convolutions dominate a step, as measured by `python -m benchmarks.training_speed`.
    channels_last: bool = False


def _adam(model: GenerativeModel, hp: dict[str, Any]) -> Optimizers:
    return {"adam": torch.optim.Adam(model.parameters(), lr=hp["lr"])}


def _update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    # Autocast (bf16 training) wraps forward passes only; the backward pass follows the
    # dtypes the forward pass recorded, and the optimizer step is float32.
    with torch.autocast(loss.device.type, enabled=False):
        loss.backward()
    opt.step()


def _loss_step(model, opts, x, y) -> dict[str, float]:
    """One Adam step on `model.loss(x, y)`; every term it reports, as floats."""
    losses = model.loss(x, y)
    _update(opts["adam"], losses["loss"])
    return {k: float(v.detach()) for k, v in losses.items()}


def _autoencoder_step(model, opts, x, y) -> dict[str, float]:
    return _loss_step(model, opts, x, y if model.num_classes else None)


def _autoencoder_eval(model, x, y, binary: bool) -> dict[str, Any]:
    labels = y if model.num_classes else None
    if model.likelihood == "bound":
        return metrics.elbo_report(model, x, labels, binary=binary)
    return metrics.reconstruction_report(model, x, labels, binary=binary)


def _fit_ae_codes(model, x, y) -> None:
    # An AE has no prior; grids use the spread of its codes on (a slice of) the train set.
    model.fit_code_stats(x[:10_000].to(next(model.parameters()).device),
                         y[:10_000] if model.num_classes else None)


_AUTOENCODER = dict(make_optimizers=_adam, step=_autoencoder_step, evaluate=_autoencoder_eval,
                    defaults={"lr": 1e-3, "batch_size": 128})
RECIPES: dict[str, Recipe] = {
    "ae": Recipe(**_AUTOENCODER, after_epoch=_fit_ae_codes),
    "vae": Recipe(**_AUTOENCODER),
    "cvae": Recipe(**_AUTOENCODER),
}


# --- GANs ------------------------------------------------------------------------------------
# Real images are mapped to [-1, 1] to match the generator's tanh. Noise for z comes from the
# global torch RNG, whose state the loop saves, so a resumed run draws what it would have.

def _gan_optimizers(model, hp) -> Optimizers:
    betas = tuple(hp["betas"])
    return {"g": torch.optim.Adam(model.generator.parameters(), lr=hp["lr"], betas=betas),
            "d": torch.optim.Adam(model.discriminator.parameters(), lr=hp["lr"], betas=betas)}


def _gan_step(model, opts, x, y) -> dict[str, float]:
    """One discriminator step, then one generator step (DCGAN and the plain GAN)."""
    real = x * 2 - 1
    fake = model.generate(torch.randn(len(x), model.latent_dim, device=x.device))
    real_logits, fake_logits = model.critic(real), model.critic(fake.detach())
    d_loss = gan.discriminator_loss(real_logits, fake_logits)
    if not model.config.get("d_frozen", False):  # a plain GAN may freeze D to show the collapse
        _update(opts["d"], d_loss)
    g_loss = gan.generator_loss(model.critic(fake), model.config.get("g_loss", "non_saturating"))
    _update(opts["g"], g_loss)
    for _ in range(model.config.get("g_steps", 1) - 1):  # extra generator steps against the same D
        fake = model.generate(torch.randn(len(x), model.latent_dim, device=x.device))
        g_loss = gan.generator_loss(model.critic(fake), model.config.get("g_loss", "non_saturating"))
        _update(opts["g"], g_loss)
    return {"loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()),
            "d_real": float(torch.sigmoid(real_logits.detach()).mean()),
            "d_fake": float(torch.sigmoid(fake_logits.detach()).mean())}


def _wgan_gp_step(model, opts, x, y) -> dict[str, float]:
    """One critic step with gradient penalty; a generator step every `n_critic` critic steps."""
    real = x * 2 - 1
    fake = model.generate(torch.randn(len(x), model.latent_dim, device=x.device)).detach()
    gap = model.critic(real).mean() - model.critic(fake).mean()   # the Wasserstein estimate
    penalty = model.gradient_penalty(real, fake)
    _update(opts["d"], -gap + model.config["gp_weight"] * penalty)
    critic_steps = int(next(iter(opts["d"].state.values()))["step"])
    out = {"loss": float(-gap.detach()), "wasserstein": float(gap.detach()), "gp": float(penalty.detach())}
    if critic_steps % model.config["n_critic"] == 0:
        g_loss = -model.critic(model.generate(torch.randn(len(x), model.latent_dim, device=x.device))).mean()
        _update(opts["g"], g_loss)
    return out


REPLAY_SEED, REPLAY_SAMPLES = 1234, 100


@torch.no_grad()
def _gan_eval(model, x, y, binary: bool) -> dict[str, Any]:
    """Critic scores on the test set vs samples, and the fixed-seed sample grid for the replay."""
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    real = x[:2000].to(dev) * 2 - 1
    fake = model.generate(model.sample_latent(len(real), g).to(dev))
    gap = float(model.critic(real).mean() - model.critic(fake).mean())
    replay = model.decode(model.sample_latent(REPLAY_SAMPLES, torch.Generator().manual_seed(REPLAY_SEED)).to(dev))
    return {"critic_gap": gap, "headline": "critic_gap",
            "how": {"critic_gap": "mean critic score of 2000 test images minus that of 2000 samples (seed 0); "
                                  "for WGAN-GP an estimate of the Wasserstein distance, for GANs a logit gap"},
            "history": {"replay": packing.pack_images(replay)}}


# --- the classifier behind the sample-quality scores -----------------------------------------

@torch.no_grad()
def _classifier_eval(model, x, y, binary: bool) -> dict[str, Any]:
    dev = next(model.parameters()).device
    acc = float(torch.cat([model(x[s].to(dev)).argmax(1).cpu() for s in torch.arange(len(x)).split(1000)]
                          ).eq(y).float().mean())
    return {"test_accuracy": acc, "headline": "test_accuracy",
            "how": {"test_accuracy": f"top-1 accuracy on the {len(x)} test images"}}


# The convolutional GANs and the classifier train in channels_last (1.17-1.36x faster in float32
# here, benchmarks/reports/training_speed.md); the fully connected plain GAN has no use for it.
_GAN = dict(make_optimizers=_gan_optimizers, evaluate=_gan_eval)
RECIPES.update({
    "dcgan": Recipe(**_GAN, step=_gan_step, channels_last=True, defaults={"lr": 2e-4, "betas": [0.5, 0.999], "batch_size": 64,
                                                       "binarize": False}),
    "wgan_gp": Recipe(**_GAN, step=_wgan_gp_step, channels_last=True, defaults={"lr": 1e-4, "betas": [0.0, 0.9], "batch_size": 64,
                                                            "binarize": False}),
    "gan": Recipe(**_GAN, step=_gan_step, defaults={"lr": 2e-4, "betas": [0.5, 0.999], "batch_size": 64,
                                                     "binarize": False}),
    "classifier": Recipe(make_optimizers=_adam, step=_loss_step, evaluate=_classifier_eval, channels_last=True,
                         defaults={"lr": 1e-3, "batch_size": 128, "binarize": False}),
})


# --- PixelCNN and PixelRNN families (exact likelihood) ---------------------------------------
# The loop hands over binarized images for MNIST and grey levels k/255 for Fashion-MNIST; a
# Bernoulli model needs the former, a 256-way model takes either (as levels 0..255).

def _autoregressive_input(model, x: torch.Tensor) -> torch.Tensor:
    try:
        return model.as_input(x)  # the loop's data lie in [0, 1]: only grey data for a binary model fail
    except ValueError:
        raise ValueError(f"{model.name} with output=bernoulli models binary images, but the data are "
                         f"grey; train on binarized data (--binarize) or pass --set output=categorical256") from None


def _autoregressive_step(model, opts, x, y) -> dict[str, float]:
    return _loss_step(model, opts, _autoregressive_input(model, x), y if model.num_classes else None)


def _autoregressive_eval(model, x, y, binary: bool) -> dict[str, Any]:
    return metrics.autoregressive_report(model, _autoregressive_input(model, x),
                                         y if model.num_classes else None, binary=binary)


_AUTOREGRESSIVE = dict(make_optimizers=_adam, step=_autoregressive_step, evaluate=_autoregressive_eval,
                       defaults={"lr": 1e-3, "batch_size": 64})
RECIPES.update({
    # PixelCNN is a plain conv stack: channels_last helps it (1.08x here; far more under bf16 on
    # AMX). The gated and recurrent models are many small ops, where it does not.
    "pixelcnn": Recipe(**_AUTOREGRESSIVE, channels_last=True),
    "gated_pixelcnn": Recipe(**_AUTOREGRESSIVE),
    "row_lstm": Recipe(**_AUTOREGRESSIVE),
    "diagonal_bilstm": Recipe(**_AUTOREGRESSIVE),
})


# --- VQ-VAE and its prior ----------------------------------------------------------------------
# One run trains both: every step updates encoder, decoder and codebook (EMA) on the batch,
# and the prior on the batch's codes as they are (detached), so the prior ends trained on the
# encoded training set of the final codebook's neighbourhood.

def _vqvae_eval(model, x, y, binary: bool) -> dict[str, Any]:
    return metrics.codes_report(model, x, y if model.num_classes else None, binary=binary)


RECIPES["vqvae"] = Recipe(make_optimizers=_adam, step=_autoencoder_step, evaluate=_vqvae_eval,
                          defaults={"lr": 1e-3, "batch_size": 128}, channels_last=True)  # 15% faster here
