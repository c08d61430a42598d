"""VQ-VAE: straight-through gradients, the EMA codebook against a hand computation, dead-code
restarts, nearest-code quantization, its prior (causal, cached = naive), the report, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from explorer import checkpoints, metrics, sampling
from explorer.models import build
from explorer.models.vqvae import perplexity
from tests.helpers import write_fake_dataset
from train.__main__ import main as train_main
from train.loop import resume_path

TINY = {"channels": 4, "embedding_dim": 3, "num_codes": 6, "prior": {"channels": 6, "layers": 2, "first_kernel": 3}}


def tiny(**extra):
    torch.manual_seed(0)
    return build("vqvae", {**TINY, **extra})


def binary_images(n: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def spread_codebook(model) -> None:
    """Codes at the encoder outputs of a batch, as training would leave them (all in use)."""
    with torch.no_grad():
        flat = model.encoder(binary_images(8)).permute(0, 2, 3, 1).reshape(-1, model.config["embedding_dim"])
        model.codebook.copy_(flat[torch.linspace(0, len(flat) - 1, model.num_codes).long()])


def test_straight_through_copies_the_decoder_gradient_to_the_encoder():
    model = tiny(beta=0.25).eval()      # eval: the codebook stays put while we look
    spread_codebook(model)
    seen = {}

    def keep(key: str, tensor: torch.Tensor) -> None:
        tensor.retain_grad()
        seen[key] = tensor

    model.encoder.register_forward_hook(lambda module, inputs, out: keep("z_e", out))
    model.decoder.register_forward_hook(lambda module, inputs, out: keep("z", inputs[0]))
    x = binary_images(4)
    model.loss(x)["loss"].backward()
    z_e, z = seen["z_e"], seen["z"]
    codes = model.quantize(z_e)
    z_q = model.codebook[codes].permute(0, 3, 1, 2)
    assert torch.allclose(z, z_q, atol=1e-6)                      # forward: the decoder reads the codes' vectors
    # backward: the decoder's gradient, copied, plus the commitment term's 2 beta (z_e - z_q) / N
    expected = z.grad + 2 * 0.25 * (z_e - z_q).detach() / len(x)
    assert torch.allclose(z_e.grad, expected, atol=1e-6)
    assert model.codebook.grad is None and not model.codebook.requires_grad


def test_quantize_picks_the_nearest_code():
    model = tiny()
    z_e = torch.randn(3, 3, 7, 7, generator=torch.Generator().manual_seed(1))
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    nearest = torch.cdist(flat, model.codebook).argmin(1).view(3, 7, 7)
    assert torch.equal(model.quantize(z_e), nearest)


def _hand_case(dead_below: float):
    """K = 3 codes in 2-D, decay 1/2, one 2x2 grid: two cells near code 0, two near code 1."""
    model = tiny(num_codes=3, embedding_dim=2, decay=0.5, dead_below=dead_below)
    model.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    model.ema_count.copy_(torch.tensor([2.0, 2.0, 2.0]))
    model.ema_sum.copy_(torch.tensor([[0.0, 0.0], [2.0, 2.0], [10.0, 10.0]]))
    cells = torch.tensor([[0.2, 0.0], [0.0, 0.2], [1.4, 1.0], [0.9, 1.2]])   # raster order
    z_e = cells.t().reshape(1, 2, 2, 2)                                       # (N, D, h, w)
    codes = model.quantize(z_e)
    assert codes.flatten().tolist() == [0, 0, 1, 1]
    return model, z_e, codes, cells


def test_ema_codebook_update_matches_the_hand_computation():
    model, z_e, codes, _ = _hand_case(dead_below=0.5)
    model.update_codebook(z_e, codes)
    # N = 1/2 [2, 2, 2] + 1/2 [2, 2, 0]
    assert torch.allclose(model.ema_count, torch.tensor([2.0, 2.0, 1.0]))
    # m_0 = 1/2 [0, 0] + 1/2 [0.2, 0.2];  m_1 = 1/2 [2, 2] + 1/2 [2.3, 2.2];  m_2 = 1/2 [10, 10]
    assert torch.allclose(model.ema_sum, torch.tensor([[0.1, 0.1], [2.15, 2.1], [5.0, 5.0]]))
    # e = m / N
    assert torch.allclose(model.codebook, torch.tensor([[0.05, 0.05], [1.075, 1.05], [5.0, 5.0]]))


def test_a_dead_code_restarts_at_an_encoder_output():
    model, z_e, codes, cells = _hand_case(dead_below=1.5)   # code 2: N = 1 < 1.5, dead
    model.update_codebook(z_e, codes, generator=torch.Generator().manual_seed(0))
    restarted = model.codebook[2]
    assert any(torch.equal(restarted, c) for c in cells)
    assert model.ema_count[2] == 1 and torch.equal(model.ema_sum[2], restarted)
    assert torch.allclose(model.codebook[:2], torch.tensor([[0.05, 0.05], [1.075, 1.05]]))  # live codes as before
    again, z_e2, codes2, _ = _hand_case(dead_below=1.5)
    again.update_codebook(z_e2, codes2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.codebook, model.codebook)                                     # deterministic


def test_training_steps_move_the_codebook_and_evaluation_does_not():
    model = tiny()
    before = model.codebook.clone()
    model.eval()
    model.loss(binary_images(4))
    assert torch.equal(model.codebook, before)
    model.train()
    losses = model.loss(binary_images(4))
    assert not torch.equal(model.codebook, before)
    assert model.ema_count.sum() > 0
    assert set(losses) == {"loss", "recon", "commitment", "prior_nll", "perplexity"}
    assert 1 <= float(losses["perplexity"]) <= model.num_codes


def test_perplexity_counts_codes_in_use():
    assert perplexity(torch.arange(8), 8) == pytest.approx(8)
    assert perplexity(torch.zeros(10, dtype=torch.long), 8) == pytest.approx(1)
    assert perplexity(torch.tensor([0, 0, 1, 1]), 8) == pytest.approx(2)


def test_codes_decode_to_images_and_samples_come_from_the_prior():
    model = tiny().eval()
    codes = model.encode(binary_images(5))
    assert codes.shape == (5, 7, 7) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < model.num_codes
    images = model.decode(codes)
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    cached = sampling.sample_codes(model, 3, generator=torch.Generator().manual_seed(2), method="cached")
    naive = sampling.sample_codes(model, 3, generator=torch.Generator().manual_seed(2), method="naive")
    assert torch.equal(cached, naive) and cached.shape == (3, 7, 7)


def test_the_prior_is_causal_over_the_code_grid():
    model = tiny().eval()
    for row, col in ((0, 0), (3, 4), (6, 6)):
        field = sampling.receptive_field(model.prior, row, col).flatten()
        assert field[row * 7 + col:].eq(0).all()
        if row or col:
            assert field[:row * 7 + col].gt(0).any()


def test_codes_report_adds_the_prior_to_the_reconstruction():
    model = tiny().eval()
    x = binary_images(12)
    report = metrics.codes_report(model, x, binary=True, batch_size=5)
    codes = model.encode(x)
    prior_nats = float(model.prior_nll(codes).mean().detach())
    assert report["test_prior_bits"] == pytest.approx(prior_nats / math.log(2), rel=1e-5)
    assert report["test_nll_bound"] == pytest.approx(report["test_recon_nll"] + prior_nats, rel=1e-5)
    assert report["codes_used"] == codes.unique().numel()
    assert 1 <= report["codebook_perplexity"] <= report["codes_used"]
    assert report["headline"] == "test_nll_bound" and set(report["how"]) >= {"test_nll_bound", "codebook_perplexity"}


def test_model_samples_are_decoded_prior_samples():
    model = tiny().eval()
    images = metrics.model_samples(model, 3, seed=4)
    with torch.no_grad():   # as the samples are decoded (the decoder's last layer picks its kernel by it)
        expected = model.decode(sampling.sample_codes(model, 3, generator=torch.Generator().manual_seed(4)))
    assert torch.equal(images, expected)


def test_cli_trains_a_tiny_vqvae(tmp_path):
    data = write_fake_dataset(tmp_path / "data", n_train=64, n_test=16)
    out = tmp_path / "vq.safetensors"
    assert train_main(["vqvae", "--set", "channels=4", "embedding_dim=3", "num_codes=6",
                       'prior={"channels": 6, "layers": 2, "first_kernel": 3}', "--epochs", "1",
                       "--out", str(out), "--data-dir", str(data), "--state-dir", str(tmp_path / "runs"),
                       "--batch-size", "32", "--no-progress"]) == 0
    ckpt = checkpoints.load(out)
    assert ckpt.model.name == "vqvae" and ckpt.model.ema_count.sum() > 0
    assert {"test_recon_nll", "test_prior_bits", "test_nll_bound", "codebook_perplexity"} <= set(ckpt.metrics)
    assert ckpt.training["channels_last"] is True


def test_code_stream_draws_codes_one_at_a_time_and_redecodes():
    model = tiny().eval()
    steps = list(sampling.code_stream(model, 2, generator=torch.Generator().manual_seed(3)))
    assert len(steps) == 49
    final = sampling.sample_codes(model, 2, generator=torch.Generator().manual_seed(3))
    for i in (0, 20, 48):
        codes = steps[i].codes.flatten(1)
        assert codes[:, :i + 1].ge(0).all() and codes[:, i + 1:].eq(-1).all()   # not drawn yet: -1
        assert torch.equal(codes[:, :i + 1], final.flatten(1)[:, :i + 1])
        filled = torch.where(steps[i].codes >= 0, steps[i].codes, model.blank_code())
        with torch.no_grad():
            assert torch.equal(steps[i].image, model.decode(filled))
    assert torch.equal(steps[-1].codes, final)
    with pytest.raises(ValueError, match="temperature"):
        sampling.code_stream(model, 1, temperature=0)


def test_a_class_conditional_prior_takes_labels():
    model = tiny(num_classes=3).eval()
    assert model.prior.num_classes == 3
    torch.nn.init.normal_(model.prior.layers[0].class_bias.weight)
    codes = model.encode(binary_images(2))
    assert not torch.allclose(model.prior_nll(codes, torch.tensor([0, 0])), model.prior_nll(codes, torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="class-conditional"):
        model.prior_nll(codes)
    drawn = sampling.sample_codes(model, 2, y=2, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (2, 7, 7)


def test_the_second_stage_fits_the_prior_on_frozen_codes(tmp_path):
    data = write_fake_dataset(tmp_path / "data", n_train=64, n_test=16)
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    common = ["--set", "channels=4", "embedding_dim=3", "num_codes=6",
              'prior={"channels": 6, "layers": 2, "first_kernel": 3}', "--epochs", "1", "--data-dir", str(data),
              "--state-dir", str(tmp_path / "runs"), "--batch-size", "32", "--no-progress"]
    assert train_main(["vqvae", *common, "--out", str(first)]) == 0
    common[common.index("--set") + 1:common.index("--set") + 1] = ["fit=prior"]
    assert train_main(["vqvae", *common, "--out", str(second), "--init", str(first)]) == 0
    a, b = checkpoints.load(first), checkpoints.load(second)
    for key, value in a.model.state_dict().items():
        if key.startswith("prior."):
            continue
        assert torch.equal(value, b.model.state_dict()[key]), key       # encoder, codebook, decoder kept
    assert any(not torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items()
               if k.startswith("prior."))                                 # the prior learnt
    assert b.training["started_from"]["checkpoint"] == first.name
    assert b.training["started_from"]["command"] == a.training["command"]
    assert b.metrics["test_recon_nll"] == pytest.approx(a.metrics["test_recon_nll"])


def test_init_refuses_another_model(tmp_path):
    path = tmp_path / "vae.safetensors"
    checkpoints.save(path, build("vae", {"hidden": 16, "channels": 4}), dataset="mnist")
    with pytest.raises(SystemExit, match="holds a vae"):
        train_main(["vqvae", "--epochs", "1", "--out", str(tmp_path / "x.safetensors"), "--init", str(path)])


def test_init_starts_a_class_conditional_prior_from_an_unconditional_model(tmp_path):
    data = write_fake_dataset(tmp_path / "data", n_train=64, n_test=16)
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    common = ["--epochs", "1", "--data-dir", str(data), "--state-dir", str(tmp_path / "runs"), "--batch-size", "32",
              "--no-progress"]
    tiny_set = ["channels=4", "embedding_dim=3", "num_codes=6", 'prior={"channels": 6, "layers": 2, "first_kernel": 3}']
    assert train_main(["vqvae", "--set", *tiny_set, "--out", str(first), *common]) == 0
    assert train_main(["vqvae", "--set", *tiny_set, "fit=prior", "num_classes=10", "--out", str(second),
                       "--init", str(first), *common]) == 0
    b = checkpoints.load(second)
    assert b.model.prior.num_classes == 10
    assert b.training["started_from"]["fresh"] == ["prior.layers.0.class_bias.weight",
                                                   "prior.layers.1.class_bias.weight"]


@pytest.mark.parametrize("older_state", [False, True])
def test_a_resumed_warm_start_keeps_the_start_it_first_read(tmp_path, older_state):
    """Resuming must not re-read --init: that file may have been replaced since (here by the
    run's own output, as when a continued model is shipped under the name it started from).
    A state written before states kept the start falls back on the run's last checkpoint."""
    data = write_fake_dataset(tmp_path / "data", n_train=64, n_test=16)
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    tiny_set = ["channels=4", "embedding_dim=3", "num_codes=6", 'prior={"channels": 6, "layers": 2, "first_kernel": 3}']
    common = ["--data-dir", str(data), "--state-dir", str(tmp_path / "runs"), "--batch-size", "32", "--no-progress"]
    assert train_main(["vqvae", "--set", *tiny_set, "--epochs", "1", "--out", str(first), *common]) == 0
    original = checkpoints.load(first).training
    continued = ["vqvae", "--set", *tiny_set, "fit=prior", "--init", str(first), "--out", str(second), "--resume", *common]
    assert train_main([*continued, "--epochs", "1"]) == 0
    first.write_bytes(second.read_bytes())                  # the start is replaced by the continued model
    if older_state:
        state = resume_path(second, tmp_path / "runs")
        tensors, meta = checkpoints.read_tensors(state)
        run = json.loads(meta["run"])
        del run["started_from"]
        checkpoints.save_tensors(state, tensors, {"run": run})
    assert train_main([*continued, "--epochs", "2"]) == 0
    resumed = checkpoints.load(second).training
    assert resumed["epochs"] == 2
    assert resumed["started_from"]["command"] == original["command"]
    assert resumed["started_from"]["epochs"] == original["epochs"] == 1
    assert "started_from" not in (resumed["started_from"] or {})
