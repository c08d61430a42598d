"""Command line: `python -m train <model> --dataset mnist --epochs 50 --out trained/x.safetensors`.

Examples
  python -m train vae --dataset mnist --epochs 100 --out trained/mnist-vae.safetensors
  python -m train vae --dataset mnist --epochs 100 --out trained/mnist-vae.safetensors --resume
  python -m train vae --set latent_dim=2 --dataset mnist --epochs 30 --out trained/mnist-vae2d.safetensors
  python -m train vqvae --set fit=prior --init runs/mnist-vqvae-ae.safetensors --epochs 5 --out trained/mnist-vqvae.safetensors
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from explorer.data import DATA_ENV, DATASETS, DataError
from explorer.models import REGISTRY

from .families import RECIPES
from .loop import RunConfig, TrainingDiverged, fit
from .precision import PRECISIONS


def parse_set(items: list[str]) -> dict:
    """`key=value` pairs; values parsed as JSON where they can be (numbers, lists), else strings."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=sorted(RECIPES), help="model to train")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--epochs", type=int, required=True, help="total epochs (a resumed run stops here too)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="model config, e.g. latent_dim=2 hidden=256")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="fp32, bf16 (autocast; weights, optimizer and evaluation stay float32), or auto "
                        "(default: bf16 where the CPU or GPU has native bf16, else fp32)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory layout (default: the family's measured choice)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--resume", action="store_true",
                   help="continue from <state-dir>/<out stem>.resume.safetensors if present")
    p.add_argument("--init", type=Path, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (same model; fresh optimizer), e.g. a VQ-VAE "
                        "whose prior is refit on frozen codes with --set fit=prior")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="save and evaluate an exponential moving average of the weights, updated every step "
                        "with this decay (e.g. 0.999, about 1,000 steps); may be switched on when resuming a run")
    p.add_argument("--state-dir", type=Path, default=Path("runs"),
                   help="where the resume state (optimizer, RNG, epoch) is kept (default: runs/)")
    p.add_argument("--binarize", action=argparse.BooleanOptionalAction, default=None,
                   help="train on dynamically binarized images (default: yes for mnist, no for fashion-mnist)")
    p.add_argument("--data-dir", help=f"folder of IDX files (default: ${DATA_ENV}, else download)")
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    a = p.parse_args(argv)
    if not str(a.out).endswith(".safetensors"):
        p.error("--out must end in .safetensors")
    if a.epochs < 1:
        p.error("--epochs must be at least 1")
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = RunConfig(model=a.model, dataset=a.dataset, epochs=a.epochs, out=a.out, model_config=parse_set(a.set),
                    batch_size=a.batch_size, lr=a.lr, seed=a.seed, device=a.device, precision=a.precision,
                    channels_last=a.channels_last, resume=a.resume,
                    binarize=a.binarize, data_dir=a.data_dir, limit=a.limit, state_dir=a.state_dir, init=a.init, ema=a.ema, progress=not a.no_progress,
                    command="python -m train " + shlex.join(argv))
    try:
        fit(cfg)
    except (DataError, TrainingDiverged, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    assert set(RECIPES) <= set(REGISTRY)
    sys.exit(main())
