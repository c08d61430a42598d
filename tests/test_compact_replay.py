"""`python -m train.compact_replay`: older raw replay frames rewritten compressed, nothing else touched."""

from __future__ import annotations

import base64
import json

import torch

from explorer import checkpoints, packing
from train.compact_replay import main

from tests.helpers import save_tiny_gan


def _as_raw(frames: list[str]) -> list[str]:
    """The frames as checkpoints written before compression held them."""
    return [base64.b64encode(packing.unpack_bytes(f)).decode("ascii") for f in frames]


def test_a_checkpoint_and_a_resume_state_shrink_and_decode_to_the_same_pixels(tmp_path, capsys):
    ckpt_path = tmp_path / "mnist-dcgan.safetensors"
    save_tiny_gan(ckpt_path)
    tensors, meta = checkpoints.read_tensors(ckpt_path)
    history = json.loads(meta["history"])
    history["replay"] = _as_raw(history["replay"])
    checkpoints.save_tensors(ckpt_path, tensors, {**meta, "history": json.dumps(history)})
    state_path = tmp_path / f"mnist-dcgan{checkpoints.RESUME_SUFFIX}"
    run = {"epoch": 3, "history": history, "model": "dcgan"}
    checkpoints.save_tensors(state_path, {"model.w": torch.arange(4.0)}, {"run": run})
    before = checkpoints.load(ckpt_path)
    sizes = {p: p.stat().st_size for p in (ckpt_path, state_path)}

    assert main([str(ckpt_path), str(state_path)]) == 0
    assert "3 frames compressed" in capsys.readouterr().out

    after = checkpoints.load(ckpt_path)
    for p in (ckpt_path, state_path):
        assert p.stat().st_size < sizes[p]
    assert all(f.startswith(packing.ZLIB_PREFIX) for f in after.history["replay"])
    assert torch.equal(packing.unpack_replay(after.history["replay"]), packing.unpack_replay(before.history["replay"]))
    assert {k: v for k, v in after.history.items() if k != "replay"} == \
        {k: v for k, v in before.history.items() if k != "replay"}
    assert after.metrics == before.metrics and after.training == before.training
    for k, v in before.model.state_dict().items():
        assert torch.equal(after.model.state_dict()[k], v)
    tensors, meta = checkpoints.read_tensors(state_path)
    stored = json.loads(meta["run"])
    assert torch.equal(tensors["model.w"], torch.arange(4.0)) and stored["epoch"] == 3
    assert stored["history"]["replay"] == after.history["replay"]

    mtime = ckpt_path.stat().st_mtime_ns  # a second pass finds nothing to do and writes nothing
    assert main([str(ckpt_path)]) == 0
    assert "0 frames compressed" in capsys.readouterr().out and ckpt_path.stat().st_mtime_ns == mtime


def test_a_damaged_file_is_reported_not_rewritten(tmp_path, capsys):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert main([str(bad)]) == 2
    assert "broken.safetensors" in capsys.readouterr().err and bad.read_bytes() == b"not a checkpoint"
