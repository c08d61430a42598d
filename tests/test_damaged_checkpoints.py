"""Damaged checkpoints of every kind are skipped at start-up with a notice naming the file
(never its server path); the good ones are served, and other files in the folder are noted."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from explorer import checkpoints
from explorer.models import build
from tests.helpers import TINY, save_tiny_gan


def rewrite(source: Path, target: Path, tensors=None, **meta_changes) -> None:
    """A copy of a checkpoint with some metadata fields changed (None: removed) or other tensors."""
    stored, meta = checkpoints.read_tensors(source)
    for key, value in meta_changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value if isinstance(value, str) else json.dumps(value)
    checkpoints.save_tensors(target, tensors if tensors is not None else stored, meta)


def test_the_app_starts_on_damaged_checkpoints_and_names_each(tmp_path):
    from explorer.ui import build_from_folder
    from explorer.ui.demo import notices_markdown

    folder = tmp_path / "trained"
    folder.mkdir()
    good = folder / "mnist-vae.safetensors"
    checkpoints.save(good, build("vae", {**TINY, "latent_dim": 4}).eval(), dataset="mnist",
                     metrics={"test_neg_elbo": 1.0, "headline": "test_neg_elbo"}, training={"epochs": 0})
    save_tiny_gan(tmp_path / "gan.safetensors")
    tensors, _ = checkpoints.read_tensors(good)
    bad = {
        "no-dataset.safetensors": dict(dataset=None),
        "metrics-list.safetensors": dict(metrics=[1, 2]),
        "training-string.safetensors": dict(training=json.dumps("fast")),
        "config-not-json.safetensors": dict(config="{not json"),
        "model-unknown.safetensors": dict(model="transformer"),
        "model-list.safetensors": dict(model=json.dumps(["vae"])),
    }
    for name, change in bad.items():
        rewrite(good, folder / name, **change)
    rewrite(good, folder / "nan-weights.safetensors",
            tensors={k: v.clone().fill_(float("nan")) if v.is_floating_point() else v for k, v in tensors.items()})
    rewrite(good, folder / "inf-weights.safetensors",
            tensors={k: v.clone().fill_(float("inf")) if v.is_floating_point() else v for k, v in tensors.items()})
    _, gan_meta = checkpoints.read_tensors(tmp_path / "gan.safetensors")
    history = json.loads(gan_meta["history"])
    history["replay"][1] = "zlib:!!!not base64!!!"
    rewrite(tmp_path / "gan.safetensors", folder / "mnist-damaged-replay.safetensors", history=history)
    (folder / "truncated.safetensors").write_bytes(good.read_bytes()[:500])
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "old-model.pt").write_bytes(b"\x80\x04pickle")
    (folder / "README.md").write_text("model card")
    (folder / "__init__.py").write_text('"""A checkpoint folder that is also a package, as trained/ is."""\n')

    demo = build_from_folder(folder, download=False)
    demo.services.warm_up()  # the warm-up (behind the server) must not trip either
    catalog = demo.services.catalog
    assert catalog.latent_names == ["mnist-vae"]
    notes = notices_markdown(catalog)
    for name in [*bad, "nan-weights.safetensors", "inf-weights.safetensors", "mnist-damaged-replay.safetensors",
                 "truncated.safetensors", "empty.safetensors", "old-model.pt"]:
        assert sum(name in n for n in catalog.notices) == 1, (name, catalog.notices)
    assert "README.md" not in notes and "__init__.py" not in notes
    assert str(tmp_path) not in notes and "/tmp" not in notes
    assert "NaN or infinite" in notes and "training replay is damaged" in notes and "not a .safetensors" in notes
