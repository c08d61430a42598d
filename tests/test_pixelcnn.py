"""PixelCNN and gated PixelCNN: causal masks, no blind spot, exact likelihoods, checkpoints, CLI."""

from __future__ import annotations

import itertools

import pytest
import torch

from explorer import checkpoints
from explorer.models import build
from explorer.models.pixelcnn import horizontal_mask, pixelcnn_mask
from tests.helpers import (PIXELCNN_VARIANTS, TINY_PIXELCNN, labels, random_images, tiny_pixelcnn,
                           write_fake_dataset)
from train.__main__ import main as train_main


def input_gradient(model, row: int, col: int, probes: int = 8) -> torch.Tensor:
    """|d logits(row, col) / d x| summed over random images: (H, W).

    Several probes, because ReLUs can switch a whole path off for any one image.
    """
    x = random_images(model, probes, seed=row * 100 + col).requires_grad_(True)
    out = model.logits(x, labels(model, probes))[:, :, :, row, col]
    (grad,) = torch.autograd.grad(out.pow(2).sum() + out.sum(), x)
    return grad.abs().sum((0, 1))


def test_masks_are_the_drawn_ones():
    assert torch.equal(pixelcnn_mask(5, "A"), torch.tensor([
        [1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0]], dtype=torch.float))
    assert torch.equal(pixelcnn_mask(3, "B"), torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.float))
    assert torch.equal(horizontal_mask(5, "A"), torch.tensor([[1.0, 1.0, 0.0]]))
    assert torch.equal(horizontal_mask(5, "B"), torch.tensor([[1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError):
        pixelcnn_mask(4, "A")


def test_masks_are_applied_in_forward_not_written_into_weights():
    model = tiny_pixelcnn("pixelcnn")
    before = model.first.weight.detach().clone()
    x = random_images(model, 2)
    model.loss(x)["loss"].backward()
    # The stored weights keep their (random) values under the mask; only the product is masked.
    assert torch.equal(model.first.weight.detach(), before)
    assert (before * (1 - model.first.mask)).abs().sum() > 0
    # ...and masked-out weights get no gradient.
    assert torch.equal(model.first.weight.grad * (1 - model.first.mask), torch.zeros_like(before))


@pytest.mark.parametrize("key", list(PIXELCNN_VARIANTS))
def test_output_at_a_pixel_ignores_that_pixel_and_every_later_one(key):
    model = tiny_pixelcnn(key)
    _, height, width = model.data_shape
    for row, col in itertools.product(range(height), range(width)):
        grad = input_gradient(model, row, col, probes=8).flatten()
        index = row * width + col
        assert torch.equal(grad[index:], torch.zeros_like(grad[index:])), (row, col)
        if col > 0:  # and it does see its neighbours to the left and above
            assert grad[index - 1] > 0, (row, col)
        if row > 0:
            assert grad[index - width] > 0, (row, col)


def test_gated_model_sees_the_whole_rectangle_above_no_blind_spot():
    model = tiny_pixelcnn("gated")
    row, col = 6, 4
    seen = input_gradient(model, row, col) > 0
    # 3 layers, first kernel 5, then 3: reach 2 + 1 + 1 = 4 columns either side and 5 rows up.
    expected = torch.zeros_like(seen)
    expected[row - 5:row, col - 4:col + 5] = True
    expected[row, col - 4:col] = True
    assert torch.equal(seen, expected)


def test_gated_dropout_acts_in_training_only_and_leaves_causality():
    with_dropout, without = tiny_pixelcnn("gated", dropout=0.5), tiny_pixelcnn("gated")
    with_dropout.load_state_dict(without.state_dict())          # the same weights
    x = random_images(without, 4)
    # Evaluation (and so sampling, which runs in eval mode) uses every unit: the same model.
    assert torch.equal(with_dropout.logits(x), without.logits(x))
    with_dropout.train()
    torch.manual_seed(1)
    first = with_dropout.logits(x)
    assert not torch.equal(first, with_dropout.logits(x))       # a fresh mask per call
    assert not torch.equal(first, without.logits(x))
    # Dropout drops units, it does not let a pixel see later ones.
    row, col, width = 6, 4, 10
    grad = input_gradient(with_dropout, row, col).flatten()
    assert torch.equal(grad[row * width + col:], torch.zeros_like(grad[row * width + col:]))


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_gated_dropout_out_of_range_is_refused(p):
    with pytest.raises(ValueError, match="dropout must be in"):
        tiny_pixelcnn("gated", dropout=p)


def test_plain_pixelcnn_has_the_blind_spot_up_right():
    pixelcnn, gated = tiny_pixelcnn("pixelcnn"), tiny_pixelcnn("gated")
    row, col = 6, 4
    seen_plain = input_gradient(pixelcnn, row, col) > 0
    seen_gated = input_gradient(gated, row, col) > 0
    # The first 5x5 layer reaches 2 columns right; stacked 3x3 B layers never reach further
    # right in the row above, so (row - 1, col + 3) is invisible to PixelCNN, seen by gated.
    assert seen_plain[row - 1, col + 2] and not seen_plain[row - 1, col + 3]
    assert seen_gated[row - 1, col + 3]
    up_right = (slice(row - 3, row), slice(col + 1, col + 5))
    assert seen_gated[up_right].all() and not seen_plain[up_right].all()


@pytest.mark.parametrize("key", list(PIXELCNN_VARIANTS))
def test_log_prob_is_minus_the_sum_of_the_pixel_nll_map(key):
    model = tiny_pixelcnn(key)
    x = random_images(model, 4)
    nll_map = model.pixel_nll(x, labels(model, 4))
    assert nll_map.shape == (4, 1, 10, 10) and (nll_map >= 0).all()
    log_p = model.log_prob(x, labels(model, 4))
    assert log_p.shape == (4,)
    torch.testing.assert_close(log_p, -nll_map.sum((1, 2, 3)))
    # and the map holds each pixel's own conditional, from the parallel logits
    logits = model.logits(x, labels(model, 4))[:, :, 0, 3, 5]      # (N, K)
    if model.output_kind == "bernoulli":
        p1 = torch.sigmoid(logits[:, 0])
        expected = -torch.log(torch.where(x[:, 0, 3, 5] == 1, p1, 1 - p1))
    else:
        expected = -torch.log_softmax(logits, 1).gather(1, torch.round(x[:, :, 3, 5] * 255).long())[:, 0]
    torch.testing.assert_close(nll_map[:, 0, 3, 5], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn"])
def test_probabilities_of_all_binary_images_sum_to_one(name):
    torch.manual_seed(0)
    model = build(name, {**TINY_PIXELCNN, "data_shape": [1, 3, 3]}).eval()
    every_image = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9))).view(-1, 1, 3, 3)  # 512
    with torch.no_grad():
        total = model.log_prob(every_image).double().exp().sum()
    assert abs(float(total) - 1.0) < 1e-4


def test_as_input_gives_the_values_the_model_takes():
    grey = torch.tensor([[[[0.0, 0.49, 0.5, 0.2 + 0.4 / 255]]]])
    binary = tiny_pixelcnn("pixelcnn", data_shape=[1, 1, 4])
    assert binary.as_input(grey, threshold=True).tolist() == [[[[0.0, 0.0, 1.0, 0.0]]]]
    with pytest.raises(ValueError, match="binary images"):
        binary.as_input(grey)                       # a data set must be binarized, not thresholded
    levels = tiny_pixelcnn("pixelcnn-256", data_shape=[1, 1, 4]).as_input(grey, threshold=True)
    assert torch.equal(levels * 255, torch.tensor([[[[0.0, 125.0, 128.0, 51.0]]]]))   # the nearest grey level


def test_bad_pixel_values_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="binary images"):
        tiny_pixelcnn("pixelcnn").log_prob(torch.full((1, 1, 10, 10), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tiny_pixelcnn("pixelcnn-256").log_prob(torch.full((1, 1, 10, 10), 2.0))
    with pytest.raises(ValueError, match="class-conditional"):
        tiny_pixelcnn("gated-256-classes").log_prob(torch.zeros(1, 1, 10, 10))
    with pytest.raises(ValueError, match="output must be"):
        build("pixelcnn", {"output": "gaussian"})


@pytest.mark.parametrize("key", list(PIXELCNN_VARIANTS))
def test_checkpoint_round_trip_gives_bit_identical_log_prob(key, tmp_path):
    model = tiny_pixelcnn(key)
    x, y = random_images(model, 3), labels(model, 3)
    path = tmp_path / "m.safetensors"
    checkpoints.save(path, model, dataset="mnist", metrics={"test_nll": 1.0, "headline": "test_nll"})
    loaded = checkpoints.load(path)
    assert loaded.model.name == model.name and loaded.model.config == model.config
    assert loaded.model.kind == "autoregressive"
    with torch.no_grad():
        assert torch.equal(loaded.model.log_prob(x, y), model.log_prob(x, y))


def test_train_cli_writes_a_loadable_checkpoint_with_its_nll(fake_data, tmp_path):
    out = tmp_path / "mnist-pixelcnn.safetensors"
    rc = train_main(["pixelcnn", "--dataset", "mnist", "--epochs", "2", "--out", str(out), "--data-dir",
                     str(fake_data), "--set", "channels=4", "layers=1", "--batch-size", "64", "--no-progress",
                     "--state-dir", str(out.parent)])
    assert rc == 0
    ckpt = checkpoints.load(out)
    assert ckpt.model.name == "pixelcnn" and ckpt.model.config["channels"] == 4
    assert ckpt.metrics["headline"] == "test_nll" and "nats per image" in ckpt.metrics["how"]["test_nll"]
    assert len(ckpt.history["test_nll"]) == 2
    # the metric is the model's exact NLL of the fixed binarized fake test set (not just a number)
    from explorer import data
    test = data.fixed_binarized_test(data.load_split("mnist", "test", fake_data).images)
    with torch.no_grad():
        nll = float(-ckpt.model.log_prob(test).double().mean())
    assert abs(ckpt.metrics["test_nll"] - nll) < 1e-3 * nll
    # it learnt something from the fake data: better than the initial model
    assert ckpt.history["train_loss"][1] < ckpt.history["train_loss"][0]


def test_train_cli_on_grey_data_256_levels_and_a_clear_error_for_binary_models(tmp_path, capsys):
    data_dir = write_fake_dataset(tmp_path / "data", "fashion-mnist", n_train=64, n_test=16)
    out = tmp_path / "fashion-gated.safetensors"
    common = ["--dataset", "fashion-mnist", "--epochs", "1", "--out", str(out), "--data-dir", str(data_dir),
              "--no-progress", "--state-dir", str(out.parent)]
    assert train_main(["gated_pixelcnn", *common, "--set", "channels=4", "layers=1"]) == 2
    assert "output=categorical256" in capsys.readouterr().err
    assert not out.exists()
    assert train_main(["gated_pixelcnn", *common, "--set", "channels=4", "layers=1", "output=categorical256",
                       "num_classes=10"]) == 0
    ckpt = checkpoints.load(out)
    assert ckpt.metrics["headline"] == "test_bits_per_dim"
    assert 0 < ckpt.metrics["test_bits_per_dim"] < 9   # 8 bits would be a uniform guess
