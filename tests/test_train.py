"""The shared training loop: a tiny run end to end, resume after kill -9, NaN stop, bad data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from explorer import checkpoints
from train import families
from train.__main__ import main
from train.loop import RunConfig, TrainingDiverged, fit, resume_path
from tests.helpers import REPO, write_fake_dataset

TINY_SET = ["hidden=16", "channels=4", "latent_dim=2"]


def _args(data, out, epochs, *extra):
    return ["vae", "--dataset", "mnist", "--epochs", str(epochs), "--out", str(out), "--data-dir", str(data),
            "--batch-size", "32", "--threads", "1", "--no-progress", "--state-dir", str(Path(out).parent),
            "--set", *TINY_SET, *extra]


def test_tiny_run_writes_a_complete_checkpoint(fake_data, tmp_path, capsys):
    out = tmp_path / "vae.safetensors"
    assert main(_args(fake_data, out, 2)) == 0
    ckpt = checkpoints.load(out)
    assert ckpt.dataset == "mnist" and ckpt.model.latent_dim == 2
    assert ckpt.history["epoch"] == [1, 2] and len(ckpt.history["train_loss"]) == 2
    assert ckpt.history["train_loss"][1] < ckpt.history["train_loss"][0]
    assert ckpt.metrics["headline"] == "test_neg_elbo" and ckpt.metrics["test_neg_elbo"] > 0
    assert ckpt.training["command"].startswith("python -m train vae --dataset mnist --epochs 2")
    assert ckpt.training["epochs"] == 2 and ckpt.training["device"] == "cpu" and ckpt.training["binarized"]
    assert "epoch 2:" in capsys.readouterr().out
    # Asking for more epochs with --resume continues where the run stopped.
    assert main(_args(fake_data, out, 3, "--resume")) == 0
    assert checkpoints.load(out).history["epoch"] == [1, 2, 3]


def test_resume_after_kill_9_matches_an_uninterrupted_run(tmp_path):
    data = write_fake_dataset(tmp_path / "data", n_train=1024, n_test=64)
    epochs = 12
    killed = tmp_path / "killed.safetensors"
    log = (tmp_path / "log.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "train", *_args(data, killed, epochs)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    state = resume_path(killed, tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and _epochs_done(state) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.13)  # land somewhere inside a later epoch
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    printed = [ln for ln in (tmp_path / "log.txt").read_text().splitlines() if ln.startswith("epoch ")]
    last_printed = int(printed[-1].split(":")[0].split()[1])
    saved = _epochs_done(state)
    assert 0 <= last_printed - saved <= 1, "more than one epoch lost"
    assert checkpoints.load(killed).history["epoch"] == list(range(1, saved + 1))

    assert main(_args(data, killed, epochs, "--resume")) == 0
    resumed = checkpoints.load(killed)
    assert resumed.history["epoch"] == list(range(1, epochs + 1))

    torch.set_num_threads(1)
    straight = tmp_path / "straight.safetensors"
    assert main(_args(data, straight, epochs)) == 0
    ref = checkpoints.load(straight)
    for key, value in ref.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert ref.history["train_loss"] == resumed.history["train_loss"]


def _epochs_done(state) -> int:
    return json.loads(checkpoints.read_tensors(state)[1]["run"])["epoch"]


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(fake_data, tmp_path, monkeypatch):
    out = tmp_path / "vae.safetensors"
    assert main(_args(fake_data, out, 1)) == 0
    good = out.read_bytes()
    real = families.RECIPES["vae"]
    calls = {"n": 0}

    def poisoned_step(model, opts, x, y):
        calls["n"] += 1
        losses = real.step(model, opts, x, y)
        return {**losses, "loss": float("nan")} if calls["n"] == 3 else losses

    monkeypatch.setitem(families.RECIPES, "vae", families.Recipe(**{**real.__dict__, "step": poisoned_step}))
    cfg = RunConfig(model="vae", dataset="mnist", epochs=3, out=out, data_dir=str(fake_data), resume=True,
                    batch_size=32, model_config={"hidden": 16, "channels": 4, "latent_dim": 2}, progress=False,
                    state_dir=tmp_path)
    with pytest.raises(TrainingDiverged, match=r"loss \{'loss': nan\} at epoch 2, step 3.*checkpoint from epoch 1"):
        fit(cfg)
    assert out.read_bytes() == good


def test_cli_reports_nan_and_missing_data_with_exit_code_2(tmp_path, capsys, monkeypatch):
    assert main(_args(tmp_path / "empty", tmp_path / "m.safetensors", 1)) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "train-images-idx3-ubyte.gz: file not found" in err
    assert not (tmp_path / "m.safetensors").exists()

    real = families.RECIPES["vae"]
    monkeypatch.setitem(families.RECIPES, "vae", families.Recipe(
        **{**real.__dict__, "step": lambda *a: {"loss": float("inf")}}))
    data = write_fake_dataset(tmp_path / "data", n_train=64, n_test=8)
    assert main(_args(data, tmp_path / "m.safetensors", 1)) == 2
    assert "training stopped: loss {'loss': inf} at epoch 1, step 1; no checkpoint was written yet" \
        in capsys.readouterr().err


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["vae", "--epochs", "1", "--out", str(tmp_path / "m.pt")])
    with pytest.raises(SystemExit):
        main(["vae", "--epochs", "0", "--out", str(tmp_path / "m.safetensors")])


def _stored_learning_rates(state) -> list[float]:
    run = json.loads(checkpoints.read_tensors(state)[1]["run"])
    return [g["lr"] for opt in run["optimizers"].values() for g in opt["param_groups"]]


def test_a_learning_rate_given_on_resume_takes_over_and_one_not_given_goes_on(fake_data, tmp_path, capsys):
    out = tmp_path / "vae.safetensors"
    state = resume_path(out, tmp_path)
    assert main(_args(fake_data, out, 1, "--lr", "0.002")) == 0
    assert main(_args(fake_data, out, 2, "--resume")) == 0              # no --lr: the run's own rate goes on
    assert _stored_learning_rates(state) == [0.002]
    assert checkpoints.load(out).training["lr"] == 0.002
    assert main(_args(fake_data, out, 3, "--resume", "--lr", "0.0005")) == 0  # a step decay
    assert "--lr 0.0005: the learning rate was 0.002 until now" in capsys.readouterr().out
    assert _stored_learning_rates(state) == [0.0005]
    saved = checkpoints.load(out)
    assert saved.training["lr"] == 0.0005
    assert [c["from_epoch"] for c in saved.training["commands"]] == [1, 2, 3]


def test_a_resume_may_change_only_retunable_settings_and_keeps_the_rest(fake_data, tmp_path, capsys):
    """A plain GAN learns with one generator step, then goes on with its discriminator frozen
    (the collapse demonstration); its architecture cannot change on resume, and settings not
    given again are the run's own."""
    from explorer.models import gan

    out = tmp_path / "gan.safetensors"
    tiny = ["--set", "hidden=16", "latent_dim=4"]
    base = ["gan", "--epochs", "1", "--out", str(out), "--data-dir", str(fake_data), "--limit", "64",
            "--state-dir", str(tmp_path), "--no-progress", *tiny]
    assert main(base) == 0
    frozen = checkpoints.load(out).model
    discriminator = {k: v.clone() for k, v in frozen.discriminator.state_dict().items()}
    assert main([*base[:2], "2", *base[3:], "d_frozen=true", "g_steps=2", "--resume"]) == 0
    assert "resuming with d_frozen=True (was False), g_steps=2 (was 1)" in capsys.readouterr().out
    saved = checkpoints.load(out)
    assert saved.model.config["d_frozen"] is True and saved.model.config["g_steps"] == 2
    assert saved.model.config["hidden"] == 16  # kept
    # Frozen: the discriminator's weights did not move in epoch 2; the generator's did.
    assert all(torch.equal(v, saved.model.discriminator.state_dict()[k]) for k, v in discriminator.items())
    assert not all(torch.equal(v, saved.model.generator.state_dict()[k])
                   for k, v in frozen.generator.state_dict().items())
    # Not given again: the run's own settings go on (no silent return to the defaults).
    assert main(["gan", "--epochs", "3", "--out", str(out), "--data-dir", str(fake_data), "--limit", "64",
                 "--state-dir", str(tmp_path), "--no-progress", "--resume"]) == 0
    assert checkpoints.load(out).model.config["d_frozen"] is True
    with pytest.raises(SystemExit, match="hidden cannot change on resume"):
        main([*base[:2], "4", *base[3:-2], "hidden=32", "latent_dim=4", "--resume"])
    assert gan.PlainGAN.retunable == ("g_steps", "g_loss", "d_frozen")
