"""`--ema`: the weight average against a hand computation, what the loop saves and evaluates,
an exact resume, and switching averaging on when resuming a run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer import checkpoints, data
from train import families
from train.averaging import WeightAverage
from train.loop import RunConfig, fit, resume_path
from tests.helpers import write_fake_dataset


def test_the_average_matches_a_hand_computation():
    model = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
    average = WeightAverage(model, decay=0.9)
    w = [torch.tensor([[1.0, 2.0]])]
    for step, new in enumerate([[[3.0, -2.0]], [[0.0, 10.0]]], start=1):
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor(new))
        model[1].num_batches_tracked.fill_(step)
        w.append(torch.tensor(new))
        average.update(model)
    # a2 = 0.9 a1 + 0.1 w2 = 0.9 (0.9 w0 + 0.1 w1) + 0.1 w2
    expected = 0.81 * w[0] + 0.09 * w[1] + 0.1 * w[2]
    assert torch.allclose(average.state["0.weight"], expected, atol=1e-6)
    assert average.state["1.num_batches_tracked"].item() == 2  # integers are copied, not averaged
    live = model[0].weight.detach().clone()
    with average.applied(model):
        assert torch.equal(model[0].weight, average.state["0.weight"])
    assert torch.equal(model[0].weight, live)  # the live weights come back


def test_a_bad_decay_or_a_stored_average_of_another_model_is_refused():
    model = nn.Linear(2, 1)
    for decay in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            WeightAverage(model, decay)
    with pytest.raises(ValueError, match="does not match"):
        WeightAverage(model, 0.9, nn.Linear(3, 1).state_dict())


@pytest.fixture
def small_data(tmp_path):
    return write_fake_dataset(tmp_path / "data", n_train=128, n_test=32)


def _config(folder, data, epochs, **kw) -> RunConfig:
    return RunConfig(model="vae", dataset="mnist", epochs=epochs, out=folder / "vae.safetensors",
                     data_dir=str(data), batch_size=32, progress=False, state_dir=folder,
                     model_config={"hidden": 16, "channels": 4, "latent_dim": 2}, **kw)


def _live(folder) -> dict[str, torch.Tensor]:
    tensors, _ = checkpoints.read_tensors(resume_path(folder / "vae.safetensors", folder))
    return {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}


def test_the_checkpoint_holds_and_evaluates_the_average_and_the_state_the_live_weights(small_data, tmp_path):
    torch.set_num_threads(1)
    returned = fit(_config(tmp_path / "ema", small_data, 2, ema=0.9))
    fit(_config(tmp_path / "plain", small_data, 2))
    saved = checkpoints.load(tmp_path / "ema" / "vae.safetensors")
    live = _live(tmp_path / "ema")
    plain = checkpoints.load(tmp_path / "plain" / "vae.safetensors")
    # The live weights are those of the same run without averaging; the saved ones differ.
    for key, value in plain.model.state_dict().items():
        assert torch.equal(live[key], value), key
    assert not torch.equal(saved.model.state_dict()["dec_fc.0.weight"], live["dec_fc.0.weight"])
    for key, value in saved.model.state_dict().items():
        assert torch.equal(returned.state_dict()[key], value), key
    # The metrics are those of the saved (averaged) weights.
    again = families.RECIPES["vae"].evaluate(saved.model.eval(), *_test_set(small_data), True)
    assert again["test_neg_elbo"] == pytest.approx(saved.metrics["test_neg_elbo"], rel=1e-6)
    assert again["test_neg_elbo"] != pytest.approx(plain.metrics["test_neg_elbo"], rel=1e-6)
    assert saved.training["ema"] == {"decay": 0.9, "from_epoch": 1} and "commands" not in saved.training


def _test_set(folder):
    test = data.load_split("mnist", "test", str(folder))
    return data.fixed_binarized_test(test.images), test.labels


def test_an_averaged_run_resumes_exactly(small_data, tmp_path):
    torch.set_num_threads(1)
    fit(_config(tmp_path / "split", small_data, 1, ema=0.9))
    fit(_config(tmp_path / "split", small_data, 3, ema=0.9, resume=True))
    fit(_config(tmp_path / "straight", small_data, 3, ema=0.9))
    resumed = checkpoints.load(tmp_path / "split" / "vae.safetensors")
    straight = checkpoints.load(tmp_path / "straight" / "vae.safetensors")
    assert resumed.history["test_neg_elbo"] == straight.history["test_neg_elbo"]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_averaging_switched_on_when_resuming_starts_from_the_live_weights(small_data, tmp_path, capsys):
    torch.set_num_threads(1)
    folder = tmp_path / "run"
    first = _config(folder, small_data, 2, command="python -m train vae --epochs 2")
    fit(first)
    after_two = _live(folder)
    then = _config(folder, small_data, 3, ema=0.5, resume=True, command="python -m train vae --epochs 3 --ema 0.5")
    fit(then)
    assert "averaging starts from the weights after epoch 2" in capsys.readouterr().out
    saved, live = checkpoints.load(folder / "vae.safetensors"), _live(folder)
    assert saved.history["epoch"] == [1, 2, 3]
    assert saved.training["ema"] == {"decay": 0.5, "from_epoch": 3}
    assert saved.training["commands"] == [{"from_epoch": 1, "command": first.command},
                                          {"from_epoch": 3, "command": then.command}]
    # Epoch 3's average began at the epoch-2 weights and followed epoch 3's steps: it is neither.
    key = "dec_fc.0.weight"
    assert not torch.equal(saved.model.state_dict()[key], live[key])
    assert not torch.equal(saved.model.state_dict()[key], after_two[key])
