"""Checkpoints: bit-identical round trips, clear errors for bad files, atomic writes."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from explorer import checkpoints
from explorer.checkpoints import CheckpointError
from explorer.models import build
from tests.helpers import REPO, TINY


def _model(name="vae", **cfg):
    torch.manual_seed(0)
    model = build(name, {**TINY, **cfg}).eval()
    if name == "ae":
        model.fit_code_stats(torch.rand(32, 1, 28, 28))
    return model


@pytest.mark.parametrize("name", ["ae", "vae", "cvae"])
def test_save_then_load_gives_bit_identical_outputs(tmp_path, name):
    model = _model(name)
    path = tmp_path / f"{name}.safetensors"
    checkpoints.save(path, model, dataset="mnist", metrics={"x": 1.5, "headline": "x"},
                     history={"loss": [3.0, 2.0]}, training={"command": "python -m train ..."})
    loaded = checkpoints.load(path)
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    y = torch.arange(4) if model.num_classes else None
    with torch.no_grad():
        assert torch.equal(model.decode(model.sample_latent(4, g()), y),
                           loaded.model.decode(loaded.model.sample_latent(4, g()), y))
        x = torch.rand(4, 1, 28, 28)
        assert torch.equal(model.encode(x, y), loaded.model.encode(x, y))
    assert loaded.model.config == model.config and not loaded.model.training
    assert loaded.metrics == {"x": 1.5, "headline": "x"} and loaded.history == {"loss": [3.0, 2.0]}
    assert loaded.summary() == f"{name}.safetensors: {type(model).description} ({name}) on mnist, x = 1.50"


def test_missing_truncated_and_garbage_files_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.safetensors: no such checkpoint"):
        checkpoints.load(tmp_path / "nope.safetensors")
    path = tmp_path / "cut.safetensors"
    checkpoints.save(path, _model(), dataset="mnist")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cut.safetensors: not a readable safetensors checkpoint"):
        checkpoints.load(path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable"):
        checkpoints.load(junk)


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="foreign.safetensors: .*not a Latent Explorer checkpoint"):
        checkpoints.load(path)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    path = tmp_path / "mismatch.safetensors"
    checkpoints.save(path, _model(), dataset="mnist")
    tensors, meta = checkpoints.read_tensors(path)
    meta["config"] = json.dumps({**json.loads(meta["config"]), "hidden": 32})
    checkpoints.save_tensors(path, tensors, meta)
    with pytest.raises(CheckpointError, match="mismatch.safetensors: weights do not fit model 'vae'"):
        checkpoints.load(path)
    meta["model"] = "pixelgan"
    checkpoints.save_tensors(path, tensors, meta)
    with pytest.raises(CheckpointError, match="model 'pixelgan' is not known"):
        checkpoints.load(path)


def test_a_crash_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    checkpoints.save(path, _model(), dataset="mnist", metrics={"v": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save(path, _model(latent_dim=2), dataset="mnist", metrics={"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left behind


def test_update_metrics_merges(tmp_path):
    path = tmp_path / "m.safetensors"
    model = _model()
    checkpoints.save(path, model, dataset="mnist", metrics={"a": 1.0, "headline": "a", "how": {"a": "A"}})
    checkpoints.update_metrics(path, {"b": 2.0, "headline": "b", "how": {"b": "B"}})
    loaded = checkpoints.load(path)
    assert loaded.metrics == {"a": 1.0, "b": 2.0, "headline": "b", "how": {"a": "A", "b": "B"}}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()))


def test_list_trained_describes_each_file_and_flags_bad_ones(tmp_path):
    checkpoints.save(tmp_path / "mnist-vae.safetensors", _model(), dataset="mnist",
                     metrics={"test_neg_elbo": 99.123, "headline": "test_neg_elbo"})
    checkpoints.save(tmp_path / "mnist-vae.resume.safetensors", _model(), dataset="mnist")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 10)
    lines = checkpoints.list_trained(tmp_path)
    assert len(lines) == 2
    assert lines[0].startswith("broken.safetensors: unreadable")
    assert lines[1] == "mnist-vae.safetensors: variational autoencoder (vae) on mnist, test_neg_elbo = 99.12"


def test_a_folder_that_does_not_exist_is_an_error_not_an_empty_shelf(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        checkpoints.checkpoint_files(tmp_path / "trainde")
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        checkpoints.list_trained(tmp_path / "trainde")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="not a folder"):
        checkpoints.checkpoint_files(tmp_path / "file")
    assert checkpoints.checkpoint_files(tmp_path) == []  # an existing empty folder is just empty


def test_the_shipped_folder_is_found_from_anywhere_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENT_EXPLORER_TRAINED", raising=False)
    monkeypatch.chdir(tmp_path)
    assert checkpoints.shipped_folder() == (REPO / "trained").resolve()
    assert checkpoints.shipped("mnist-vae") == (REPO / "trained" / "mnist-vae.safetensors").resolve()
    assert any(line.startswith("mnist-vae.safetensors: ") for line in checkpoints.list_trained())
    monkeypatch.setenv("LATENT_EXPLORER_TRAINED", str(tmp_path))
    assert checkpoints.shipped_folder() == tmp_path and checkpoints.list_trained() == []


SHIPPED = checkpoints.checkpoint_files(REPO / "trained")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoints_load_and_decode(path):
    assert path.stat().st_size < 10 * 2**20, "shipped checkpoints must stay under 10 MB"
    ckpt = checkpoints.load(path)
    assert ckpt.training.get("command", "").startswith("python -m train ")
    assert ckpt.metrics.get("headline") in ckpt.metrics
    model = ckpt.model
    if model.kind == "latent":
        y = torch.arange(8) % model.num_classes if model.num_classes else None
        with torch.no_grad():
            x = model.decode(model.sample_latent(8, torch.Generator().manual_seed(0)), y)
        assert x.shape == (8, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
