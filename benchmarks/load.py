"""Load: a lecture hall's worth of clients on the app, over loopback only, bounded in time.

    python -m benchmarks.load [--trained trained] [--clients 20 100] [--calls 3] [--rounds 1]
                              [--soak-seconds 300] [--soak-clients 10] [--rss-every 30]
                              [--warm-seconds 120] [--flood 8] [--report PATH]

    python -m benchmarks.load --clients --flood 0 --soak-seconds 1800 --rss-every 60 \
        --report benchmarks/reports/soak.md          # the 30-minute memory soak alone

Starts `python app.py` on a free loopback port, waits until its start-up work is done (its
CPU falls idle: the warm-up of caches goes on after it starts serving), and drives it with
gradio_client, one client (one session, as one browser tab) per simulated student:

1. For each client count N: N clients at once, each making `--calls` calls in turn over the
   interactive endpoints (`/grid` with its own dims and seed, `/interpolate`, `/a_from_example`,
   `/select_model`); `--rounds` such bursts one after another, their calls pooled (one burst's
   p95 rests on a few slow calls, and this machine's bursts vary), each round's p95 listed
   too. Reports errors (with their messages, e.g. "Queue is full"), p50 / p95
   latency per endpoint, and the CPU time per call of the server and of this benchmark's own
   clients (they share the machine's cores, so the split says whose time the wall holds).
2. A PNG flood: `--flood` simultaneous uploads and drawings of a 97 kB PNG of 8,880 x 8,880
   pixels (a decompression bomb); reports how they were answered and the server's peak RSS
   above its level before.
3. A soak: `--soak-clients` clients calling without pause for `--soak-seconds`; reports
   errors, latencies, CPU per call, RSS growth from start to end, and the growth after its
   first `--warm-seconds` (the app's caches and the allocator's pools fill in the first
   minutes of calls; what grows after that is what would grow without bound).

The clients are made before each run's clock starts (a client fetches the page's config, as a
browser opening the page does). All of them share one TLS context: gradio_client otherwise
builds one, loading the CA bundle, for every request and every file download, even over plain
http (about 20 ms of CPU each, two or more per call: more than the server's own work on a
grid), which a browser never does. `/interpolate` sends back as its two digits a preview
already on the server (the upload of a drawn '7', made once before the runs), by its path, as
the page does, rather than uploading a file on every call. The server's RSS is sampled every
0.1 s from /proc (Linux), and its readings every --rss-every seconds of the soak are listed, to
tell memory that levels off from memory that keeps growing. Writes benchmarks/reports/load.md.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import report

REPO = Path(__file__).resolve().parents[1]
REPORT = report.REPORTS / "load.md"
ENDPOINTS = ("/grid", "/interpolate", "/a_from_example", "/select_model")
# One TLS context for every client and request (see the module docstring); never used on
# loopback's plain http, only spared from being built again and again.
TLS = ssl.create_default_context()
# Start-up is over when the server uses less than this share of a core over SETTLE_WINDOW s.
SETTLE_SHARE, SETTLE_WINDOW = 0.1, 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def settle(pid: int, limit: float = 600) -> float:
    """Wait until the server's start-up work (cache warm-up after it starts serving) is done:
    its CPU use below SETTLE_SHARE of a core over SETTLE_WINDOW seconds. Returns the wait."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = cpu_seconds(pid)
        time.sleep(SETTLE_WINDOW)
        if cpu_seconds(pid) - before < SETTLE_SHARE * SETTLE_WINDOW:
            break
    return time.monotonic() - start


class CpuSplit:
    """CPU seconds spent by the server and by this process (the clients) since it was made."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.server, self.clients = cpu_seconds(pid), own_cpu_seconds()

    def line(self, calls: int) -> str:
        server, clients = cpu_seconds(self.pid) - self.server, own_cpu_seconds() - self.clients
        per = max(calls, 1) / 1000
        return (f"CPU per call: server {server / per:.0f} ms, the benchmark's clients {clients / per:.0f} ms "
                f"({server:.1f} s and {clients:.1f} s over {calls} calls).")


def make_clients(url: str, n: int, downloads: Path) -> list:
    """n gradio_client clients, each its own session (a student's browser tab), made a few at a time."""
    from gradio_client import Client

    def one(_: int):
        return Client(url, verbose=False, download_files=str(downloads), ssl_verify=TLS, analytics_enabled=False)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def preview_on_server(url: str, png: Path) -> dict:
    """Upload `png` once as digit A; the preview the app sent back, named by its server path
    (a bare path, as the page sends a preview back: gradio_client uploads a tagged one anew)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False, ssl_verify=TLS, analytics_enabled=False)
    try:
        preview, _ = client.predict(handle_file(str(png)), api_name="/a_from_upload")
    finally:
        client.close()
    return {"path": preview["path"]}


def close_clients(clients: list) -> None:
    for client in clients:
        client.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """The server's RSS every 0.1 s: its peak since the last reset, and a trace of it every
    `every` seconds since then (to tell memory that levels off from memory that keeps growing)."""

    def __init__(self, pid: int, every: float = 30.0) -> None:
        self.pid, self.every, self.peak, self._stop = pid, every, 0.0, threading.Event()
        self.trace: list[float] = []
        self._since = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = rss_mb(self.pid)
            except OSError:
                return
            self.peak = max(self.peak, now)
            if time.monotonic() - self._since >= self.every * len(self.trace):
                self.trace.append(now)
            time.sleep(0.1)

    def reset(self) -> float:
        self.peak = now = rss_mb(self.pid)
        self.trace, self._since = [now], time.monotonic()
        return now

    def stop(self) -> None:
        self._stop.set()


def bomb_png(side: int = 8880) -> bytes:
    """A grey PNG of side x side pixels, all zero: tiny on disk, huge decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = zlib.compress(b"\x00" * (side + 1) * side, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def digit_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).line([(10, 5), (18, 5), (12, 23)], fill=255, width=3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def start_server(trained: Path, port: int, poll: float = 1.0) -> subprocess.Popen:
    """`python app.py` on `trained` and a loopback `port`, returned once its /config answers
    (asked every `poll` seconds); its output goes to a log file named in any error."""
    env = {**os.environ, "LATENT_EXPLORER_TRAINED": str(trained), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(Path(tempfile.gettempdir()) / f"load-server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log.name  # type: ignore[attr-defined]
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited early; see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    proc.kill()
    raise RuntimeError("app.py did not start serving in 10 minutes")


class Calls:
    """Latencies and errors per endpoint, from many threads."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
        self.errors: dict[str, list[str]] = {e: [] for e in ENDPOINTS}
        self._lock = threading.Lock()

    def call(self, client, endpoint: str, args: tuple) -> None:
        start = time.perf_counter()
        try:
            client.predict(*args, api_name=endpoint)
            with self._lock:
                self.times[endpoint].append(time.perf_counter() - start)
        except Exception as err:  # noqa: BLE001  every failure is counted and reported
            with self._lock:
                self.errors[endpoint].append(f"{type(err).__name__}: {str(err)[:120]}")

    def rows(self) -> list[str]:
        out = []
        for e in ENDPOINTS:
            t = self.times[e]
            if not t and not self.errors[e]:
                continue
            p50 = statistics.median(t) if t else float("nan")
            p95 = self.p95(e)
            out.append(f"| {e} | {len(t) + len(self.errors[e])} | {len(self.errors[e])} | {p50:.2f} | {p95:.2f} |")
        return out

    def extend(self, other: "Calls") -> None:
        for e in ENDPOINTS:
            self.times[e] += other.times[e]
            self.errors[e] += other.errors[e]

    def p95(self, endpoint: str) -> float:
        return report.percentile(self.times[endpoint], 0.95)

    def count(self) -> int:
        return sum(len(v) for v in self.times.values()) + self.error_count()

    def error_count(self) -> int:
        return sum(len(v) for v in self.errors.values())

    def messages(self) -> list[str]:
        seen: dict[str, int] = {}
        for v in self.errors.values():
            for m in v:
                seen[m] = seen.get(m, 0) + 1
        return [f"- {n} x {m}" for m, n in sorted(seen.items(), key=lambda kv: -kv[1])]


def one_call(calls: Calls, client, rng: random.Random, model: str, digit, k: int) -> None:
    endpoint = ENDPOINTS[k % len(ENDPOINTS)]
    if endpoint == "/grid":
        dx = rng.randrange(0, 4)
        args = (model, dx, (dx + 1) % 4, 2.5, 9, "random draw (seed)", rng.randrange(10**6), None, None)
    elif endpoint == "/interpolate":
        args = (model, digit, digit, rng.choice(["lerp", "slerp"]), 10, None)
    elif endpoint == "/a_from_example":
        args = (model, rng.randrange(1000))
    else:
        args = (model, 0, 1, None, None)
    calls.call(client, endpoint, args)


def concurrent(clients: list, per_client: int, model: str, digit) -> Calls:
    """Every client at once, each making `per_client` calls in turn."""
    calls = Calls()

    def run(i: int) -> None:
        rng = random.Random(i)
        for k in range(per_client):
            one_call(calls, clients[i], rng, model, digit, i + k)

    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(run, range(len(clients))))
    return calls


def soak(clients: list, seconds: float, model: str, digit) -> Calls:
    """Every client calling without pause for `seconds`."""
    calls = Calls()
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        rng, k = random.Random(1000 + i), i
        while time.monotonic() < stop:
            one_call(calls, clients[i], rng, model, digit, k)
            k += 1

    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(run, range(len(clients))))
    return calls


def flood(clients: list, bomb: str) -> tuple[dict[str, int], list[str]]:
    """As many uploads and drawings of the bomb at once as there are clients, half of each:
    (answered with a message, other outcomes)."""
    from gradio_client import handle_file

    clear, other = {"app": 0, "framework": 0}, []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            if i % 2:
                clients[i].predict(handle_file(bomb), api_name="/a_from_upload")
            else:
                clients[i].predict({"background": None, "layers": [], "composite": handle_file(bomb)},
                               api_name="/a_from_drawing")
            outcome = "accepted"
        except Exception as err:  # noqa: BLE001
            outcome = str(err)
        with lock:
            if "too big" in outcome:
                clear["app"] += 1  # the app's own header check (intake.open_image)
            elif "DecompressionBomb" in outcome:
                clear["framework"] += 1  # Gradio's own decoding, stopped by PIL's limit (none expected)
            else:
                other.append(outcome[:160])

    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(run, range(len(clients))))
    return clear, other


def after_warm_up(sampler: RssSampler, warm_seconds: float) -> list[str]:
    """The soak's growth once its first `warm_seconds` are over (the app's caches and the
    allocator's pools fill in the first minutes of calls), from the RSS trace."""
    skip = math.ceil(warm_seconds / sampler.every)
    if warm_seconds <= 0 or len(sampler.trace) <= skip + 1:
        return []
    start, end = sampler.trace[skip], sampler.trace[-1]
    minutes = (len(sampler.trace) - 1 - skip) * sampler.every / 60
    return [f"After the first {warm_seconds:g} s: RSS {start:.0f} -> {end:.0f} MB ({end - start:+.0f} MB over "
            f"{minutes:.1f} minutes, {(end - start) / max(minutes, 1e-9):+.1f} MB a minute)."]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trained", type=Path, default=REPO / "trained")
    p.add_argument("--model", default="mnist-vae")
    p.add_argument("--clients", type=int, nargs="*", default=[20, 100],
                   help="client counts for the concurrency runs (none: only the flood and the soak)")
    p.add_argument("--calls", type=int, default=3, help="calls per client in each concurrency run")
    p.add_argument("--rounds", type=int, default=1, help="concurrency runs per client count, pooled")
    p.add_argument("--soak-seconds", type=float, default=300)
    p.add_argument("--soak-clients", type=int, default=10)
    p.add_argument("--rss-every", type=float, default=30, help="seconds between the soak's RSS readings")
    p.add_argument("--warm-seconds", type=float, default=120,
                   help="the soak's first seconds, left out of its growth after warm-up")
    p.add_argument("--flood", type=int, default=8, help="simultaneous bomb uploads (and as many drawings)")
    p.add_argument("--report", type=Path, default=REPORT)
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="load-"))
    (work / "digit.png").write_bytes(digit_png())
    (work / "bomb.png").write_bytes(bomb_png())
    downloads = work / "downloads"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = start_server(args.trained, port)
    sampler = RssSampler(server.pid, args.rss_every)
    parts = ([f"{', '.join(map(str, args.clients))} concurrent clients"] if args.clients else []) \
        + (["a PNG flood"] if args.flood else []) + ([f"a {args.soak_seconds:g} s soak"] if args.soak_seconds > 0 else [])
    lines = [f"# Load: {', '.join(parts)}", "",
             f"Command: `{report.command('benchmarks.load', argv if argv is not None else sys.argv[1:])}`  ",
             f"Machine: {report.machine()}; load average before: {os.getloadavg()[0]:.1f} "
             f"on {os.cpu_count()} cores  ",
             f"Model: `{args.model}` from {args.trained.name}/; server `python app.py` on loopback; "
             "latencies in seconds, round trip through gradio_client, one client (one session) per "
             "simulated student. The clients run in this benchmark's process on the same cores as the "
             "server: each run says how the CPU time split between the two.", ""]
    try:
        waited = settle(server.pid)
        digit = preview_on_server(url, work / "digit.png")
        start_rss = sampler.reset()
        lines += [f"Server RSS after start-up: {start_rss:.0f} MB; its start-up work (cache warm-up) "
                  f"went on {waited:.0f} s after it began serving, before the first run.", ""]
        for n in args.clients:
            clients = make_clients(url, n, downloads)
            before = sampler.reset()
            t0, cpu = time.monotonic(), CpuSplit(server.pid)
            calls, rounds = Calls(), []
            for _ in range(args.rounds):
                rounds.append(concurrent(clients, args.calls, args.model, digit))
                calls.extend(rounds[-1])
            times = (f"{args.rounds} rounds one after another, {args.calls} calls per client each"
                     if args.rounds > 1 else f"{args.calls} calls each")
            per_round = ([f"p95 per round, grid / interpolation (s): "
                          + ", ".join(f"{r.p95('/grid'):.2f} / {r.p95('/interpolate'):.2f}" for r in rounds) + "."]
                         if args.rounds > 1 else [])
            section = [f"## {n} concurrent clients, {times} ({time.monotonic() - t0:.0f} s, "
                       f"load average {os.getloadavg()[0]:.1f})", "",
                       "| endpoint | calls | errors | p50 s | p95 s |", "|---|---|---|---|---|", *calls.rows(), "",
                       *per_round, cpu.line(calls.count()),
                       f"Errors: {calls.error_count()}. RSS {before:.0f} -> {rss_mb(server.pid):.0f} MB "
                       f"(peak {sampler.peak:.0f} MB).", *calls.messages(), ""]
            lines += section
            print(section, flush=True)
            close_clients(clients)
        if args.flood:
            clients = make_clients(url, 2 * args.flood, downloads)
            before = sampler.reset()
            clear, other = flood(clients, str(work / "bomb.png"))
            lines += [f"## PNG flood: {args.flood} uploads + {args.flood} drawings of an 8,880 x 8,880 PNG "
                      "(97 kB) at once", "",
                      f"Refused before decoding: {clear['app']} by the app's header check (its message), "
                      f"{clear['framework']} by PIL's limit inside Gradio's own decoding (Gradio's message); "
                      f"otherwise: {len(other)}. "
                      f"Peak RSS {sampler.peak:.0f} MB, {sampler.peak - before:+.0f} MB over {before:.0f} MB.",
                      *[f"- {m}" for m in sorted(set(other))[:5]], ""]
            print(lines[-4:], flush=True)
            close_clients(clients)
        if args.soak_seconds > 0:
            clients = make_clients(url, args.soak_clients, downloads)
            before = sampler.reset()
            cpu = CpuSplit(server.pid)
            calls = soak(clients, args.soak_seconds, args.model, digit)
            after = rss_mb(server.pid)
            lines += [f"## Soak: {args.soak_clients} clients without pause for {args.soak_seconds:g} s "
                      f"(load average {os.getloadavg()[0]:.1f})", "",
                      "| endpoint | calls | errors | p50 s | p95 s |", "|---|---|---|---|---|", *calls.rows(), "",
                      cpu.line(calls.count()),
                      f"Errors: {calls.error_count()}. RSS {before:.0f} -> {after:.0f} MB "
                      f"({after - before:+.0f} MB; peak {sampler.peak:.0f} MB).",
                      f"RSS every {sampler.every:g} s from the start of the soak (MB): "
                      + ", ".join(f"{mb:.0f}" for mb in sampler.trace) + ".", *after_warm_up(sampler, args.warm_seconds),
                      *calls.messages(), ""]
            close_clients(clients)
    finally:
        sampler.stop()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    report.write(args.report, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
