"""Start-up: how soon `python app.py` answers, and how long each tab's first call takes then.

    python -m benchmarks.startup [--trained trained] [--runs 2] [--busy 2] [--report PATH]

For each condition, idle and busy (`--busy` processes spinning on the CPU beside the server,
at the same priority: a machine with other work on it), `--runs` times:

1. start `python app.py` on a free loopback port and time until its /config answers (the
   page can be opened);
2. at once, one call per tab (`FIRST_CALLS`, the same calls the ZeroGPU test makes), each
   timed, while the server's warm-up runs behind it;
3. then the first grid and interpolation of every latent model and the first streamed frame
   of every autoregressive model's and VQ-VAE's play, on that still-fresh server.

Targets (issue 31): serving within 8 s idle and 15 s busy; every tab's first call, and every
model's first grid, interpolation and play, under 1 s. Prints the figures and writes
benchmarks/reports/startup.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from explorer.ui.pixels import START_SAMPLES, START_SPEED

from . import report
from .load import free_port, start_server

REPO = Path(__file__).resolve().parents[1]
REPORT = report.REPORTS / "startup.md"


def first_calls(client, handle_file, whole_streams: bool = True) -> dict[str, Callable[[], Any]]:
    """One call per tab of the app on the shipped models, by tab, not yet made. A play returns
    all its frames, or (`whole_streams` False) only its first, the rest cancelled."""
    image = {}

    def stream(*args, api_name):
        job = client.submit(*args, api_name=api_name)
        return list(job) if whole_streams else [first_output(job)]

    def digit():
        if "x" not in image:
            image["x"] = handle_file(client.predict("mnist-vae", 3, api_name="/encode_from_example")[0])
        return image["x"]

    return {
        "Latent grid": lambda: client.predict("mnist-ae", 1, 0, 1.5, 5, "prior mean", 0, None, None,
                                              api_name="/grid"),
        "Interpolation": lambda: client.predict("mnist-vae", digit(), digit(), "lerp", 5, None, api_name="/interpolate"),
        "Encode (a GAN's inversion)": lambda: client.predict("mnist-dcgan", digit(), None, api_name="/encode"),
        "Directions": lambda: client.predict("mnist-vae", api_name="/dimension_ranking"),
        "AE vs VAE": lambda: client.predict("mnist-ae", "mnist-vae", 1, 2, 2.0, 5, "random draw (seed)", 3, None,
                                            api_name="/compare"),
        "2-D manifold": lambda: client.predict("mnist-vae2d", 5, None, api_name="/manifold"),
        "Training replay": lambda: client.predict("mnist-dcgan", 3, api_name="/replay_epoch"),
        "Pixel by pixel (Play)": lambda: stream("mnist-pixelcnn", START_SAMPLES, 1.0, 0, 0, None, None, 0, START_SPEED,
                                                api_name="/pixel_play"),
        "Discrete codes (Play)": lambda: stream("mnist-vqvae", None, 5, 0, api_name="/codes_play"),
        "Likelihood": lambda: client.predict(digit(), api_name="/likelihood"),
        "Three kinds of model": lambda: client.predict("mnist", digit(), api_name="/three_kinds"),
    }


def spin() -> None:
    while True:
        pass


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def first_output(job) -> Any:
    """A streamed job's first update; the rest of the stream is cancelled."""
    first = next(iter(job))
    job.cancel()
    return first


def first_frame(job) -> float:
    """Seconds until a streamed job's first update arrives (then it is cancelled)."""
    return timed(lambda: first_output(job))


def served_models(config: dict) -> dict[str, list[str]]:
    """The model names each picker of the page offers, by picker label."""
    pickers: dict[str, list[str]] = {}
    for c in config["components"]:
        props = c.get("props", {})
        if c.get("type") == "dropdown" and props.get("choices"):
            pickers.setdefault(str(props.get("label")), [v for _, v in props["choices"]])
    return pickers


def one_start(trained: Path, downloads: Path) -> dict[str, Any]:
    from gradio_client import Client, handle_file

    port = free_port()
    start = time.perf_counter()
    proc = start_server(trained, port, poll=0.05)
    try:
        served = time.perf_counter() - start
        answer = httpx.get(f"http://127.0.0.1:{port}/config", timeout=10)
        config = answer.json()
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(downloads))
        tabs = {tab: timed(call) for tab, call in first_calls(client, handle_file, whole_streams=False).items()}
        digits = [handle_file(client.predict("mnist-vae", i, api_name="/encode_from_example")[0]) for i in (4, 5)]
        models: dict[str, tuple[float, float]] = {}  # (first call, second call with other inputs)
        names = served_models(config)
        for name in names.get("model", []):
            models[f"grid {name}"] = tuple(timed(lambda seed=seed: client.predict(  # type: ignore[misc]
                name, 0, 1, 2.0, 5, "random draw (seed)", seed, None, None, api_name="/grid")) for seed in (0, 1))
        for name in names.get("model", []):
            models[f"interpolation {name}"] = tuple(timed(lambda d=d: client.predict(  # type: ignore[misc]
                name, d, d, "lerp", 5, None, api_name="/interpolate")) for d in digits)
        for name in next((v for k, v in names.items() if "autoregressive" in k.lower()), []):
            # What Play sends with the tab's defaults: from pixel 1, START_SAMPLES samples, a
            # frame every START_SPEED pixels; timed to the first frame, on two seeds.
            models[f"play {name} (first frame)"] = tuple(first_frame(client.submit(  # type: ignore[misc]
                name, START_SAMPLES, 1.0, seed, 0, None, None, 0, START_SPEED, api_name="/pixel_play")) for seed in (0, 1))
        client.close()
        return {"served": served, "tabs": tabs, "models": models}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trained", type=Path, default=REPO / "trained")
    p.add_argument("--runs", type=int, default=2, help="starts per condition")
    p.add_argument("--busy", type=int, default=2, help="spinning processes for the busy condition (0: idle only)")
    p.add_argument("--report", type=Path, default=REPORT)
    args = p.parse_args(argv)
    downloads = Path(tempfile.mkdtemp(prefix="startup-"))
    results: dict[str, list[dict[str, Any]]] = {}
    for condition in (["idle", "busy"] if args.busy else ["idle"]):
        spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy if condition == "busy" else 0)]
        for s in spinners:
            s.start()
        try:
            results[condition] = []
            for run in range(args.runs):
                found = one_start(args.trained, downloads)
                results[condition].append(found)
                print(f"{condition} run {run + 1}: served after {found['served']:.1f} s; slowest first call "
                      f"{max(found['tabs'].values()):.2f} s", flush=True)
        finally:
            for s in spinners:
                s.terminate()
    lines = ["# Start-up: time to serve, and each tab's first call on a fresh server", "",
             f"Command: `{report.command('benchmarks.startup', argv if argv is not None else sys.argv[1:])}`  ",
             f"Machine: {report.machine()}, {os.cpu_count()} cores; checkpoints: {args.trained.name}/; "
             f"busy = {args.busy} processes spinning beside the server at the same priority.", "",
             "Served = from starting `python app.py` until its /config answers (the page opens). The first "
             "calls follow at once, through gradio_client, while the warm-up runs behind the server; a play is "
             "timed to its first frame (the rest is paced playback), with the tab's default settings.", "",
             "| condition | served (s), each run | slowest tab's first call (s) | slowest model's first grid / "
             "interpolation / play frame (s) |", "|---|---|---|---|"]
    for condition, runs in results.items():
        served = ", ".join(f"{r['served']:.1f}" for r in runs)
        lines.append(f"| {condition} | {served} | "
                     f"{max(max(r['tabs'].values()) for r in runs):.2f} | "
                     f"{max((max(v[0] for v in r['models'].values()) for r in runs if r['models']), default=float('nan')):.2f} |")
    for condition, runs in results.items():
        lines += ["", f"## First call of each tab, {condition} (s, each run)", "", "| tab | seconds |", "|---|---|"]
        for tab in runs[0]["tabs"]:
            lines.append(f"| {tab} | " + ", ".join(f"{r['tabs'][tab]:.2f}" for r in runs) + " |")
        lines += ["", f"## First and second call of each model, {condition} (s, each run)", "",
                  "The second call has other inputs (another seed or digit), so it computes anew: what the "
                  "same work costs once the server is warm.", "",
                  "| call | first call | second call |", "|---|---|---|"]
        for call in runs[0]["models"]:
            lines.append(f"| {call} | " + ", ".join(f"{r['models'][call][0]:.2f}" for r in runs) + " | "
                         + ", ".join(f"{r['models'][call][1]:.2f}" for r in runs) + " |")
        median = statistics.median(r["served"] for r in runs)
        lines += ["", f"Median time to serve, {condition}: {median:.1f} s."]
    report.write(args.report, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
