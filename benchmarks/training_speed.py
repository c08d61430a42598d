"""Training speed per family: Adam steps per second in float32 vs bf16 autocast, channels_last
off and on, and before vs after the op-count work in the model code; plus a paired quality run.

    python -m benchmarks.training_speed --threads 1                         # every family, ~10 min
    python -m benchmarks.training_speed --only pixelcnn gated_pixelcnn --steps 5
    python -m benchmarks.training_speed --paired --data-dir ../shared/data  # + fp32 vs bf16 test NLL
    python -m benchmarks.training_speed --compile       # + eager vs torch.compile (minutes per family)

One step = what `python -m train` does per batch (the family's recipe: forward, backward,
optimizer), at batch 64 on random binary 28x28 images, each model at its shipped size. Each
setting is timed as the median of --steps steps after one warm-up step. "before" re-enables
what the op-count work removed (a mask multiply on kernels whose mask is all ones), so both
sides are measured in the same run. bf16 only pays where the hardware computes it (AMX,
AVX-512 BF16, a bf16 GPU); elsewhere it is emulated: the report says which this machine is.
For models without masked convolutions "before" and "after" run the same code, so their
after/before ratio shows the run's noise (on a busy shared machine, easily 0.7-1.3): read
smaller differences anywhere in the table as no difference.

--paired trains the same small PixelCNN twice (same seed, data and epochs), in fp32 and in
bf16, with `train.loop.fit`, and compares the exact test NLLs (always evaluated in float32).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch

from explorer import checkpoints
from explorer.models import build
from explorer.models.pixelcnn import MaskedConv2d
from train import families, precision
from train.loop import RunConfig, fit

from . import report

REPORT = report.REPORTS / "training_speed.md"
# Each family at the size it is shipped (or being trained) at.
SHIPPED_SIZES: dict[str, dict] = {
    "vae": {},
    "dcgan": {"channels": 32},
    "wgan_gp": {"channels": 16},
    "gan": {"hidden": 256, "g_steps": 3},
    "classifier": {},
    "pixelcnn": {},
    "gated_pixelcnn": {},
    "row_lstm": {},
    "diagonal_bilstm": {},
}
PAIRED = {"model": "pixelcnn", "config": {"channels": 16, "layers": 3}, "limit": 10_000, "epochs": 2}


@contextlib.contextmanager
def masks_always_applied() -> Iterator[None]:
    """The model code as it was before the op-count work: every mask multiplied on every call."""
    original = MaskedConv2d.masked_weight
    MaskedConv2d.masked_weight = lambda self: self.weight * self.mask
    try:
        yield
    finally:
        MaskedConv2d.masked_weight = original


SETTINGS = {"fp32 before": ("fp32", False, True), "fp32": ("fp32", False, False),
            "fp32 + CL": ("fp32", True, False), "bf16": ("bf16", False, False), "bf16 + CL": ("bf16", True, False)}


def time_settings(name: str, config: dict, steps: int, batch: int = 64) -> dict[str, float]:
    """Median seconds per training step of `name` in each of SETTINGS (precision, channels_last,
    masks always applied). The settings take turns step by step, so that drift in the machine's
    load (or the allocator warming up) falls on all of them alike."""
    recipe = families.RECIPES[name]
    cpu = torch.device("cpu")
    runs = {}
    for label, (prec, channels_last, _) in SETTINGS.items():
        torch.manual_seed(0)
        model = build(name, config).to(memory_format=precision.memory_format(channels_last)).train()
        opts = recipe.make_optimizers(model, {**(recipe.defaults or {})})
        x = precision.to_layout((torch.rand(batch, 1, 28, 28) > 0.5).float(), channels_last)
        runs[label] = (model, opts, x, torch.arange(batch) % 10)
    times: dict[str, list[float]] = {label: [] for label in SETTINGS}
    for i in range(steps + 1):
        for label, (prec, _, old_masks) in SETTINGS.items():
            model, opts, x, y = runs[label]
            with masks_always_applied() if old_masks else contextlib.nullcontext():
                t0 = time.perf_counter()
                with precision.autocast(prec, cpu):
                    recipe.step(model, opts, x, y)
                if i:                                # the first round warms caches up: not counted
                    times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) for label, t in times.items()}


def time_compiled(name: str, config: dict, steps: int, batch: int = 64) -> tuple[float, float, float]:
    """(eager, compiled) median seconds per step and compile seconds, in the precision `auto`
    picks here and the recipe's layout: does `torch.compile` (inductor) pay for training?

    The recipe's step is compiled as it is; `loss.backward()` and the optimizer step break the
    graph, so the compiled parts are the forward passes (and, through AOTAutograd, their
    backward passes). The first compiled step pays for compilation: reported apart."""
    recipe = families.RECIPES[name]
    cpu = torch.device("cpu")
    prec = precision.resolve("auto", cpu)
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build(name, config).to(memory_format=precision.memory_format(recipe.channels_last)).train()
        opts = recipe.make_optimizers(model, {**(recipe.defaults or {})})
        x = precision.to_layout((torch.rand(batch, 1, 28, 28) > 0.5).float(), recipe.channels_last)
        y = torch.arange(batch) % 10
        step = torch.compile(recipe.step) if compiled else recipe.step
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            with precision.autocast(prec, cpu):
                step(model, opts, x, y)
            times.append(time.perf_counter() - t0)
        results.append((statistics.median(times[1:]), times[0]))
    (eager, _), (fast, first) = results
    return eager, fast, first - fast


def paired_run(data_dir: str | None, threads: int) -> list[tuple[str, float, float]]:
    """(precision, test NLL in nats, seconds) for the same small PixelCNN trained in fp32 and bf16."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for prec in ("fp32", "bf16"):
            torch.set_num_threads(threads)
            out = Path(tmp) / f"{prec}.safetensors"
            t0 = time.time()
            model = fit(RunConfig(model=PAIRED["model"], dataset="mnist", epochs=PAIRED["epochs"], out=out,
                                  model_config=PAIRED["config"], limit=PAIRED["limit"], data_dir=data_dir,
                                  precision=prec, state_dir=Path(tmp), progress=False, seed=0))
            del model
            nll = checkpoints.load(out).metrics["test_nll"]
            rows.append((prec, float(nll), time.time() - t0))
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", help="families to time (default: all)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per setting (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--paired", action="store_true", help="also the paired fp32 vs bf16 quality run")
    p.add_argument("--compile", action="store_true",
                   help="also eager vs torch.compile per family (needs a C++ compiler; minutes per family)")
    p.add_argument("--data-dir", help="IDX folder for --paired")
    p.add_argument("--report", type=Path, default=REPORT)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = a.only or list(SHIPPED_SIZES)
    unknown = set(names) - set(SHIPPED_SIZES)
    if unknown:
        p.error(f"unknown families {sorted(unknown)}; known: {sorted(SHIPPED_SIZES)}")

    cpu = torch.device("cpu")
    flags = sorted({"avx2", "avx512f", "avx512_bf16", "amx_bf16"} & precision.cpu_flags())
    native = precision.native_bf16(cpu)
    lines = ["# Training speed", "", f"Command: `{report.command('benchmarks.training_speed', argv)}`  ",
             report.machine() + "  ",
             f"CPU flags of interest: {', '.join(flags) or 'none read'}; native bf16: "
             f"{'yes' if native else 'no (bf16 is emulated here)'}; `--precision auto` picks "
             f"{precision.resolve('auto', cpu)}.", "", __doc__.split("\n\n", 2)[2].strip(), "",
             "Milliseconds per step (batch 64; lower is better). Ratios are fp32 / setting: above 1 is faster "
             "than plain fp32.", "",
             "| family | params | fp32 before | fp32 | fp32 + CL | bf16 | bf16 + CL | recipe's CL | "
             "after/before | bf16 ratio | fp32 CL ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        cfg = SHIPPED_SIZES[name]
        params = build(name, cfg).num_parameters()
        t = time_settings(name, cfg, a.steps)
        row = (f"| {name} | {params:,} | " + " | ".join(f"{t[label] * 1000:.0f}" for label in SETTINGS) +
               f" | {'on' if families.RECIPES[name].channels_last else 'off'} | "
               f"{t['fp32'] / t['fp32 before']:.2f} | {t['fp32'] / t['bf16']:.2f}x | {t['fp32'] / t['fp32 + CL']:.2f}x |")
        print(row, flush=True)
        lines.append(row)

    if a.compile:
        prec = precision.resolve("auto", cpu)
        lines += ["", "## torch.compile: does it pay for training?", "",
                  f"The recipe's step under `torch.compile` (inductor, default mode) vs eager, both in {prec} "
                  "(what `--precision auto` picks here) and the recipe's layout; milliseconds per step, "
                  "median of --steps after the first; compile time is the first compiled step's excess.", "",
                  "| family | eager | compiled | speed-up | compile s |", "|---|---|---|---|---|"]
        for name in names:
            try:
                eager, fast, compile_s = time_compiled(name, SHIPPED_SIZES[name], a.steps)
                row = (f"| {name} | {eager * 1000:.0f} | {fast * 1000:.0f} | {eager / fast:.2f}x | "
                       f"{compile_s:.0f} |")
            except Exception as error:  # a compiler missing or failing is a finding, not a crash
                row = f"| {name} | | | failed: {type(error).__name__}: {str(error).splitlines()[0][:80]} | |"
            print(row, flush=True)
            lines.append(row)

    if a.paired:
        rows = paired_run(a.data_dir, a.threads)
        cfg = ", ".join(f"{k}={v}" for k, v in PAIRED["config"].items())
        lines += ["", "## Paired run: does bf16 cost quality?", "",
                  f"{PAIRED['model']} ({cfg}), seed 0, the first {PAIRED['limit']:,} training images, "
                  f"{PAIRED['epochs']} epochs, trained by `train.loop.fit` in each precision; exact test NLL "
                  "on the fixed binarized MNIST test set, evaluated in float32.", "",
                  "| precision | test NLL (nats) | wall time (s) |", "|---|---|---|"]
        lines += [f"| {prec} | {nll:.2f} | {sec:.0f} |" for prec, nll, sec in rows]
        gap = abs(rows[0][1] - rows[1][1])
        lines += ["", f"Difference: {gap:.2f} nats ({'within' if gap <= 0.5 else 'NOT within'} 0.5)."]
        print("\n".join(lines[-8:]))
    report.write(a.report, lines)


if __name__ == "__main__":
    main()
