"""Shareable links: the open tab and its settings in the page's URL, and presets that are links.

A link is the page's address plus query parameters, for example

    ?tab=grid&model=mnist-ae&dx=3&dy=7&span=4
    ?tab=pixels&model=mnist-pixelcnn&pixel=407
    ?tab=codes&model=mnist-vqvae-cond&class=3&seed=5&step=20
    ?tab=interpolation&model=mnist-vae&a=0&b=3&method=lerp
    ?tab=replay&model=mnist-gan-collapse&present=1

`tab` picks the tab; the other keys are that tab's settings (`Shareable.keys`); `present=1`
turns on presentation mode (done in the browser, see `PAGE_JS`). Opening a link restores the
settings once, on page load (`restore`), and redraws that tab's picture; "Copy link" writes
the current ones (`query`). A key the tab does not know is ignored and a value it cannot use
is dropped: a link never breaks the page, it opens with that tab's defaults instead.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import gradio as gr

log = logging.getLogger(__name__)

# The presets: one click to a moment of the lecture, each just a link (the tab and settings
# it opens with). Each is checked against the shipped models by the tests: a preset naming a
# model that is not loaded is left out of the page.
PRESETS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("PixelCNN's blind spot", "a pixel mid-image: orange marks what the plain PixelCNN cannot see",
     {"tab": "pixels", "model": "mnist-pixelcnn", "pixel": "407"}),
    ("lerp vs slerp, 7 to 0", "the straight line's middle is an unusually small code",
     {"tab": "interpolation", "model": "mnist-vae", "a": "0", "b": "3", "method": "lerp", "steps": "12"}),
    ("holes in the AE's code space", "an autoencoder's codes away from its data decode to nothing",
     {"tab": "grid", "model": "mnist-ae", "span": "4"}),
    ("mode collapse", "a GAN whose samples fall onto one or two kinds of digit",
     {"tab": "replay", "model": "mnist-gan-collapse"}),
    ("a Fashion item under MNIST models", "a classifier must pick a digit; a density model can say no",
     {"tab": "three-kinds", "example": "a Fashion sneaker"}),
)


@dataclass
class Shareable:
    """What one tab puts in a link and takes back from one.

    `components` are the tab's inputs that a link holds, one per key of `keys`, in order.
    `restore(params)` turns the link's parameters (strings; only this tab's keys, each one
    optional) into one value or update per component, `gr.skip()` for those it leaves alone;
    it raises ValueError for a value it cannot use. `redraw` (function, inputs, outputs) is
    what draws the tab's picture from its inputs: run once after a restore, because values
    set by the page do not fire the `.input` events a person's changes do.
    """

    tab: str
    keys: tuple[str, ...]
    components: Sequence[gr.components.Component]
    restore: Callable[[dict[str, str]], list[Any]]
    redraw: tuple[Callable[..., Any], Sequence[gr.components.Component], Sequence[gr.components.Component]] | None = None
    share: Callable[..., dict[str, Any]] | None = None   # values of `components` -> parameters; default: as they are


def preset_query(params: dict[str, str]) -> str:
    return "?" + urllib.parse.urlencode(params)


def presets_markdown(loaded: set[str], tabs: set[str]) -> str:
    """The presets whose model is loaded and whose tab is on the page, as a list of links."""
    rows = [f"- [{title}]({preset_query(params)}): {why}" for title, why, params in PRESETS
            if params["tab"] in tabs and ("model" not in params or params["model"] in loaded)]
    return "\n".join(rows) if rows else "No preset fits the models loaded here."


class Links:
    """The page's shareable tabs; `wire` adds the restore-on-load and copy-link events."""

    def __init__(self) -> None:
        self.tabs: dict[str, Shareable] = {}

    def add(self, shareable: Shareable | None) -> None:
        if shareable is not None:
            self.tabs[shareable.tab] = shareable

    @property
    def components(self) -> list[gr.components.Component]:
        return [c for s in self.tabs.values() for c in s.components]

    def restore(self, params: dict[str, str]) -> tuple[str | None, list[Any]]:
        """(the tab to open or None, one value per component of every tab): only the linked
        tab's components change; a bad link changes nothing."""
        out: list[Any] = []
        chosen = params.get("tab")
        shareable = self.tabs.get(chosen or "")
        for tab in self.tabs.values():
            values = [gr.skip()] * len(tab.components)
            if tab is shareable:
                mine = {k: v for k, v in params.items() if k in tab.keys}
                try:
                    values = list(tab.restore(mine))
                except (ValueError, KeyError, TypeError, gr.Error) as err:
                    log.info("link for tab %s not restored: %s", chosen, err)
                    values = [gr.skip()] * len(tab.components)
            out += values
        return (chosen if shareable is not None else None), out

    def query(self, tab: str, values: Sequence[Any]) -> str:
        """The query string for `tab` given every component's current value (values that are
        not plain numbers or text are left out: a link holds settings, not pictures)."""
        start = 0
        for shareable in self.tabs.values():
            mine = list(values[start:start + len(shareable.components)])
            start += len(shareable.components)
            if shareable.tab != tab:
                continue
            pairs = (shareable.share(*mine) if shareable.share else dict(zip(shareable.keys, mine)))
            kept = {"tab": tab, **{k: _text(v) for k, v in pairs.items()
                                   if isinstance(v, (str, int, float)) and v != "" and _finite(v)}}
            return "?" + urllib.parse.urlencode(kept)
        return "?" + urllib.parse.urlencode({"tab": tab}) if tab else ""

    def wire(self, demo: gr.Blocks, tabs: gr.Tabs, tab_ids: dict[str, str], link_button: gr.Button,
             link_box: gr.Textbox, box_holder: gr.Accordion) -> None:
        """On load: restore from the URL, then redraw the linked tab. "Copy link": the current
        tab (read in the browser: which tab button is selected) and its settings, as a URL put
        in `link_box` (its folded `box_holder` opened to show it), on the clipboard and in the
        address bar."""
        components = self.components
        restored = gr.State(None)

        def on_load(request: gr.Request) -> list[Any]:
            params = dict(request.query_params) if request is not None else {}
            tab, values = self.restore(params)
            return [gr.Tabs(selected=tab) if tab else gr.skip(), tab, *values]

        loading = demo.load(on_load, None, [tabs, restored, *components], api_name="restore_link",
                            show_progress="hidden")
        for shareable in self.tabs.values():
            if shareable.redraw is None:
                continue
            fn, inputs, outputs = shareable.redraw
            # Plumbing of the page load, not a service: named, but not offered to API callers.
            loading = loading.then(_only_for(shareable.tab, fn, len(outputs)), [restored, *inputs], list(outputs),
                                   api_name=f"restore_{shareable.tab.replace('-', '_')}", api_visibility="private",
                                   show_progress="minimal")
        labels = {label: tab for tab, label in tab_ids.items()}

        def share(label: str, *values: Any) -> tuple[str, gr.Accordion]:
            tab = labels.get(label.strip(), "") if isinstance(label, str) else ""
            return self.query(tab, values), gr.Accordion(open=True)

        # The browser knows which tab is open; it hands its label in as the first input.
        link_button.click(share, [link_box, *components], [link_box, box_holder], api_name="share_link",
                          js=f"(_, ...rest) => [{_SELECTED_TAB_JS}, ...rest]", show_progress="hidden"
                          ).then(None, link_box, link_box, js=_WRITE_LINK_JS, api_name="show_link",
                                 api_visibility="private")


def _only_for(tab: str, fn: Callable[..., Any], outputs: int) -> Callable[..., Any]:
    """`fn` when the link opened `tab`; else leave the outputs as they are."""

    def redraw(restored: Any, *args: Any) -> Any:
        if not isinstance(restored, str) or restored != tab:
            return [gr.skip()] * outputs if outputs > 1 else gr.skip()
        try:
            return fn(*args)
        except (ValueError, KeyError, TypeError, gr.Error) as err:  # the tab keeps its first picture
            log.info("link for tab %s: redraw failed: %s", tab, err)
            return [gr.skip()] * outputs if outputs > 1 else gr.skip()

    return redraw


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or value == value and abs(value) != float("inf")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


# The page's first selected tab button is the main tab bar's (nested tab bars come later).
_SELECTED_TAB_JS = "(document.querySelector('button[role=tab][aria-selected=true]')?.innerText || '')"
# Makes the query a full address, puts it in the address bar (so a reload keeps it) and on the
# clipboard where the browser allows (https or localhost), and returns it for the link box.
_WRITE_LINK_JS = """(q) => {
  if (!q || !q.startsWith('?')) return q;
  const present = document.body.classList.contains('present') ? '&present=1' : '';
  const url = location.origin + location.pathname + q + present;
  history.replaceState(null, '', q + present);
  if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
  return url;
}"""
