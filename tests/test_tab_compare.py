"""The AE vs VAE tab (`/compare`, `/compare_controls`): both grids at the same standardised code."""

from __future__ import annotations

import numpy as np

from explorer import latent
from tests.helpers import expected_tiles, grid_tiles


def test_compare_shows_the_same_grid_for_both_models(client, catalog):
    left, right = client.predict("mnist-ae", "mnist-vae", 1, 2, 2.0, 5, "random draw (seed)", 3, None,
                                 api_name="/compare")
    u = latent.standard_draw(4, 3)
    for path, name in ((left, "mnist-ae"), (right, "mnist-vae")):
        model = catalog.checkpoint(name, "latent").model
        want = expected_tiles(catalog, name, latent.unstandardize(model, u), 1, 2, 2.0, 5)
        assert np.abs(grid_tiles(path, 5).astype(int) - want).max() <= 1
    dx, dy, label, left_img, right_img = client.predict("mnist-vae2d", "mnist-cvae", 3, 2,
                                                        api_name="/compare_controls")
    assert dx["maximum"] == 1 and label["visible"] is True
    # The pictures are captioned with the models' plain names, not "left/right model".
    assert left_img["label"] == "left: VAE, 2-D (MNIST)" and right_img["label"] == "right: VAE, 4-D, conditional (MNIST)"
    left, right = client.predict("mnist-vae2d", "mnist-cvae", 0, 1, 2.0, 3, "prior mean", 0, 4,
                                 api_name="/compare")
    assert grid_tiles(left, 3).shape == grid_tiles(right, 3).shape


def test_compare_axes_past_the_smaller_code_or_equal_get_a_sentence_or_a_swap(client, catalog):
    from gradio_client.exceptions import AppError
    import pytest

    from explorer.ui import compare

    with pytest.raises(AppError, match="The smaller of the two models has 2 latent dimensions, z0 to z1: there is no z40"):
        client.predict("mnist-vae2d", "mnist-vae", 40, 1, 2.0, 3, "prior mean", 0, None, api_name="/compare")
    # On the page: x moved onto y swaps the axes (y takes x's previous place), no error.
    *_, dx, dy, axes = compare.axis_moved(catalog, "x", "mnist-ae", "mnist-vae", 1, 1, (0, 1),
                                          2.0, 3, "prior mean", 0, None)
    assert (dx, dy, axes) == (1, 0, (1, 0))


def test_no_picture_offers_the_share_button(server):
    """Share only works on Hugging Face Spaces ("Must be on Spaces to share." elsewhere): no
    picture of these tabs shows it. (The Pixel-by-pixel, Three-kinds and codes tabs are checked apart.)"""
    import httpx

    config = httpx.get(server[0] + "config").json()
    pictures = [c["props"] for c in config["components"] if c["type"] in ("image", "gallery", "imageeditor")]
    theirs = ("samples (blue", "prediction at the red", "receptive field", "from p(x|y)", "by Bayes",
              # the codes tab (explorer/ui/codes.py), checked with its own tab
              "codes drawn so far", "the prior at the red", "its code map", "input, decode", "codebook usage",
              "input / VQ-VAE")
    mine = [p for p in pictures if not str(p.get("label", "")).startswith(theirs)]
    assert len(mine) >= 20
    assert all(p.get("buttons") is not None and "share" not in p["buttons"] for p in mine), \
        [p.get("label") for p in mine if not p.get("buttons") or "share" in p["buttons"]]
