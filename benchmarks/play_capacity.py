"""Play capacity: a lecture hall pressing Play on the Pixel-by-pixel tab at once.

    python -m benchmarks.play_capacity [--trained trained] [--model mnist-pixelcnn]
                                       [--players 1 20 60] [--opened 60] [--distinct 20] [--speed 4]
                                       [--timeout 90] [--report PATH]

Starts `python app.py` on a free loopback port (as `benchmarks.load` does), plays once (the
first play after start-up, as a lecturer rehearsing: it renders the frames that plays on the
same settings then share, and the receptive fields) and then, for each count N of `--players`, opens N gradio_client sessions, then has them all press Play on
`/pixel_play` at the same moment with the tab's opening settings (samples, temperature, seed;
`--speed` pixels per frame, the tab's own by default), from the first pixel to the last. Each
`--opened` count does the same with sessions that have already made one call (`/select_model`,
as a student who has used the page before pressing Play): Gradio builds a session's state,
a copy of every block's config, at its first event, on the server's event loop (about 0.2 s
for this app, one session after another), so many first events at once queue behind each
other. Each `--distinct` count plays on opened sessions with a seed per player, so no two plays
share frames: the worst case, where every play is rendered on its own.

Per play: the first-frame latency (Play pressed to first frame received) and the finish time
(pressed to last frame), against the nominal playback time, frames / FPS. Reports p50 and
p95 per level, the worst finish over nominal, the frames each play showed (a play that falls
behind skips frames to stay on time), errors and plays not finished within
`--timeout` seconds past the nominal time (they are cancelled), and the CPU time the server
used over the level. Target (issue 16): at 60
players the first frame within 2 s (p95) and every play within 1.5x its playback time.

The clients do not download the pictures (a browser fetches them as plain files); all the
players' sessions are polled by one thread every POLL seconds, and they connect without
loading certificates (`ssl_verify=False`: loopback HTTP has no TLS; gradio_client makes a new
httpx client for every call and every stream, and loading the CA bundle cost 81 ms of CPU
each, so 60 players spent about 8 s of the benchmark's CPU sending their Play and held back
the first frames by seconds). The benchmark's own CPU time is reported per level beside the
server's, to tell a slow client from a slow server. The load average is reported beside each level:
other work on the machine (trainings) slows the server. Writes benchmarks/reports/play_capacity.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from explorer.ui import pixels

from . import report
from .load import free_port, start_server

REPO = Path(__file__).resolve().parents[1]
REPORT = report.REPORTS / "play_capacity.md"
POLL = 0.02          # seconds between looks at every player's stream
SIDE = 28            # the shipped autoregressive models draw 28x28 images


@dataclass
class Play:
    """One player's play, timed from the moment Play was pressed."""

    first: float | None = None      # seconds to the first frame
    finish: float | None = None     # seconds to the last frame
    frames: int = 0
    error: str | None = None


def press_play(clients: list, seeds: list[int], model: str, speed: int, timeout: float) -> list[Play]:
    """Every client presses Play at once; the frames are watched until all finish or time runs out."""
    last_pixel = SIDE * SIDE       # Play from the last pixel starts again at the first
    start = time.monotonic()
    jobs = [client.submit(model, pixels.START_SAMPLES, pixels.START_TEMPERATURE, seed, 0, None, None, last_pixel,
                          speed, api_name="/pixel_play") for client, seed in zip(clients, seeds)]
    plays = [Play() for _ in jobs]
    deadline = start + timeout
    waiting = set(range(len(jobs)))
    while waiting and time.monotonic() < deadline:
        time.sleep(POLL)
        now = time.monotonic() - start
        for i in list(waiting):
            job, play = jobs[i], plays[i]
            if play.first is None and job.outputs():
                play.first = now
            if job.done():
                waiting.discard(i)
                play.frames = len(job.outputs())
                error = job.exception()
                if error is not None:
                    play.error = f"{type(error).__name__}: {str(error)[:120]}"
                else:
                    play.finish = now
    for i in waiting:
        jobs[i].cancel()
        plays[i].frames = len(jobs[i].outputs())
        plays[i].error = f"not finished within {timeout:.0f} s"
    return plays


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, user and system (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def level_row(label: str, plays: list[Play], nominal: float, cpu: float, client_cpu: float) -> str:
    firsts = [p.first for p in plays if p.first is not None]
    finishes = [p.finish for p in plays if p.finish is not None]
    errors = sum(p.error is not None for p in plays)
    worst = max(finishes) / nominal if finishes else float("nan")
    p50 = statistics.median(firsts) if firsts else float("nan")
    f50 = statistics.median(finishes) if finishes else float("nan")
    shown = [p.frames for p in plays if p.error is None]
    least = min(shown) if shown else 0
    return (f"| {label} | {len(plays)} | {errors} | {p50:.2f} | {report.percentile(firsts, 0.95):.2f} | "
            f"{f50:.2f} | {report.percentile(finishes, 0.95):.2f} | {nominal:.2f} | {worst:.2f} | "
            f"{statistics.median(shown) if shown else 0:.0f} | {least} | "
            f"{cpu:.2f} | {client_cpu:.2f} | {os.getloadavg()[0]:.1f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trained", type=Path, default=REPO / "trained")
    p.add_argument("--model", default="mnist-pixelcnn")
    p.add_argument("--players", type=int, nargs="*", default=[1, 20, 60], help="players sharing the settings")
    p.add_argument("--opened", type=int, nargs="*", default=[60], help="players whose session made a call before")
    p.add_argument("--distinct", type=int, nargs="*", default=[20], help="players with a seed each (opened)")
    p.add_argument("--latent-model", default="mnist-vae", help="the model of the call that opens a session")
    p.add_argument("--speed", type=int, default=pixels.START_SPEED, help="pixels per frame")
    p.add_argument("--timeout", type=float, default=90, help="seconds past the nominal playback time")
    p.add_argument("--report", type=Path, default=REPORT)
    args = p.parse_args(argv)
    from gradio_client import Client

    frames = len(pixels.frame_indices(SIDE * SIDE, 0, args.speed))
    nominal = frames / pixels.FPS
    port = free_port()
    lines = [f"# Play capacity: {', '.join(map(str, args.players))} players pressing Play at once "
             f"(then {', '.join(map(str, args.opened)) or 'none'} on opened sessions, "
             f"{', '.join(map(str, args.distinct)) or 'none'} with a seed each)", "",
             f"Command: `{report.command('benchmarks.play_capacity', argv if argv is not None else sys.argv[1:])}`  ",
             f"Machine: {report.machine()}; {os.cpu_count()} cores; load average before: "
             f"{os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)  ",
             f"Model: `{args.model}` from {args.trained.name}/; server `python app.py` on loopback; each player "
             f"its own gradio_client session. A play: {frames} frames ({args.speed} pixels per frame) at "
             f"{pixels.FPS} a second, nominally {nominal:.2f} s. Times in seconds from pressing Play.", "",
             "| players | plays | errors | first frame p50 | first frame p95 | finish p50 | finish p95 | "
             "nominal | worst finish / nominal | frames shown p50 | frames shown min | server CPU s | client CPU s | "
             "load average |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    server = start_server(args.trained, port)
    notes: list[str] = []
    try:
        url = f"http://127.0.0.1:{port}/"
        # First a rehearsal, as a lecturer presses Play once before the lecture: the first play
        # after start-up, which renders the frames the hall's plays then share.
        levels = ([(0, False, False)] + [(n, False, False) for n in args.players] + [(n, True, False) for n in args.opened]
                  + [(n, True, True) for n in args.distinct])
        with ThreadPoolExecutor(8) as pool:
            for level, (n, opened, distinct) in enumerate(levels):
                rehearsal = level == 0
                n = max(n, 1)
                clients = list(pool.map(lambda _: Client(url, verbose=False, download_files=False, ssl_verify=False), range(n)))
                if opened:
                    list(pool.map(lambda c: c.predict(args.latent_model, 0, 1, None, None, api_name="/select_model"),
                                  clients))
                seeds = [1000 + i if distinct else pixels.START_SEED for i in range(n)]
                before, client_before = cpu_seconds(server.pid), time.process_time()
                plays = press_play(clients, seeds, args.model, args.speed, nominal + args.timeout)
                label = ("1, the first play after start-up" if rehearsal else f"{n} opened, a seed each" if distinct
                         else f"{n} opened" if opened else f"{n}")
                lines.append(level_row(label, plays, nominal, cpu_seconds(server.pid) - before,
                                       time.process_time() - client_before))
                print(lines[-1], flush=True)
                notes += [f"- {label}: {play.error}" for play in plays if play.error][:5]
                if server.poll() is not None:
                    notes.append(f"- the server exited (code {server.returncode}) during {label}; "
                                 f"see {server.log_path}")
                    break
                for client in clients:
                    client.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except Exception:  # noqa: BLE001  a server that will not stop is killed
            server.kill()
    lines += ["", "Target: at 60 players, first frame p95 <= 2 s and worst finish / nominal <= 1.5.",
              "Players on the same settings share one rendering of the frames; with a seed each, every play "
              "is rendered on its own (about 12 ms a frame) in the server's render pool, one thread a core. "
              f"A play more than {pixels.LATE} s behind skips frames to stay on time: fewer frames shown "
              "than the play has means the server could not send them all."]
    if notes:
        lines += ["", "Problems:", *notes]
    report.write(args.report, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
