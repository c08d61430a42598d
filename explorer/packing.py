"""Images packed as text for a checkpoint's JSON metadata: a GAN's training-replay frames.

A frame is a batch of images as uint8 bytes, zlib-compressed and base64-encoded (digit images
shrink about 3.5x, so a GAN's replay of 100 epochs takes about 3 MB of a checkpoint instead of
10). Unpacking refuses damaged or oversized frames with a clear error: a checkpoint may come
from anyone.
"""

from __future__ import annotations

import base64
import math
import zlib

import torch

# Compressed frames carry this prefix; a string without it is raw bytes, as checkpoints written
# before compression hold them.
ZLIB_PREFIX = "zlib:"
# A frame never decompresses to more than this: a damaged or hostile file gets a clear error
# instead of exhausting memory.
MAX_FRAME_BYTES = 64 * 2**20


def pack_bytes(raw: bytes) -> str:
    """Bytes -> compressed text for JSON metadata."""
    return ZLIB_PREFIX + base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def unpack_bytes(text: str) -> bytes:
    """The inverse of `pack_bytes`; a string without the prefix is plain base64 (older files)."""
    if not text.startswith(ZLIB_PREFIX):
        return base64.b64decode(text)
    inflate = zlib.decompressobj()
    raw = inflate.decompress(base64.b64decode(text[len(ZLIB_PREFIX):]), MAX_FRAME_BYTES)
    if inflate.unconsumed_tail:
        raise ValueError(f"an image frame decompresses to more than {MAX_FRAME_BYTES} bytes")
    return raw


def pack_images(images: torch.Tensor) -> str:
    """Images (N, C, H, W) in [0, 1] -> text for JSON metadata: their uint8 bytes, packed."""
    return pack_bytes((images.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy().tobytes())


def unpack_images(text: str, shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """The inverse of `pack_images`: (N, *shape) floats in [0, 1]."""
    raw = unpack_bytes(text)
    if not raw or len(raw) % math.prod(shape):
        raise ValueError(f"an image frame of {len(raw)} bytes does not hold whole {shape} images")
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, *shape).float() / 255


def unpack_replay(replay: list[str], shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """A checkpoint's `history["replay"]` (one `pack_images` string per epoch) -> (E, N, *shape)."""
    return torch.stack([unpack_images(text, shape) for text in replay])
