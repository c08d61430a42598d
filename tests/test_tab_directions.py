"""Directions tab through gradio_client: ranking, principal-direction grid, class walk, scatter."""

from __future__ import annotations

import pytest
import torch
from gradio_client import handle_file
from PIL import Image

from explorer import directions


def test_the_ranking_lists_every_dimension_strongest_first(client, catalog):
    table, summary = client.predict("mnist-vae", api_name="/dimension_ranking")
    model = catalog.checkpoint("mnist-vae", "latent").model
    effects = [row[1] for row in table["data"]]
    assert len(effects) == model.latent_dim and effects == sorted(effects, reverse=True)
    assert sorted(int(row[0][1:]) for row in table["data"]) == list(range(model.latent_dim))
    assert "KL per dimension" in summary and "encoded test images" in summary
    # A GAN has no encoder: ranked by how much each dimension changes the image.
    _, summary = client.predict("mnist-dcgan", api_name="/dimension_ranking")
    assert "change" in summary and "prior samples" in summary


def test_the_direction_grid_is_a_picture_and_refuses_one_direction_twice(client):
    path, caption = client.predict("mnist-vae", 1, 2, 2.0, api_name="/direction_grid")
    assert Image.open(path).size[0] > 7 * 28 and "explains" in caption
    with pytest.raises(Exception, match="two different principal directions"):
        client.predict("mnist-vae", 2, 2, 2.0, api_name="/direction_grid")
    with pytest.raises(Exception, match="a number from 1 to"):
        client.predict("mnist-vae", 1, 99, 2.0, api_name="/direction_grid")


def test_the_class_walk_moves_the_image_and_a_conditional_model_says_why_not(client, tmp_path):
    digit = tmp_path / "digit.png"
    picture = torch.zeros(28, 28)
    picture[6:22, 12:16] = 1
    Image.fromarray((picture.numpy() * 255).astype("uint8")).save(digit)
    path, caption = client.predict("mnist-vae", 1, 7, 1.5, handle_file(str(digit)), api_name="/attribute_walk")
    strip = Image.open(path)
    assert strip.size[0] > strip.size[1] * 5 and "mean 1 to the mean 7" in caption
    with pytest.raises(Exception, match="takes its class as an input"):
        client.predict("mnist-cvae", 1, 7, 1.5, handle_file(str(digit)), api_name="/attribute_walk")
    with pytest.raises(Exception, match="greater than maximum"):   # the slider's own range, checked by Gradio
        client.predict("mnist-vae", 1, 7, 9, handle_file(str(digit)), api_name="/attribute_walk")
    source, target, amount, _, caption = client.predict("mnist-vae", handle_file(str(digit)),
                                                        api_name="/preset_1_to_7")
    assert (source, target, amount) == (1, 7, 1.5) and "mean 1 to the mean 7" in caption


def test_the_scatter_marks_your_image_on_the_principal_axes(client, catalog, tmp_path):
    digit = tmp_path / "digit.png"
    Image.new("L", (28, 28), 255).save(digit)
    frame, note = client.predict("mnist-vae", handle_file(str(digit)), api_name="/direction_scatter")
    classes = [row[2] for row in frame["data"]]
    assert classes.count("your image") == 1 and len(classes) > 1 and "principal directions" in note


def test_principal_directions_of_the_served_model_are_orthonormal(catalog):
    from explorer.ui.services import Services

    found = Services(catalog).code_directions("mnist-vae")
    d = found.principal.directions
    torch.testing.assert_close(d @ d.T, torch.eye(len(d)), atol=1e-4, rtol=0)
    assert found.class_means is not None and found.class_means.shape[0] == 10
    assert directions.INACTIVE_SHARE > 0


def test_a_gan_scatter_shows_its_samples_labelled_by_the_classifier(client, tmp_path):
    digit = tmp_path / "digit.png"
    Image.new("L", (28, 28), 255).save(digit)
    frame, note = client.predict("mnist-dcgan", handle_file(str(digit)), api_name="/direction_scatter")
    assert len(frame["data"]) > 100 and "prior samples" in note
    assert "your image" not in [row[2] for row in frame["data"]]
