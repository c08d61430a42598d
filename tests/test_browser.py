"""In a real browser: the page loads, moving a grid slider redraws the grid.

Drives Debian's Chromium (/usr/bin/chromium) through Playwright; skipped with a reason
where that browser is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.ui import Catalog, build_demo
from tests.helpers import browser_page, needs_chromium, serve_on_loopback, write_fake_dataset

pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def url(tiny_trained_dir: Path, tmp_path_factory):
    data = write_fake_dataset(tmp_path_factory.mktemp("browser-data"))
    demo = build_demo(Catalog.from_folder(tiny_trained_dir, data_dir=data, download=False))
    yield serve_on_loopback(demo)
    demo.close()


def test_moving_a_grid_slider_redraws_the_grid(url: str, tmp_path: Path):
    with browser_page({"width": 1400, "height": 1000}) as page:
        page.goto(url)
        grid = page.locator("#latent-grid img")
        grid.wait_for(timeout=30_000)
        before = grid.get_attribute("src")
        assert before and "file=" in before

        slider = page.get_by_label("range slider for y-axis dimension")
        # The grid opens on the model's two strongest dimensions: move one axis by one step
        # to a dimension the other axis is not on (equal axes are refused).
        x_slider = page.get_by_label("range slider for x-axis dimension")
        y, x, top = int(slider.input_value()), int(x_slider.input_value()), int(slider.get_attribute("max"))
        moves = [(slider, y, y + d, x) for d in (1, -1)] + [(x_slider, x, x + d, y) for d in (1, -1)]
        moved, start, target, _ = next(m for m in moves if 0 <= m[2] <= top and m[2] != m[3])
        moved.focus()
        moved.press("ArrowRight" if target > start else "ArrowLeft")
        assert int(moved.input_value()) == target
        page.wait_for_function(
            "before => { const img = document.querySelector('#latent-grid img');"
            " return img && img.src && !img.src.endsWith(before.split('file=')[1]); }",
            arg=before, timeout=30_000)
        after = grid.get_attribute("src")
        assert after != before
        page.wait_for_timeout(300)  # let the new picture paint before the screenshot
        shot = tmp_path / "latent-grid.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert not page.locator(".toast-body.error").count()  # no error toast


def test_play_streams_frames_into_the_page_and_stop_halts_them(url: str, tmp_path: Path):
    with browser_page({"width": 1400, "height": 1200}) as page:
        page.goto(url)
        page.get_by_role("tab", name="Pixel by pixel").click()
        frame = page.locator("#pixel-frame img")
        frame.wait_for(timeout=30_000)
        page.get_by_label("range slider for pixels per frame while playing").fill("1")
        sources = [frame.get_attribute("src")]
        page.get_by_role("button", name="Play").click()
        for _ in range(3):  # three new frames arrive while it plays
            page.wait_for_function(
                "last => { const img = document.querySelector('#pixel-frame img');"
                " return img && img.src && img.src !== last; }", arg=sources[-1], timeout=30_000)
            sources.append(frame.get_attribute("src"))
        page.get_by_role("button", name="Stop").click()
        page.wait_for_timeout(1500)
        stopped = frame.get_attribute("src")
        page.wait_for_timeout(1500)
        assert frame.get_attribute("src") == stopped  # nothing arrives after Stop
        assert len(set(sources)) == 4
        shot = tmp_path / "pixel-by-pixel.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert not page.locator(".toast-body.error").count()


# Every tab at projector size: its main picture and primary control lie inside the first screen.
PROJECTOR = {"width": 1280, "height": 720}
MAIN_AND_PRIMARY = {
    "Latent grid": ("#latent-grid img", "#grid-dx"),
    "Interpolation": ("#interpolation-strip img", "#interpolation-method"),
    "Encode": ("#encode-decoded img", "#encode-model"),
    "Directions": ("#directions-grid img", "#directions-first"),
    "AE vs VAE": ("#compare-left-grid img", "#compare-left"),
    "2-D manifold": ("#manifold-picture img", "#manifold-model"),
    "Training replay": ("#replay-grid img", "#replay-play"),
    "Pixel by pixel": ("#pixel-frame img", "#pixel-play"),
    "Discrete codes (VQ-VAE)": ("#codes-frame img", "#codes-play"),
    "Likelihood": ("#likelihood-scores", "#likelihood-source"),
    "Three kinds of model": ("#three-kinds-classifier", "#three-kinds-examples"),
}
# Where the screenshots go: a folder of the caller's choice (LATENT_EXPLORER_SHOTS), else the
# test's temporary folder.
SHOTS_ENV = "LATENT_EXPLORER_SHOTS"


def _shots(tmp_path: Path) -> Path:
    import os

    folder = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _inside(page, selector: str) -> tuple[bool, dict | None]:
    found = page.locator(selector)
    box = found.first.bounding_box() if found.count() else None
    if box is None:
        return False, None
    fits = (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= PROJECTOR["width"] + 1
            and box["y"] + box["height"] <= PROJECTOR["height"] + 1)
    return fits, box


def test_every_tab_fits_a_projector(url: str, tmp_path: Path):
    shots = _shots(tmp_path)
    with browser_page(PROJECTOR) as page:
        page.goto(url)
        page.locator("#latent-grid img").wait_for(timeout=30_000)
        misfits = []
        for tab, selectors in MAIN_AND_PRIMARY.items():
            page.get_by_role("tab", name=tab).first.click()
            page.locator(selectors[0]).first.wait_for(timeout=30_000)
            page.wait_for_timeout(400)
            page.evaluate("window.scrollTo(0, 0)")
            for selector in selectors:
                fits, box = _inside(page, selector)
                if not fits:
                    misfits.append((tab, selector, box))
            name = tab.lower().replace(" ", "-").replace("/", "")
            page.screenshot(path=str(shots / f"{name}-1280x720.png"))
        assert not misfits, misfits
        # Presentation mode hides the chrome; the pictures stay in view.
        page.get_by_role("tab", name="Latent grid").first.click()
        page.locator("#present-toggle").click()
        assert page.evaluate("document.body.classList.contains('present')")
        assert not page.locator("#copy-link").is_visible()
        assert _inside(page, "#latent-grid img")[0]
        page.screenshot(path=str(shots / "presentation-mode-1280x720.png"))


def test_a_preset_link_restores_its_tab_and_settings(url: str, tmp_path: Path):
    with browser_page(PROJECTOR) as page:
        # The "lerp vs slerp" preset's shape, on the tiny models: interpolation, lerp, 12 steps,
        # test images 0 and 3, in presentation mode.
        page.goto(url + "?tab=interpolation&model=mnist-ae&a=0&b=3&method=lerp&steps=12&present=1")
        strip = page.locator("#interpolation-strip img")
        strip.wait_for(timeout=30_000)
        page.wait_for_function("() => document.querySelector('#interpolation-method input[value=lerp]')?.checked",
                               timeout=30_000)
        assert page.get_by_role("tab", name="Interpolation").first.get_attribute("aria-selected") == "true"
        assert page.get_by_label("number input for steps").input_value() == "12"
        assert page.evaluate("document.body.classList.contains('present')")
        # The strip is redrawn for the link: 12 pictures wide.
        page.wait_for_function(
            "() => { const i = document.querySelector('#interpolation-strip img');"
            " return i && i.naturalWidth > 0 && Math.round(i.naturalWidth / i.naturalHeight) === 12; }",
            timeout=30_000)
        # Copy link writes the same settings back.
        page.locator("#present-toggle").click()  # chrome back, so the button is there
        page.locator("#copy-link").click()
        page.wait_for_function("() => document.querySelector('#link-box textarea, #link-box input')?.value"
                               ".includes('tab=interpolation')", timeout=30_000)
        link = page.locator("#link-box textarea, #link-box input").first.input_value()
        for part in ("model=mnist-ae", "a=0", "b=3", "method=lerp", "steps=12"):
            assert part in link
        assert "steps=12" in page.url  # the address bar holds the view too
        assert not page.locator(".toast-body.error").count()


def new_frame(page, before: str) -> str:
    """Wait for the pixel tab's frame to change from `before`; the new picture's address."""
    page.wait_for_function(
        "last => { const img = document.querySelector('#pixel-frame img');"
        " return img && img.src && img.src !== last; }", arg=before, timeout=30_000)
    return page.locator("#pixel-frame img").get_attribute("src")


def test_pixel_tab_keys_and_typed_pixel_numbers_redraw(url: str, tmp_path: Path):
    with browser_page({"width": 1280, "height": 720}) as page:
        page.goto(url)
        page.get_by_role("tab", name="Pixel by pixel").click()
        frame = page.locator("#pixel-frame img")
        frame.wait_for(timeout=30_000)
        box = page.locator("#pixel-position input[type=number]")
        status = page.locator("#pixel-status")
        assert box.input_value() == "407" and "Pixel 407 of 784" in status.inner_text()
        source = frame.get_attribute("src")

        # A typed pixel number redraws (no mouse release needed).
        box.fill("500")
        box.press("Enter")
        source = new_frame(page, source)
        page.wait_for_function("() => document.querySelector('#pixel-status').innerText.includes('Pixel 500 of 784')",
                               timeout=30_000)

        # Arrow keys on the page step one pixel; on the focused slider they move it, and it redraws.
        page.locator("#pixel-keys").click()          # focus leaves the number box
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.querySelector('#pixel-position input[type=number]').value === '501'",
                               timeout=30_000)
        source = new_frame(page, source)
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => document.querySelector('#pixel-position input[type=number]').value === '500'",
                               timeout=30_000)
        source = new_frame(page, source)
        slider = page.get_by_label("range slider for pixel (1 to 784, in raster order)")
        slider.focus()
        slider.press("ArrowRight")
        assert box.input_value() == "501"
        source = new_frame(page, source)
        page.wait_for_function("() => document.querySelector('#pixel-status').innerText.includes('Pixel 501 of 784')",
                               timeout=30_000)

        # Space plays (frames keep coming, the slider moves on) and Space again stops.
        page.locator("#pixel-keys").click()
        page.keyboard.press("Space")
        for _ in range(3):
            source = new_frame(page, source)
        assert int(box.input_value()) > 501
        page.keyboard.press("Space")
        page.wait_for_timeout(1500)
        stopped = frame.get_attribute("src")
        page.wait_for_timeout(1500)
        assert frame.get_attribute("src") == stopped and int(box.input_value()) < 784
        shot = tmp_path / "pixel-keys.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        assert not page.locator(".toast-body.error").count()


def test_clicking_a_cell_of_the_code_map_picks_it(url: str):
    # A click reaches its handler only in a browser (the event's data, gr.SelectData, is the page's).
    with browser_page({"width": 1280, "height": 720}) as page:
        page.goto(url)
        page.get_by_role("tab", name="Discrete codes (VQ-VAE)").first.click()
        page.get_by_role("tab", name="Edit the code map").click()
        picture = page.locator("#codes-map img")
        picture.wait_for(timeout=30_000)
        box = picture.bounding_box()
        assert box["y"] + box["height"] <= 720  # the map fits the first screen of a projector
        before = picture.get_attribute("src")
        picture.click(position={"x": box["width"] * 5.5 / 7, "y": box["height"] * 1.5 / 7})  # row 1, column 5
        row = page.get_by_label("number input for row")
        page.wait_for_function("() => document.querySelector('[aria-label=\"number input for row\"]').value === '1'",
                               timeout=30_000)
        assert row.input_value() == "1" and page.get_by_label("number input for column").input_value() == "5"
        # The view answered for the picked cell: the map was redrawn with it outlined.
        page.wait_for_function(
            "before => { const img = document.querySelector('#codes-map img'); return img && img.src !== before; }",
            arg=before, timeout=30_000)
        assert not page.locator(".toast-body.error").count()


def test_the_pixel_tab_plays_a_vqvaes_prior_on_a_projector(url: str, tmp_path: Path):
    """Picked by a link: the code grid and Play on the first screen, the receptive field hidden,
    and Play draws the 49 codes into the page."""
    with browser_page(PROJECTOR) as page:
        page.goto(url + "?tab=pixels&model=mnist-vqvae&pixel=30")
        page.get_by_label("range slider for code (1 to 49, in raster order)").wait_for(timeout=30_000)
        status = page.locator("#pixel-status")
        page.wait_for_function("() => document.querySelector('#pixel-status').innerText.includes('Code 30 of 49')",
                               timeout=30_000)
        page.evaluate("window.scrollTo(0, 0)")
        assert _inside(page, "#pixel-frame img")[0] and _inside(page, "#pixel-play")[0]
        assert not page.get_by_label("receptive field (green: seen; orange: blind spot; grey: out of reach)").count()
        page.locator("#pixel-play").click()
        page.wait_for_function("() => document.querySelector('#pixel-status').innerText.includes('Code 49 of 49')",
                               timeout=30_000)
        assert page.locator("#pixel-position input[type=number]").input_value() == "49"
        assert "Code 49 of 49" in status.inner_text() and not page.locator(".toast-body.error").count()
        page.screenshot(path=str(_shots(tmp_path) / "pixel-by-pixel-vqvae-1280x720.png"))
