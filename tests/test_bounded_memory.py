"""Bounded memory and whole downloads: the pixel cap holds even for a picture Gradio would
decode itself, output pictures are written atomically, and the queue and session store are sized."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from explorer import intake
from tests.helpers import png_with_size


def test_pil_refuses_a_picture_past_the_cap_from_its_header(tmp_path):
    from explorer.ui.server import configure_process

    configure_process()
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_size(8880, 8880))  # 97 kB on disk, 79 MP: the bomb
    assert bomb.stat().st_size < 200_000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(bomb)  # the backstop, should Gradio decode a picture itself
    with pytest.raises(intake.ImageInputError, match="too big"):
        intake.open_image(bomb)
    side = int(intake.MAX_PIXELS ** 0.5) - 1
    ok = tmp_path / "ok.png"
    ok.write_bytes(png_with_size(side, side))
    assert Image.open(ok).size == (side, side)  # just under the cap: opens


def test_output_pictures_are_written_whole_while_others_read_them(tmp_path):
    from gradio import processing_utils

    from explorer.ui.server import configure_process

    configure_process()
    picture = Image.effect_noise((600, 600), 64).convert("L")
    first = processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png")
    size = len(open(first, "rb").read())
    short: list[int] = []

    def write() -> None:
        for _ in range(20):
            assert processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png") == first

    def read() -> None:
        for _ in range(200):
            n = len(open(first, "rb").read())
            if n != size:
                short.append(n)

    threads = [threading.Thread(target=f) for f in (write, write, read, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not short  # the in-place rewrite this replaces was seen truncated under load


def test_the_queue_takes_a_lecture_and_the_session_store_is_capped(catalog):
    from explorer.ui import demo, server

    assert server.MAX_QUEUE >= 300 and 100 <= server.SESSIONS <= 1000
    # Places in the queue are told on a clock, not to every waiting request each time one starts.
    queue = demo.build_demo(catalog)._queue
    assert queue.max_size == server.MAX_QUEUE and not queue.live_updates
    assert queue.update_intervals == server.QUEUE_STATUS_EVERY
