"""The contract every registered model keeps, one parametrised test per model (and per grid kind).

Every model: builds from a config, survives a save and load round trip exactly, and gives
outputs of the right shape and range. Autoregressive ones also: the logits at a position do
not depend on that position or later ones (causal); log_prob is minus the sum of the
per-position terms, each computed through the model's own step-by-step sampler; cached
sampling draws exactly what the naive reference draws. A new model must add a tiny config
here (the first test fails until it does).
"""

from __future__ import annotations

import pytest
import torch

from explorer import checkpoints, sampling
from explorer.models import REGISTRY, build
from explorer.models.base import AutoregressiveModel

_AR = {"channels": 5, "layers": 2, "first_kernel": 3, "data_shape": [1, 5, 6]}
# One tiny config per registered model.
TINY = {
    "ae": {"hidden": 16, "channels": 4, "latent_dim": 3},
    "vae": {"hidden": 16, "channels": 4, "latent_dim": 3},
    "cvae": {"hidden": 16, "channels": 4, "latent_dim": 3},
    "dcgan": {"latent_dim": 8, "channels": 4},
    "wgan_gp": {"latent_dim": 8, "channels": 4},
    "gan": {"latent_dim": 8, "hidden": 16},
    "classifier": {"channels": 4, "features": 16},
    "pixelcnn": {**_AR, "kernel": 3},
    "gated_pixelcnn": {**_AR, "kernel": 3},
    "row_lstm": _AR,
    "diagonal_bilstm": _AR,
    "vqvae": {"channels": 4, "embedding_dim": 3, "num_codes": 6,
              "prior": {"channels": 6, "layers": 2, "first_kernel": 3, "kernel": 3}},
}
AUTOREGRESSIVE = sorted(n for n in REGISTRY if REGISTRY[n].kind == "autoregressive")
# Every autoregressive family over each kind of grid it can model.
GRIDS = {"binary": {"output": "bernoulli"}, "8-bit": {"output": "categorical256"},
         "codes": {"output": "codes", "num_codes": 5}}
AR_CASES = [(name, grid) for name in AUTOREGRESSIVE for grid in GRIDS]


def tiny(name: str, **extra):
    torch.manual_seed(0)
    model = build(name, {**TINY[name], **extra}).eval()
    with torch.no_grad():  # class biases and the like start at zero; make every parameter matter
        for p in model.parameters():
            if p.abs().max() == 0:
                p.normal_()
    return model


def labels(model, n: int):
    return torch.arange(n) % model.num_classes if model.num_classes else None


def random_grids(model: AutoregressiveModel, n: int, seed: int = 0) -> torch.Tensor:
    """Valid inputs for an autoregressive model: (N, 1, H, W) at the grid's own levels."""
    u = torch.rand((n, *model.data_shape), generator=torch.Generator().manual_seed(seed))
    if model.output_kind == "bernoulli":
        return (u < 0.5).float()
    return model.values((u * model.num_logits).long())


def test_every_registered_model_has_a_tiny_config():
    assert set(TINY) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_save_and_load_round_trip(name, tmp_path):
    model = tiny(name, **({"num_classes": 3} if name == "gated_pixelcnn" else {}))
    path = tmp_path / f"{name}.safetensors"
    checkpoints.save(path, model, dataset="mnist", metrics={"x": 1.0})
    loaded = checkpoints.load(path)
    assert type(loaded.model) is type(model) and loaded.model.config == model.config
    original, back = model.state_dict(), loaded.model.state_dict()
    assert original.keys() == back.keys()
    assert all(torch.equal(original[k], back[k]) for k in original)
    assert loaded.metrics == {"x": 1.0}


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if REGISTRY[n].kind in ("latent", "discrete_latent")))
def test_latent_models_decode_their_prior_into_images(name):
    model = tiny(name)
    def prior(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        if model.kind == "discrete_latent":
            return sampling.sample_codes(model, 4, generator=g)        # (4, h, w) codes
        return model.sample_latent(4, g)                                 # (4, D)
    z = prior(0)
    images = model.decode(z, labels(model, 4))
    assert images.shape == (4, *model.data_shape)
    assert images.min() >= 0 and images.max() <= 1
    again = model.decode(prior(0), labels(model, 4))
    assert torch.equal(images, again)                        # deterministic given a generator
    if model.has_encoder:
        codes = model.encode(images, labels(model, 4))
        assert codes.shape == z.shape


def test_classifier_gives_one_logit_per_class():
    model = tiny("classifier")
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, model.num_classes)


@pytest.mark.parametrize("name,grid", AR_CASES)
def test_autoregressive_logits_are_causal(name, grid):
    model = tiny(name, **GRIDS[grid])
    x = random_grids(model, 3)
    base = model.logits(x)
    assert base.shape == (3, model.num_logits, 1, *model.data_shape[1:])
    _, h, w = model.data_shape
    for index in (0, 7, h * w - 1):
        row, col = divmod(index, w)
        changed = x.clone().view(3, -1)
        changed[:, index:] = random_grids(model, 3, seed=1).view(3, -1)[:, index:]
        after = model.logits(changed.view_as(x))
        flat_before, flat_after = base.flatten(3).flatten(2), after.flatten(3).flatten(2)  # (N, K, H * W)
        assert torch.equal(flat_before[:, :, :index + 1], flat_after[:, :, :index + 1])


@pytest.mark.parametrize("name,grid", AR_CASES)
def test_log_prob_is_minus_the_sum_of_per_position_terms(name, grid):
    """The chain rule, each conditional from the model's own stepper (cached where it has one)."""
    model = tiny(name, **GRIDS[grid])
    x = random_grids(model, 3)
    stepper = model.fast_stepper(3) or sampling.NaiveStepper(model)
    target = model.targets(x)[:, 0]                                         # (N, H, W)
    total = torch.zeros(3)
    _, h, w = model.data_shape
    for row in range(h):
        for col in range(w):
            logits = stepper.logits_at(x, row, col)                        # (N, K)
            if model.output_kind == "bernoulli":
                log_p = torch.nn.functional.logsigmoid(torch.where(target[:, row, col] == 1, logits[:, 0], -logits[:, 0]))
            else:
                log_p = logits.log_softmax(1).gather(1, target[:, row, col, None])[:, 0]
            total += log_p
    assert torch.allclose(model.log_prob(x), total, atol=1e-4)
    assert torch.allclose(model.pixel_nll(x).flatten(1).sum(1), -model.log_prob(x))


@pytest.mark.parametrize("name,grid", AR_CASES)
def test_cached_sampling_equals_naive_and_stays_on_the_grid(name, grid):
    model = tiny(name, **GRIDS[grid])
    cached = sampling.sample(model, 3, generator=torch.Generator().manual_seed(5), method="cached")
    naive = sampling.sample(model, 3, generator=torch.Generator().manual_seed(5), method="naive")
    assert torch.equal(cached, naive)
    assert cached.shape == (3, *model.data_shape)
    assert torch.equal(model.values(model.targets(cached)), cached)         # valid levels / codes
    if model.output_kind == "codes":
        assert cached.min() >= 0 and cached.max() <= model.num_logits - 1
    else:
        assert cached.min() >= 0 and cached.max() <= 1


def test_code_grids_reject_values_that_are_no_codes():
    model = tiny("gated_pixelcnn", **GRIDS["codes"])
    with pytest.raises(ValueError, match="integer in 0..4"):
        model.log_prob(torch.full((1, *model.data_shape), 5.0))
    with pytest.raises(ValueError, match="num_codes"):
        build("gated_pixelcnn", {"output": "codes"})
    with pytest.raises(ValueError, match="num_codes"):
        build("pixelcnn", {"num_codes": 4})


@pytest.mark.parametrize("name", AUTOREGRESSIVE)
def test_receptive_field_of_a_code_grid_is_causal(name):
    model = tiny(name, **GRIDS["codes"])
    field = sampling.receptive_field(model, 2, 3)
    flat = field.flatten()
    assert flat[2 * 6 + 3:].eq(0).all() and flat[:2 * 6 + 3].gt(0).any()
