"""App latency: how long the grid and the interpolation take, and what Gradio adds on top.

    python -m benchmarks.app_latency [--trained trained] [--repeats 40] [--report PATH]

1. Server-side time: the `/grid` handler for a 10x10 grid (around a new random code each
   call) and the `/interpolate` handler for 10 steps (between a new pair of digits each
   call: nothing from the app's caches), called directly; median wall time and median CPU
   time of the calling thread (the CPU time is what the work costs on a core of its own;
   the wall time also holds any wait for a core shared with other processes).
2. Round trip through gradio_client, p50 and p95, for each endpoint against a no-op
   endpoint on the same server that takes the same inputs and returns outputs of the same
   kinds and sizes (precomputed), which is Gradio's own floor: uploads, queueing,
   pre/postprocessing, PNG encoding, the HTTP/SSE exchange and the file downloads. Calls
   alternate, so both see the same load.

Targets (issue 3): 10x10 grid computed in <= 30 ms; round trips within 1.3x of the floor.
Uses the checkpoints in trained/ where there are latent models, else tiny random ones.
Prints the figures and writes benchmarks/reports/app_latency.md (or --report).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from . import report

REPORT = report.REPORTS / "app_latency.md"
GRID_ARGS = dict(dim_x=0, dim_y=1, span=2.5, size=10, fixed="prior mean", seed=0, digit=None, label=None)
STEPS = 10


def tiny_folder() -> Path:
    """Tiny random-weight VAE and AE checkpoints, for a machine without trained models."""
    from explorer import checkpoints
    from explorer.models import build

    folder = Path(tempfile.mkdtemp(prefix="latency-models-"))
    torch.manual_seed(0)
    for stem, name in (("mnist-vae", "vae"), ("mnist-ae", "ae")):
        model = build(name, {"latent_dim": 16}).eval()
        checkpoints.save(folder / f"{stem}.safetensors", model, dataset="mnist")
    return folder


def shown(path: Path) -> str:
    """A folder as the report names it: relative to the repository when inside it."""
    repo = Path(__file__).resolve().parents[1]
    try:
        return str(path.resolve().relative_to(repo))
    except ValueError:
        return str(path)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and thread-CPU seconds of `repeats` calls (after one warm-up call)."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - w)
    return walls, cpus


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trained", default=str(Path(__file__).resolve().parents[1] / "trained"))
    parser.add_argument("--model", default=None, help="checkpoint name (default: the app's default)")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, as app.py sets")
    parser.add_argument("--report", type=Path, default=REPORT, help="markdown report to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    import gradio as gr
    from gradio_client import Client, handle_file

    from explorer.data import resolve_data_dir
    from explorer.render import png_bytes
    from explorer.ui import Catalog, Services, build_demo, launch
    from explorer.ui.common import FileStore
    from explorer.ui.demo import default_model
    from explorer.ui.digits import example_digit
    from explorer.ui.grid import grid_picture
    from explorer.ui.interpolate import interpolation

    catalog = Catalog.from_folder(args.trained, download=False)
    source = shown(Path(args.trained))
    if not catalog.latent_names:
        source = "tiny random models (no latent models found in trained/)"
        catalog = Catalog.from_folder(tiny_folder(), download=False)
    services = Services(catalog)
    name = args.model or default_model(catalog)
    data_dir = resolve_data_dir(None)
    print(f"models from {source}; timing {name}; torch threads {torch.get_num_threads()}")

    # ---- 1. server-side time, handlers called directly
    store = FileStore()
    digit_a, _ = example_digit(services.example, name, 0)
    digit_b, _ = example_digit(services.example, name, 1)
    # The app remembers grids and encoded digits, so the same call again costs nothing: each
    # timed call draws a grid around a new random code (its own seed) and interpolates between
    # a new pair of digits, work a user's new setting makes.
    seeds = itertools.count(1)
    pairs = iter([example_digit(services.example, name, i)[0] for i in range(2, 2 * args.repeats + 6)])
    grid_wall, grid_cpu = timed(lambda: grid_picture(services, name, *{**GRID_ARGS, "fixed": "random draw (seed)",
                                                                         "seed": next(seeds)}.values()), args.repeats)
    interp_wall, interp_cpu = timed(lambda: interpolation(services, name, next(pairs), next(pairs), "slerp", STEPS,
                                                          None), args.repeats)
    load_after_server = os.getloadavg()

    # ---- 2. round trips, each against a no-op twin returning the same outputs
    grid_out = grid_picture(services, name, *GRID_ARGS.values())
    interp_out = interpolation(services, name, digit_a, digit_b, "slerp", STEPS, None)
    demo = build_demo(catalog)
    with demo:  # the no-op twins take inputs of the same kinds, so uploads count on both sides
        with gr.Row(visible=False):
            g_in = [gr.Textbox(), gr.Number(), gr.Number(), gr.Number(), gr.Number(), gr.Textbox(),
                    gr.Number(), gr.Image(image_mode="L", type="numpy"), gr.Number()]
            g_out = [gr.Image(type="pil", format="png"), gr.JSON()]
            i_in = [gr.Textbox(), gr.Image(image_mode="L", type="numpy"), gr.Image(image_mode="L", type="numpy"),
                    gr.Textbox(), gr.Number(), gr.Number()]
            i_out = [gr.Image(type="pil", format="png"), gr.LinePlot(), gr.Markdown()]
            go = gr.Button()
        go.click(lambda *_: grid_out, g_in, g_out, api_name="noop_grid", concurrency_limit=2)
        go.click(lambda *_: interp_out, i_in, i_out, api_name="noop_interpolate", concurrency_limit=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=port,
                       quiet=True, ssr_mode=False)
    client = Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="latency-client-"))
    a_file, b_file = (store.write(png_bytes(d), "digit", ".png") for d in (digit_a, digit_b))
    calls = {
        "grid": lambda: client.predict(name, *GRID_ARGS.values(), api_name="/grid"),
        "noop_grid": lambda: client.predict(name, *GRID_ARGS.values(), api_name="/noop_grid"),
        "interpolate": lambda: client.predict(name, handle_file(a_file), handle_file(b_file), "slerp", STEPS,
                                              None, api_name="/interpolate"),
        "noop_interpolate": lambda: client.predict(name, handle_file(a_file), handle_file(b_file), "slerp",
                                                   STEPS, None, api_name="/noop_interpolate"),
    }
    trips: dict[str, list[float]] = {k: [] for k in calls}
    for fn in calls.values():  # warm-up
        fn()
    for _ in range(args.repeats):
        for key, fn in calls.items():
            t = time.perf_counter()
            fn()
            trips[key].append(time.perf_counter() - t)
    client.close()
    demo.close()
    load_after = os.getloadavg()

    # ---- report
    rows = [
        ("10x10 grid", grid_wall, grid_cpu, trips["grid"], trips["noop_grid"]),
        (f"{STEPS}-step interpolation", interp_wall, interp_cpu, trips["interpolate"], trips["noop_interpolate"]),
    ]
    lines = [
        "# App latency",
        "",
        f"Command: `{report.command('benchmarks.app_latency', argv)}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} thread(s), gradio {gr.__version__}  ",
        f"Models: {source}; timed on `{name}` ({catalog.checkpoint(name, 'latent').model.latent_dim}-D code); test data: "
        f"{data_dir or 'none (examples are model samples)'}  ",
        f"Load average (1 min) after the server-side runs {load_after_server[0]:.2f}, after the round "
        f"trips {load_after[0]:.2f}: other processes shared the {os.cpu_count()} cores.",
        "",
        "## Server-side time (handler called directly, median of "
        f"{args.repeats})",
        "",
        "| work | wall ms | thread CPU ms | target |",
        "|---|---|---|---|",
    ]
    for label, wall, cpu, _, _ in rows:
        target = "<= 30 ms" if "grid" in label else ""
        lines.append(f"| {label} | {ms(statistics.median(wall))} | {ms(statistics.median(cpu))} | {target} |")
    lines += [
        "",
        f"## Round trip through gradio_client ({args.repeats} calls each, alternating)",
        "",
        "| endpoint | p50 ms | p95 ms | no-op floor p50 ms | floor p95 ms | p50 / floor | p95 / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, _, _, real, floor in rows:
        lines.append(
            f"| {label} | {ms(pct(real, .5))} | {ms(pct(real, .95))} | {ms(pct(floor, .5))} | "
            f"{ms(pct(floor, .95))} | {pct(real, .5) / pct(floor, .5):.2f} | {pct(real, .95) / pct(floor, .95):.2f} |")
    lines += ["", "Target: round trips within 1.3x of the floor."]
    print("\n".join(lines))
    report.write(args.report, lines)


if __name__ == "__main__":
    main()
