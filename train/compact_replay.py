"""Compress the training-replay frames of older GAN checkpoints: `python -m train.compact_replay FILE...`.

Checkpoints written before replay frames were zlib-compressed hold them as raw bytes, about
0.1 MB per epoch; this rewrites them compressed (about 3.5x smaller), in shipped checkpoints
and in resume states (`runs/*.resume.safetensors`) alike. Lossless: every frame is decoded
again and compared pixel for pixel before the file is replaced (atomically). Weights, metrics
and every other piece of metadata are left exactly as they were. Do not run it on the files
of a training run that is still going: its next epoch would write the old frames back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explorer import checkpoints, packing


def compact_frames(frames: list[str]) -> tuple[list[str], int]:
    """The frames re-encoded compressed, and how many of them changed; bytes are checked equal."""
    out, changed = [], 0
    for text in frames:
        if text.startswith(packing.ZLIB_PREFIX):
            out.append(text)
            continue
        raw = packing.unpack_bytes(text)
        packed = packing.pack_bytes(raw)
        if packing.unpack_bytes(packed) != raw:
            raise RuntimeError("a compressed replay frame does not decode to the same pixels")
        out.append(packed)
        changed += 1
    return out, changed


def compact_file(path: Path) -> int:
    """Rewrite one checkpoint or resume state with compressed replay frames; returns frames changed."""
    tensors, meta = checkpoints.read_tensors(path)
    # A checkpoint keeps its history in metadata "history"; a resume state inside "run".
    key = "run" if path.name.endswith(checkpoints.RESUME_SUFFIX) else "history"
    stored = json.loads(meta.get(key, "{}"))
    history = stored["history"] if key == "run" else stored
    frames, changed = compact_frames(history.get("replay", []))
    if changed:
        history["replay"] = frames
        checkpoints.save_tensors(path, tensors, {**meta, key: json.dumps(stored)})
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.compact_replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    for path in a.files:
        before = path.stat().st_size if path.is_file() else 0
        try:
            changed = compact_file(path)
        except checkpoints.CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{path}: {changed} frames compressed, {before / 1e6:.2f} MB -> {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
