"""Training precision: every family steps in fp32 and bf16, evaluation stays float32, bf16
resumes exactly, and a kill between the two per-epoch writes is redone on --resume."""

from __future__ import annotations

import pytest
import torch

from explorer import checkpoints
from explorer.models import build
from train import families, precision
from train.loop import RunConfig, fit, resume_path
from tests.helpers import write_fake_dataset

# One tiny config per training recipe: every family the loop can train.
TINY_CONFIGS = {
    "ae": {"hidden": 16, "channels": 4, "latent_dim": 2},
    "vae": {"hidden": 16, "channels": 4, "latent_dim": 2},
    "cvae": {"hidden": 16, "channels": 4, "latent_dim": 2},
    "dcgan": {"latent_dim": 8, "channels": 4},
    "wgan_gp": {"latent_dim": 8, "channels": 4, "n_critic": 1},
    "gan": {"latent_dim": 8, "hidden": 16},
    "classifier": {"channels": 4, "features": 16},
    "pixelcnn": {"channels": 4, "layers": 1, "first_kernel": 3},
    "gated_pixelcnn": {"channels": 4, "layers": 2, "first_kernel": 3, "num_classes": 10},
    "row_lstm": {"channels": 4, "layers": 1, "first_kernel": 3},
    "diagonal_bilstm": {"channels": 4, "layers": 1, "first_kernel": 3},
    "vqvae": {"channels": 4, "embedding_dim": 3, "num_codes": 6, "prior": {"channels": 6, "layers": 2, "first_kernel": 3}},
}


def test_every_recipe_has_a_tiny_config():
    assert set(TINY_CONFIGS) == set(families.RECIPES)


@pytest.mark.parametrize("prec", ["fp32", "bf16"])
@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_every_family_takes_one_step_in_each_precision(name, prec):
    torch.manual_seed(0)
    recipe = families.RECIPES[name]
    channels_last = recipe.channels_last
    model = build(name, TINY_CONFIGS[name]).to(memory_format=precision.memory_format(channels_last)).train()
    opts = recipe.make_optimizers(model, {"lr": 1e-3, "betas": [0.5, 0.999], **(recipe.defaults or {})})
    x = (torch.rand(8, 1, 28, 28) > 0.5).float()      # binary: fits Bernoulli models as well as the others
    y = torch.arange(8) % 10
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with precision.autocast(prec, torch.device("cpu")):
        losses = recipe.step(model, opts, precision.to_layout(x, channels_last), y)
    assert losses and all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in losses.values())
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "the step updated no weight"
    # Weights and optimizer state stay float32 whatever the step ran in.
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for opt in opts.values():
        for state in opt.state.values():
            assert all(v.dtype == torch.float32 for v in state.values() if torch.is_tensor(v) and v.dim() > 0)


def test_auto_picks_bf16_only_on_native_hardware(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    assert precision.resolve("auto", cpu) == "fp32"
    assert precision.resolve("bf16", cpu) == "bf16"          # asked for: honoured (and warned about)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "amx_bf16", "amx_tile"})
    assert precision.resolve("auto", cpu) == "bf16"
    assert precision.resolve("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, auto"):
        precision.resolve("fp16", cpu)


def _config(tmp_path, data, epochs, **kw) -> RunConfig:
    return RunConfig(model="vae", dataset="mnist", epochs=epochs, out=tmp_path / "vae.safetensors",
                     data_dir=str(data), batch_size=32, progress=False, state_dir=tmp_path,
                     model_config={"hidden": 16, "channels": 4, "latent_dim": 2}, **kw)


@pytest.fixture
def small_data(tmp_path):
    return write_fake_dataset(tmp_path / "data", n_train=128, n_test=32)


def test_evaluation_runs_in_float32_after_bf16_training(small_data, tmp_path, monkeypatch):
    real = families.RECIPES["vae"]
    seen = {}

    def evaluate(model, x, y, binary):
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        seen["dtype"] = model.decode(torch.zeros(1, model.latent_dim)).dtype
        return real.evaluate(model, x, y, binary)

    def step(model, opts, x, y):
        seen.setdefault("step_autocast", torch.is_autocast_enabled("cpu"))
        return real.step(model, opts, x, y)

    monkeypatch.setitem(families.RECIPES, "vae", families.Recipe(**{**real.__dict__, "evaluate": evaluate,
                                                                     "step": step}))
    fit(_config(tmp_path, small_data, 1, precision="bf16"))
    assert seen == {"step_autocast": True, "autocast": False, "dtype": torch.float32}
    ckpt = checkpoints.load(tmp_path / "vae.safetensors")
    assert ckpt.training["precision"] == "bf16" and ckpt.training["channels_last"] is False
    assert all(v.dtype == torch.float32 for v in ckpt.model.state_dict().values() if v.is_floating_point())


def test_a_bf16_run_resumes_exactly(small_data, tmp_path):
    torch.set_num_threads(1)
    fit(_config(tmp_path / "split", small_data, 1, precision="bf16", channels_last=True))
    fit(_config(tmp_path / "split", small_data, 3, precision="bf16", channels_last=True, resume=True))
    fit(_config(tmp_path / "straight", small_data, 3, precision="bf16", channels_last=True))
    resumed = checkpoints.load(tmp_path / "split" / "vae.safetensors")
    straight = checkpoints.load(tmp_path / "straight" / "vae.safetensors")
    assert resumed.history["epoch"] == [1, 2, 3]
    assert resumed.history["train_loss"] == straight.history["train_loss"]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_a_kill_between_the_two_writes_is_redone_on_resume(small_data, tmp_path, monkeypatch):
    """Killed after the last epoch's checkpoint but before its resume state: --resume redoes
    that epoch and ends where an uninterrupted run ends."""
    torch.set_num_threads(1)
    cut = tmp_path / "cut"
    real_save_tensors = checkpoints.save_tensors
    calls = {"n": 0}

    def save_then_die(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:   # writes: epoch 1 checkpoint, state; epoch 2 checkpoint, state <- dies here
            raise KeyboardInterrupt
        return real_save_tensors(path, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "save_tensors", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit(_config(cut, small_data, 2))
    monkeypatch.setattr(checkpoints, "save_tensors", real_save_tensors)
    assert checkpoints.load(cut / "vae.safetensors").history["epoch"] == [1, 2]   # checkpoint ahead
    state = resume_path(cut / "vae.safetensors", cut)
    assert '"epoch": 1' in checkpoints.read_tensors(state)[1]["run"]               # state behind

    fit(_config(cut, small_data, 2, resume=True))
    fit(_config(tmp_path / "straight", small_data, 2))
    resumed = checkpoints.load(cut / "vae.safetensors")
    straight = checkpoints.load(tmp_path / "straight" / "vae.safetensors")
    assert resumed.history["epoch"] == [1, 2]
    assert resumed.history["train_loss"] == straight.history["train_loss"]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
