"""GANs: generator shapes and range, the gradient penalty, the two generator losses, inversion."""

from __future__ import annotations

import pytest
import torch

from explorer import checkpoints, packing
from explorer.models import build, gan
from train.__main__ import main

TINY = {"latent_dim": 8, "channels": 4}


@pytest.mark.parametrize("name,cfg", [("dcgan", TINY), ("wgan_gp", TINY), ("gan", {"latent_dim": 8, "hidden": 16}),
                                      ("dcgan", {**TINY, "refine": 2}), ("wgan_gp", {**TINY, "refine": 1}),
                                      ("gan", {**TINY, "generator": "conv", "discriminator": "conv"})])
def test_generator_shapes_and_range(name, cfg):
    model = build(name, cfg).eval()
    z = model.sample_latent(6, torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw, x = model.generate(z), model.decode(z)
    assert raw.shape == x.shape == (6, 1, 28, 28)
    assert raw.min() >= -1 and raw.max() <= 1 and x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x, (raw + 1) / 2)
    assert model.critic(raw).shape == (6,)


def test_dcgan_follows_the_paper_and_wgan_critic_has_no_batch_norm():
    dc, wg = build("dcgan", TINY), build("wgan_gp", TINY)
    kinds = lambda m: [type(x).__name__ for x in m.modules()]  # noqa: E731
    assert "MaxPool2d" not in kinds(dc) and "BatchNorm2d" in kinds(dc.discriminator)
    assert isinstance(dc.discriminator[1], torch.nn.LeakyReLU)  # no norm right after the input conv
    assert isinstance(dc.generator[-1], torch.nn.Tanh) and isinstance(dc.generator[-2], torch.nn.ConvTranspose2d)
    assert "BatchNorm2d" not in kinds(wg.discriminator)


def test_refine_adds_size_keeping_convolutions_and_zero_is_the_old_network():
    old_config = {k: v for k, v in build("dcgan", TINY).config.items() if k != "refine"}
    old, plain, deep = build("dcgan", old_config), build("dcgan", {**TINY, "refine": 0}), build("dcgan", {**TINY, "refine": 2})
    assert old.config["refine"] == 0 and old.state_dict().keys() == plain.state_dict().keys()
    convs = lambda net: [m for m in net if isinstance(m, torch.nn.Conv2d) and m.stride == (1, 1)]  # noqa: E731
    # Two 3x3 blocks at each of the generator's two stages and the discriminator's two.
    assert len(convs(plain.generator)) == len(convs(plain.discriminator)) == 0
    assert len(convs(deep.generator)) == len(convs(deep.discriminator)) == 4
    assert all(m.kernel_size == (3, 3) and m.in_channels == m.out_channels for m in convs(deep.generator))
    assert "BatchNorm2d" not in [type(m).__name__ for m in build("wgan_gp", {**TINY, "refine": 1}).discriminator]


def test_gradient_penalty_matches_a_per_image_computation():
    torch.manual_seed(0)
    model = build("wgan_gp", TINY)
    real, fake = torch.rand(5, 1, 28, 28) * 2 - 1, torch.rand(5, 1, 28, 28) * 2 - 1
    gp = model.gradient_penalty(real, fake, torch.Generator().manual_seed(3))
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    terms = []
    for i in range(5):
        x_hat = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        grad, = torch.autograd.grad(model.critic(x_hat).sum(), x_hat)
        terms.append((grad.norm() - 1) ** 2)
    torch.testing.assert_close(gp, torch.stack(terms).mean())
    gp.backward()  # the penalty is differentiable w.r.t. the critic's weights
    assert model.discriminator[0].weight.grad.abs().sum() > 0


def test_saturating_loss_vanishes_where_the_non_saturating_one_does_not():
    # When D confidently rejects fakes (logit -8), log(1 - D) is flat but -log D is steep.
    logits = torch.full((4,), -8.0, requires_grad=True)
    grad_sat, = torch.autograd.grad(gan.generator_loss(logits, "saturating"), logits)
    grad_ns, = torch.autograd.grad(gan.generator_loss(logits, "non_saturating"), logits)
    assert grad_sat.abs().max() < 1e-3 / 4 and grad_ns.abs().min() > 0.99 / 4
    real, fake = torch.tensor([10.0]), torch.tensor([-10.0])
    assert gan.discriminator_loss(real, fake) < 1e-3  # a perfect discriminator has ~zero loss


def test_inversion_recovers_a_generated_image():
    torch.manual_seed(1)
    model = build("dcgan", TINY).eval()
    z = model.sample_latent(3, torch.Generator().manual_seed(5))
    with torch.no_grad():
        x = model.decode(z)
    inv = model.invert(x, torch.Generator().manual_seed(0))
    assert inv.z.shape == (3, 8) and inv.error.shape == (3,)
    # The stated budget (4 restarts x 120 Adam steps) gets generated images back within 1e-4 MSE.
    assert inv.error.max() < 1e-4
    with torch.no_grad():
        torch.testing.assert_close(inv.error, (model.decode(inv.z) - x).pow(2).flatten(1).mean(1))
    assert torch.equal(model.encode(x), model.encode(x))  # deterministic
    assert not any(p.requires_grad is False for p in model.parameters())  # weights left trainable


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp"])
def test_gan_training_records_a_replay_per_epoch(name, fake_data, tmp_path):
    out = tmp_path / f"{name}.safetensors"
    args = [name, "--dataset", "mnist", "--epochs", "2", "--out", str(out), "--data-dir", str(fake_data),
            "--threads", "1", "--no-progress", "--state-dir", str(tmp_path), "--set", "latent_dim=8", "channels=4"]
    assert main(args) == 0
    ckpt = checkpoints.load(out)
    assert not ckpt.training["binarized"]  # GANs see grey images
    replay = [packing.unpack_images(s) for s in ckpt.history["replay"]]
    assert len(replay) == 2 and replay[0].shape == (100, 1, 28, 28)
    assert not torch.equal(replay[0], replay[1])  # the generator moved between epochs
    with torch.no_grad():  # the last replay is the fixed-seed sample of the saved generator
        z = ckpt.model.sample_latent(100, torch.Generator().manual_seed(1234))
        expected = (ckpt.model.decode(z) * 255).round() / 255
    torch.testing.assert_close(replay[1], expected, atol=1 / 255 + 1e-6, rtol=0)


def test_the_plain_gan_takes_a_convolutional_discriminator_without_batch_norm():
    from explorer.models import build

    torch.manual_seed(0)
    model = build("gan", {"latent_dim": 8, "hidden": 16, "discriminator": "conv", "channels": 4})
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.discriminator.modules())
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert model.critic(x).shape == (5,)
    # Each image's score depends on that image alone (nothing compares the batch).
    torch.testing.assert_close(model.critic(x)[:2], model.critic(x[:2]))
    for bad in ({"discriminator": "transformer"}, {"generator": "transformer"}, {"g_steps": 0}):
        with pytest.raises(ValueError):
            build("gan", bad)


def test_the_plain_gan_takes_a_convolutional_generator_without_batch_norm():
    # Batch norm would tie each sample to the rest of its batch; the collapse the plain GAN is
    # there to show must come from the game alone, one z at a time.
    model = build("gan", {**TINY, "generator": "conv"}).train()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.generator.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.generator.modules())
    z = model.sample_latent(4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.generate(z)[:1], model.generate(z[:1]))
