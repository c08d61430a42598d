"""explorer.packing: replay frames survive the trip through checkpoint metadata, compressed,
older raw frames still read, and damaged or oversized frames are refused with a message."""

from __future__ import annotations

import base64

import pytest
import torch

from explorer import packing


def test_images_survive_the_metadata_encoding():
    x = torch.randint(0, 256, (5, 1, 28, 28)).float() / 255
    assert torch.equal(packing.unpack_images(packing.pack_images(x)), x)


def test_images_are_stored_compressed_and_older_raw_frames_still_decode():
    x = torch.zeros(100, 1, 28, 28)
    x[:, :, 8:20, 12:16] = torch.rand(100, 1, 12, 4)  # a stroke on a blank page, like a digit
    text = packing.pack_images(x)
    assert text.startswith(packing.ZLIB_PREFIX)
    raw = base64.b64encode(packing.unpack_bytes(text)).decode()  # how older files stored it
    assert len(text) < len(raw) / 3
    assert torch.equal(packing.unpack_images(raw), packing.unpack_images(text))
    torch.testing.assert_close(packing.unpack_images(text), x, atol=0.5 / 255, rtol=0)


def test_damaged_or_oversized_frames_are_refused_with_a_message():
    with pytest.raises(ValueError, match="whole"):
        packing.unpack_images(packing.pack_bytes(bytes(784 + 5)))
    with pytest.raises(ValueError, match="whole"):
        packing.unpack_images(packing.pack_bytes(b""))
    bomb = packing.pack_bytes(bytes(packing.MAX_FRAME_BYTES + 784))  # compresses to a few kB
    with pytest.raises(ValueError, match="decompresses to more than"):
        packing.unpack_images(bomb)
