"""explorer.latent: grids, interpolation paths and prior densities, on tiny random models."""

from __future__ import annotations

import math

import pytest
import torch

from explorer import latent
from explorer.models import build

from tests.helpers import TINY


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return build("vae", {**TINY, "latent_dim": 4}).eval()


@pytest.fixture(scope="module")
def ae():
    torch.manual_seed(1)
    model = build("ae", {**TINY, "latent_dim": 4}).eval()
    model.code_mean.copy_(torch.tensor([1.0, -2.0, 0.5, 0.0]))
    model.code_std.copy_(torch.tensor([2.0, 0.5, 1.0, 3.0]))
    return model


@pytest.fixture(scope="module")
def cvae():
    torch.manual_seed(2)
    return build("cvae", {**TINY, "latent_dim": 3}).eval()


def test_axis_values_are_symmetric_and_evenly_spaced():
    t = latent.axis_values(2.0, 5)
    assert torch.allclose(t, torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    with pytest.raises(ValueError):
        latent.axis_values(0.0, 5)
    with pytest.raises(ValueError):
        latent.axis_values(1.0, 0)


def test_grid_codes_set_two_dims_and_keep_the_rest():
    base = torch.tensor([5.0, 6.0, 7.0, 8.0])
    xs, ys = torch.tensor([-1.0, 0.0, 1.0]), torch.tensor([2.0, -2.0])
    codes = latent.grid_codes(base, 1, 3, xs, ys)
    assert codes.shape == (2, 3, 4)
    assert torch.equal(codes[:, :, 1], xs.expand(2, 3))
    assert torch.equal(codes[:, :, 3], ys.reshape(2, 1).expand(2, 3))
    assert torch.all(codes[:, :, 0] == 5.0) and torch.all(codes[:, :, 2] == 7.0)
    with pytest.raises(ValueError, match="different"):
        latent.grid_codes(base, 2, 2, xs, ys)


def test_latent_grid_decodes_its_codes_with_the_base_fixed(vae):
    base = latent.seeded_code(vae, 7)
    g = latent.latent_grid(vae, base, 0, 2, span=2.0, size=5)
    assert g.images.shape == (5, 5, 1, 28, 28)
    assert g.images.min() >= 0 and g.images.max() <= 1
    assert torch.allclose(g.x_values, torch.linspace(-2, 2, 5))
    assert torch.allclose(g.y_values, torch.linspace(2, -2, 5))  # top row = largest y
    assert torch.equal(g.codes[:, :, 1], base[1].expand(5, 5))
    assert torch.equal(g.codes[:, :, 3], base[3].expand(5, 5))
    expected = vae.decode(g.codes.reshape(-1, 4)).reshape(5, 5, 1, 28, 28)
    assert torch.allclose(g.images, expected, atol=1e-6)
    other = latent.latent_grid(vae, base, 1, 3, span=2.0, size=5)
    assert not torch.allclose(g.images, other.images)


def test_latent_grid_is_in_units_of_the_models_code_spread(ae):
    g = latent.latent_grid(ae, latent.prior_mean(ae), 0, 1, span=2.0, size=3)
    assert torch.allclose(g.x_values, torch.tensor([1.0 - 4.0, 1.0, 1.0 + 4.0]))
    assert torch.allclose(g.y_values, torch.tensor([-2.0 + 1.0, -2.0, -2.0 - 1.0]))
    assert torch.allclose(g.codes[1, 1], ae.code_mean)  # centre of an odd grid = the mean


def test_latent_grid_rejects_bad_dims(vae):
    base = latent.prior_mean(vae)
    with pytest.raises(ValueError, match="0..3"):
        latent.latent_grid(vae, base, 0, 4, 2.0, 3)
    with pytest.raises(ValueError, match="different"):
        latent.latent_grid(vae, base, 1, 1, 2.0, 3)
    with pytest.raises(ValueError, match="shape"):
        latent.latent_grid(vae, torch.zeros(3), 0, 1, 2.0, 3)


def test_seeded_codes_are_reproducible(vae):
    assert torch.equal(latent.seeded_code(vae, 3), latent.seeded_code(vae, 3))
    assert not torch.equal(latent.seeded_code(vae, 3), latent.seeded_code(vae, 4))
    assert torch.equal(latent.standard_draw(6, 1), latent.standard_draw(6, 1))


def test_standardize_round_trip(ae):
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(latent.unstandardize(ae, latent.standardize(ae, z)), z, atol=1e-6)
    assert torch.allclose(latent.standardize(ae, ae.code_mean), torch.zeros(4))


def test_lerp_endpoints_and_midpoint():
    z0, z1 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    path = latent.lerp(z0, z1, torch.linspace(0, 1, 5))
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.allclose(path[2], torch.tensor([2.0, 0.0]))
    assert torch.allclose(path[1:] - path[:-1], (z1 - z0).expand(4, 2) / 4)


def test_slerp_keeps_the_norm_between_orthogonal_unit_vectors():
    z0, z1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    path = latent.slerp(z0, z1, torch.linspace(0, 1, 9))
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.allclose(path.norm(dim=1), torch.ones(9), atol=1e-6)
    assert torch.allclose(path[4], torch.tensor([math.sqrt(0.5), math.sqrt(0.5), 0.0]), atol=1e-6)
    # Angles advance evenly.
    angles = torch.atan2(path[:, 1], path[:, 0])
    assert torch.allclose(angles, torch.linspace(0, math.pi / 2, 9), atol=1e-5)


def test_slerp_blends_lengths_turns_about_a_centre_and_falls_back_to_lerp():
    c = torch.tensor([10.0, 10.0])
    z0, z1 = c + torch.tensor([2.0, 0.0]), c + torch.tensor([0.0, 4.0])
    path = latent.slerp(z0, z1, torch.tensor([0.0, 0.5, 1.0]), center=c)
    assert torch.allclose((path[1] - c).norm(), torch.tensor(3.0), atol=1e-5)
    same = latent.slerp(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]), torch.tensor([0.5]))
    assert torch.allclose(same, torch.tensor([[1.5, 1.5]]))


def test_interpolate_checks_its_arguments(vae):
    z0, z1 = latent.seeded_code(vae, 0), latent.seeded_code(vae, 1)
    assert latent.interpolate(vae, z0, z1, 6, "lerp").shape == (6, 4)
    assert torch.equal(latent.interpolate(vae, z0, z1, 6, "slerp")[-1], z1)
    with pytest.raises(ValueError, match="at least 2"):
        latent.interpolate(vae, z0, z1, 1)
    with pytest.raises(ValueError, match="unknown"):
        latent.interpolate(vae, z0, z1, 4, "cubic")


def test_lerp_cuts_through_the_high_density_middle_but_slerp_stays_typical():
    torch.manual_seed(0)
    model = build("vae", {**TINY, "latent_dim": 64}).eval()
    z0, z1 = latent.seeded_code(model, 0), latent.seeded_code(model, 1)
    curves = latent.path_log_density(model, z0, z1, 11)
    typical = latent.typical_log_density(model)
    assert curves["lerp"].shape == curves["slerp"].shape == (11,)
    assert curves["lerp"][0] == pytest.approx(curves["slerp"][0])
    # The straight line's middle is far denser than any typical sample; slerp stays near it.
    assert curves["lerp"][5] - typical > 10.0
    assert abs(curves["slerp"][5] - typical) < abs(curves["lerp"][5] - typical) / 3


def test_typical_log_density_matches_the_gaussian_entropy(vae):
    expected = -0.5 * vae.latent_dim * (1.0 + math.log(2 * math.pi))
    assert latent.typical_log_density(vae, n=20000) == pytest.approx(expected, abs=0.1)


def test_normal_quantiles_are_symmetric_and_increasing():
    q = latent.normal_quantiles(7)
    assert torch.allclose(q, -q.flip(0), atol=1e-6)
    assert torch.all(q[1:] > q[:-1])
    assert q[-1] == pytest.approx(1.6449, abs=1e-3)  # the 95% quantile


def test_manifold_grid_covers_the_prior_by_quantiles(vae):
    g = latent.manifold_grid(vae, 6, dims=(1, 3))
    assert g.images.shape == (6, 6, 1, 28, 28)
    assert torch.allclose(g.x_values, latent.normal_quantiles(6))
    assert torch.all(g.codes[:, :, 0] == 0) and torch.all(g.codes[:, :, 2] == 0)


def test_conditional_models_need_a_valid_class(cvae):
    z = latent.prior_mean(cvae).unsqueeze(0)
    with pytest.raises(ValueError, match="class"):
        latent.decode(cvae, z)
    with pytest.raises(ValueError, match="0..9"):
        latent.decode(cvae, z, 10)
    three, seven = latent.decode(cvae, z, 3), latent.decode(cvae, z, 7)
    assert three.shape == (1, 1, 28, 28) and not torch.allclose(three, seven)
    code = latent.encode(cvae, three, 3)
    assert code.shape == (1, 3) and not code.requires_grad
