"""Transposed convolutions at the app's sizes: oneDNN (nn.ConvTranspose2d) against torch's native
kernel, which `explorer.models.deconv.ConvTranspose2d` runs for few output channels.

    python -m benchmarks.deconv [--threads 1] [--repeats 50] [--report PATH]

For each layer shape of the shipped decoders (kernel 4, stride 2, padding 1) and each batch
(1: one picture; 12: an interpolation; 81: a 9x9 grid), the median time of a forward pass
without gradients in float32 by each kernel, and the largest difference between their outputs.
Writes benchmarks/reports/deconv.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from explorer.models.deconv import FEW_OUTPUTS

from . import report

REPORT = report.REPORTS / "deconv.md"
# (in channels, out channels, input side): the decoders' layers, and 4 and 8 outputs around the cut.
SHAPES = [(32, 1, 14), (64, 1, 14), (32, 4, 14), (32, 8, 14), (64, 32, 7), (128, 64, 7)]
BATCHES = (1, 12, 81)


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the app uses 1)")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--report", type=lambda s: __import__("pathlib").Path(s), default=REPORT)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    with torch.no_grad():
        for cin, cout, side in SHAPES:
            weight, bias = torch.randn(cin, cout, 4, 4) * 0.1, torch.randn(cout)
            for n in BATCHES:
                x = torch.randn(n, cin, side, side)

                def onednn() -> torch.Tensor:
                    return F.conv_transpose2d(x, weight, bias, 2, 1)

                def native() -> torch.Tensor:
                    return torch._C._nn.slow_conv_transpose2d(x, weight, (4, 4), bias, (2, 2), (1, 1), (0, 0), (1, 1))

                diff = (onednn() - native()).abs().max().item()
                a, b = median_ms(onednn, args.repeats), median_ms(native, args.repeats)
                used = "native" if cout <= FEW_OUTPUTS else "oneDNN"
                rows.append(f"| {cin} -> {cout} | {side}x{side} | {n} | {a:.2f} | {b:.2f} | {a / b:.1f}x | {diff:.1e} | {used} |")
                print(rows[-1], flush=True)
    report.write(args.report, [
        "# Transposed convolutions: oneDNN against torch's native kernel", "",
        f"Command: `{report.command('benchmarks.deconv', argv)}`  ",
        f"Machine: {report.machine()}", "",
        "Kernel 4, stride 2, padding 1; float32, no gradients; median of "
        f"{args.repeats} passes in ms. `explorer.models.deconv.ConvTranspose2d` runs the native kernel "
        f"for {FEW_OUTPUTS} or fewer output channels (last column).", "",
        "| channels | input | batch | oneDNN ms | native ms | oneDNN / native | max difference | the app uses |",
        "|---|---|---|---|---|---|---|---|", *rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
