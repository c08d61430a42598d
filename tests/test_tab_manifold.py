"""The 2-D manifold tab (`/manifold`, `/manifold_controls`): the picture, the scatter of encoded
test images, and why it is empty without test data or for a GAN."""

from __future__ import annotations

from explorer import render
from explorer.ui import Catalog, Services
from explorer.ui import manifold as manifold_tab
from tests.helpers import picture


def grid_tiles_any(path: str, size: int) -> bool:
    arr = picture(path)
    geo = render.grid_geometry(size, size, render.auto_scale(size, target=600))
    return arr.shape == (geo.height, geo.width)


def test_manifold_with_and_without_test_data(client, services, app_folder):
    path, table, note = client.predict("mnist-vae2d", 7, None, api_name="/manifold")
    assert grid_tiles_any(path, 7)
    assert table["columns"] == ["z0", "z1", "class"] and len(table["data"]) == 64  # the fake test set
    codes, labels = services.test_codes("mnist-vae2d")
    assert [r[2] for r in table["data"]] == [str(int(k)) for k in labels]
    assert "64 test images" in note
    label = client.predict("mnist-vae2d", None, api_name="/manifold_controls")
    assert label["visible"] is False
    no_data = Catalog.from_folder(app_folder, data_dir=app_folder / "no-such-folder", download=False)
    _, empty, note = manifold_tab.manifold(Services(no_data), "mnist-vae2d", 5, None)
    assert len(empty) == 0 and "No test images are available" in note


def test_a_gan_gets_no_scatter_of_encoded_test_images(services):
    table, note = manifold_tab.scatter_table(services, "mnist-dcgan")
    assert len(table) == 0 and "is a GAN" in note and "by optimisation" in note
    assert services.test_codes("mnist-dcgan") is None
