"""Autoencoder family: interface shapes and ranges, the ELBO and the importance-weighted bound."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from explorer import latent, metrics
from explorer.models import REGISTRY, build
from tests.helpers import TINY


@pytest.mark.parametrize("name", ["ae", "vae", "cvae"])
def test_latent_interface_shapes_and_range(name):
    model = build(name, {**TINY, "latent_dim": 3}).eval()
    g = torch.Generator().manual_seed(0)
    z = model.sample_latent(5, g)
    y = torch.arange(5) if model.num_classes else None
    x = model.decode(z, y)
    assert z.shape == (5, 3) and x.shape == (5, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1
    assert model.encode(x, y).shape == (5, 3)
    assert torch.equal(z, model.sample_latent(5, torch.Generator().manual_seed(0)))


def test_registry_and_config_errors():
    assert {"ae", "vae", "cvae"} <= set(REGISTRY)
    with pytest.raises(KeyError, match="unknown model 'vea'"):
        build("vea")
    with pytest.raises(ValueError, match="unknown config keys \\['latnt_dim'\\]"):
        build("vae", {"latnt_dim": 2})


def test_conditional_model_needs_valid_labels():
    model = build("cvae", TINY)
    z = torch.zeros(2, model.latent_dim)
    with pytest.raises(ValueError, match="class-conditional"):
        model.decode(z)
    with pytest.raises(ValueError, match="integers in 0..9"):
        model.decode(z, torch.tensor([3, 10]))
    assert model.decode(z, torch.tensor(3)).shape == (2, 1, 28, 28)  # one label broadcasts
    with pytest.raises(ValueError, match="class must be in 0..9, got 12"):  # one class, out of range
        latent.decode(model, z, 12)
    assert latent.encode(model, torch.zeros(0, 1, 28, 28), 3).shape == (0, model.latent_dim)  # no images: no codes


def test_best_vae_nll_is_the_tightest_stored_bound():
    scores = {"test_neg_elbo": 100.0, "test_iw_nll_k100": 95.0, "test_iw_nll_k1000": 94.0, "test_iw_nll_kx": 1.0}
    assert metrics.best_vae_nll(scores) == 94.0
    assert metrics.best_vae_nll({"test_neg_elbo": 100.0}) == 100.0
    assert metrics.best_vae_nll({}) is None
    assert metrics.IW_BOUND_KEY.format(k=1000) == "test_iw_nll_k1000"


def test_ae_code_stats_define_its_latent_gaussian():
    model = build("ae", {**TINY, "latent_dim": 3}).eval()
    x = torch.rand(64, 1, 28, 28)
    model.fit_code_stats(x)
    codes = model.encode(x)
    torch.testing.assert_close(model.latent_mean(), codes.mean(0))
    torch.testing.assert_close(model.latent_std(), codes.std(0))


def test_vae_kl_matches_torch_distributions():
    torch.manual_seed(0)
    model = build("vae", {**TINY, "latent_dim": 4})
    x = torch.rand(6, 1, 28, 28).bernoulli()
    mu, logvar = model.encode_params(x)
    _, kl = model.elbo_terms(x, generator=torch.Generator().manual_seed(0))
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl, ref)


def _naive_iw_nll(model, x, k, seed):
    """Reference: the same bound written with torch.distributions, one image at a time."""
    g = torch.Generator().manual_seed(seed)
    mu, logvar = model.encode_params(x)
    std = (0.5 * logvar).exp()
    eps = torch.randn((k, *mu.shape), generator=g)           # same draws, same order
    out = []
    for i in range(len(x)):
        z = mu[i] + std[i] * eps[:, i]                       # (k, D)
        log_w = (Bernoulli(logits=model.decode_logits(z)).log_prob(x[i].expand(k, -1, -1, -1)).sum((1, 2, 3))
                 + Normal(0.0, 1.0).log_prob(z).sum(1) - Normal(mu[i], std[i]).log_prob(z).sum(1))
        out.append(-(torch.logsumexp(log_w.double(), 0) - math.log(k)))
    return torch.stack(out)


@torch.no_grad()
def test_importance_weighted_bound_matches_reference_and_tightens():
    torch.manual_seed(0)
    model = build("vae", {**TINY, "latent_dim": 4}).eval()
    x = torch.rand(5, 1, 28, 28).bernoulli()
    fast = metrics.importance_weighted_nll(model, x, k=32, batch_size=5, chunk=32, seed=3, progress=False)
    torch.testing.assert_close(fast, _naive_iw_nll(model, x, 32, 3), rtol=1e-5, atol=1e-3)
    # Chunking does not change the estimate when the draws line up (one chunk per batch here).
    elbo = metrics.elbo_report(model, x, binary=True)["test_neg_elbo"]
    iw = float(metrics.importance_weighted_nll(model, x, k=256, batch_size=5, progress=False).mean())
    assert iw <= elbo + 0.5  # the k-sample bound is tighter than the one-sample ELBO


@torch.no_grad()
def test_reports_say_how_they_were_measured():
    model = build("ae", TINY).eval()
    x = torch.rand(8, 1, 28, 28).bernoulli()
    rep = metrics.reconstruction_report(model, x, binary=True)
    assert rep["headline"] == "test_recon_nll" and rep["test_recon_nll"] > 0
    assert "fixed binarized" in rep["how"]["test_recon_nll"] and 0 <= rep["test_mse"] <= 1
