"""`python -m train.model_card`: trained/README.md rendered from the checkpoints' own metadata."""

from __future__ import annotations

import re

from explorer import checkpoints
from explorer.models import build
from train import model_card

from tests.helpers import REPO, TINY_GAN


def _save(folder, epochs: int, requested: int, out: str = "trained/mnist-wgan_gp.safetensors") -> None:
    command = f"python -m train wgan_gp --epochs {requested} --out {out} --resume"
    checkpoints.save(folder / "mnist-wgan_gp.safetensors", build("wgan_gp", TINY_GAN).eval(), dataset="mnist",
                     metrics={"frechet_distance": 25.875, "classes_covered": 10, "headline": "frechet_distance",
                              "how": {"frechet_distance": "Frechet distance on the classifier's features",
                                      "classes_covered": "Frechet distance on the classifier's features"}},
                     training={"command": command, "epochs": epochs, "epochs_requested": requested,
                               "seconds": 1800, "device": "cpu", "threads": 1, "batch_size": 64, "lr": 1e-4,
                               "seed": 0, "binarized": False})


def test_the_card_states_each_checkpoints_metrics_and_command(tmp_path):
    _save(tmp_path, epochs=70, requested=70)
    card = model_card.render(tmp_path)
    n = build("wgan_gp", TINY_GAN).num_parameters()
    assert "WGAN-GP (`wgan_gp`) on mnist" in card  # the description as written, not "Wgan-gp"
    assert f"{n:,} parameters" in card
    assert "| frechet_distance | 25.88 | Frechet distance on the classifier's features |" in card
    assert "| classes_covered | 10 | (as above) |" in card  # a repeated note is not written twice
    assert "Trained for 70 epochs in 30 min on cpu (1 thread(s), float32), batch 64" in card
    assert ("    LATENT_EXPLORER_DATA=../shared/data python -m train wgan_gp --epochs 70 "
            "--out trained/mnist-wgan_gp.safetensors --resume\n") in card
    assert "stopped early" not in card
    assert "a copy of it" not in card  # the command wrote this very file


def test_a_file_copied_from_a_run_written_elsewhere_says_so(tmp_path):
    _save(tmp_path, epochs=70, requested=70, out="runs/mnist-wgan_gp-deeper.safetensors")
    assert ("The run wrote `runs/mnist-wgan_gp-deeper.safetensors`; this file is a copy of it"
            in model_card.render(tmp_path))


def test_the_card_points_only_to_reports_that_exist(tmp_path):
    _save(tmp_path, epochs=70, requested=70)
    pointed = re.findall(r"`(benchmarks/reports/[^`]+)`", model_card.render(tmp_path))
    assert pointed and pointed == model_card.evaluation_reports()
    assert all((REPO / p).is_file() for p in pointed)


def test_a_run_stopped_before_its_epochs_says_so(tmp_path):
    _save(tmp_path, epochs=12, requested=70)
    assert "Trained for 12 epochs (stopped early: 12 of 70; the same command continues it" in \
        model_card.render(tmp_path)


def test_the_card_names_the_training_precision(tmp_path):
    _save(tmp_path, epochs=70, requested=70)
    path = tmp_path / "mnist-wgan_gp.safetensors"
    ckpt = checkpoints.load(path)
    checkpoints.save(path, ckpt.model, dataset="mnist", metrics=ckpt.metrics,
                     training={**ckpt.training, "precision": "bf16", "channels_last": True})
    assert "on cpu (1 thread(s), bf16 autocast, channels_last), batch 64" in model_card.render(tmp_path)


def test_the_card_opens_with_hub_metadata(tmp_path):
    _save(tmp_path, epochs=70, requested=70)
    card = model_card.render(tmp_path)
    header = card.split("---\n")[1].splitlines()
    assert card.startswith("---\n") and "# Shipped checkpoints" in card.split("---\n")[2]
    assert {"license: mit", "library_name: pytorch", "- safetensors", "- wgan-gp", "- ylecun/mnist"} <= set(header)
    assert "- zalando-datasets/fashion_mnist" not in header  # only the data sets of the files there


def test_a_warm_started_run_names_the_run_it_started_from(tmp_path):
    _save(tmp_path, epochs=70, requested=70)
    path = tmp_path / "mnist-wgan_gp.safetensors"
    ckpt = checkpoints.load(path)
    first = "python -m train wgan_gp --epochs 8 --out runs/first.safetensors"
    checkpoints.save(path, ckpt.model, dataset="mnist", metrics=ckpt.metrics,
                     training={**ckpt.training, "started_from": {
                         "checkpoint": "first.safetensors", "command": first, "epochs": 2, "seconds": 960,
                         "device": "cpu", "threads": 1, "precision": None}})  # from before --precision
    card = model_card.render(tmp_path)
    assert ("It started from the weights of `first.safetensors` (the --init above), trained for 2 epochs "
            "(of 8 asked) in 16 min on cpu (1 thread(s), float32) with:") in card
    assert f"    LATENT_EXPLORER_DATA=../shared/data {first}\n" in card


def test_a_run_resumed_with_other_arguments_lists_each_command_and_the_average(tmp_path):
    _save(tmp_path, epochs=60, requested=60)
    path = tmp_path / "mnist-wgan_gp.safetensors"
    ckpt = checkpoints.load(path)
    first = "python -m train wgan_gp --epochs 50 --out trained/mnist-wgan_gp.safetensors --resume"
    then = "python -m train wgan_gp --epochs 60 --out trained/mnist-wgan_gp.safetensors --resume --ema 0.999"
    checkpoints.save(path, ckpt.model, dataset="mnist", metrics=ckpt.metrics,
                     training={**ckpt.training, "command": then, "ema": {"decay": 0.999, "from_epoch": 51},
                               "commands": [{"from_epoch": 1, "command": first}, {"from_epoch": 51, "command": then}]})
    card = model_card.render(tmp_path)
    assert (f"these commands, in turn, reproduce it:\n\nEpochs 1-50:\n\n    LATENT_EXPLORER_DATA=../shared/data {first}\n"
            f"\nEpochs 51-60:\n\n    LATENT_EXPLORER_DATA=../shared/data {then}\n") in card
    assert "an exponential moving average of the trained ones (`--ema 0.999`, updated every step from epoch 51" in card
    assert "stopped early" not in card
    assert f"lr {ckpt.training['lr']}, seed" in card           # both commands ran at the same rate
    lowered = then + " --lr 2e-5"
    checkpoints.save(path, ckpt.model, dataset="mnist", metrics=ckpt.metrics,
                     training={**ckpt.training, "command": lowered, "lr": 2e-5,
                               "commands": [{"from_epoch": 1, "command": first}, {"from_epoch": 51, "command": lowered}]})
    assert "lr 2e-05 at the end, seed" in model_card.render(tmp_path)


def test_a_single_command_run_states_its_rate_plainly(tmp_path):
    _save(tmp_path, epochs=60, requested=60)
    ckpt = checkpoints.load(tmp_path / "mnist-wgan_gp.safetensors")
    card = model_card.render(tmp_path)
    assert f"lr {ckpt.training['lr']}, seed" in card and "at the end" not in card
