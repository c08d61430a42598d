"""Render trained/README.md from the checkpoints' own metadata: `python -m train.model_card`.

Every number in the model card is read from a checkpoint, where the code that measured it
(the training loop or `benchmarks/evaluate_checkpoints.py`) stored it with a note on how.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from explorer import checkpoints

# The data sets' names on the Hugging Face Hub, for the card's metadata.
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist"}
# Hub-style YAML metadata opening the card (the Hub reads it on a model or Space page).
FRONT_MATTER = """---
license: mit
library_name: pytorch
pipeline_tag: unconditional-image-generation
tags:
{tags}
datasets:
{datasets}
---
"""

INTRO = """# Shipped checkpoints

Each file is one model: safetensors weights plus JSON metadata (config, data set, metrics and
how they were measured, per-epoch history, the training command, time and device). Load one
with `explorer.checkpoints.load(path)`. This page is generated from that metadata by
`python -m train.model_card`; do not edit it by hand.

Training data came from `LATENT_EXPLORER_DATA=../shared/data` (MNIST and Fashion-MNIST IDX
files). Likelihoods on MNIST are in nats per image on the fixed binarized test set
(`explorer.data.fixed_binarized_test`); they were measured with
`python -m benchmarks.evaluate_checkpoints --write-metadata` (reports: {reports}).
"""
# Where the evaluation reports the card points to are written.
REPORTS = Path(__file__).resolve().parents[1] / "benchmarks" / "reports"


def _lr_changed(training: dict[str, Any]) -> bool:
    """Whether the run was resumed with another --lr than it had (a step decay)."""
    return len({_option(c["command"], "--lr") for c in training.get("commands") or []}) > 1


def _option(command: str, flag: str) -> str | None:
    """The value given to `flag` (e.g. "--epochs") in a training command, if any."""
    words = command.split()
    return words[words.index(flag) + 1] if flag in words[:-1] else None


def _epochs_in(command: str) -> int | None:
    """The --epochs value of a training command (older checkpoints did not store it apart)."""
    epochs = _option(command, "--epochs")
    return int(epochs) if epochs else None


def _precision(training: dict) -> str:
    """How the steps were computed; runs from before `--precision` existed were all float32."""
    words = {"bf16": "bf16 autocast", "fp32": "float32"}
    layout = ", channels_last" if training.get("channels_last") else ""
    precision = training.get("precision") or "fp32"  # a warm start's record holds None for those runs
    return words.get(precision, precision) + layout


def evaluation_reports() -> list[str]:
    """The checkpoint-evaluation reports there are, as repository paths."""
    repo = REPORTS.parents[1]
    return [str(p.relative_to(repo)) for p in sorted(REPORTS.glob("checkpoints*.md"))]


def front_matter(loaded: list[checkpoints.Checkpoint]) -> str:
    """The card's YAML header: licence, library, and the data sets and model kinds it holds."""
    datasets = sorted({HUB_DATASETS.get(c.dataset, c.dataset) for c in loaded})
    tags = ["safetensors", *sorted({c.model.name.replace("_", "-") for c in loaded})]
    return FRONT_MATTER.format(tags="\n".join(f"- {t}" for t in tags),
                               datasets="\n".join(f"- {d}" for d in datasets))


def render(folder: Path) -> str:
    loaded = [checkpoints.load(path) for path in checkpoints.checkpoint_files(folder)]
    reports = ", ".join(f"`{r}`" for r in evaluation_reports()) or "none written yet"
    parts = [front_matter(loaded), INTRO.format(reports=reports)]
    for ckpt in loaded:
        path = ckpt.path
        m, t = ckpt.metrics, ckpt.training
        parts.append(f"## {path.name}\n")
        desc = type(ckpt.model).description
        # Not str.capitalize(): it would lower the rest ("DCGAN" -> "Dcgan").
        parts.append(f"{desc[:1].upper() + desc[1:]} (`{ckpt.model.name}`) on {ckpt.dataset}; "
                     f"config `{ckpt.model.config}`; {ckpt.model.num_parameters():,} parameters, "
                     f"{path.stat().st_size / 2**20:.1f} MB.\n")
        parts.append("| metric | value | how it was measured |\n|---|---|---|")
        previous = None
        for key, value in m.items():
            if isinstance(value, (int, float)):
                how = m.get("how", {}).get(key, "")
                cell = "(as above)" if how and how == previous else how.replace("|", "\\|")  # p(x|y), KL(p || q)
                parts.append(f"| {key} | {value:.4g} | {cell} |")
                previous = how
        parts.append("")
        requested = t.get("epochs_requested") or _epochs_in(t.get("command", "")) or t.get("epochs")
        stopped = requested != t.get("epochs")
        parts.append(f"Trained for {t.get('epochs')} epochs"
                     + (f" (stopped early: {t.get('epochs')} of {requested}; the same command "
                        f"continues it, since it has --resume)" if stopped else "")
                     + f" in {t.get('seconds', 0) / 60:.0f} min on "
                     f"{t.get('device')} ({t.get('threads')} thread(s), {_precision(t)}), batch {t.get('batch_size')}, "
                     f"lr {t.get('lr')}{' at the end' if _lr_changed(t) else ''}, "
                     f"seed {t.get('seed')}, "
                     f"{'dynamically binarized' if t.get('binarized') else 'grey'} training images:\n")
        commands = t.get("commands") or [{"from_epoch": 1, "command": t.get("command")}]
        if len(commands) > 1:  # resumed with other arguments: each command continues the one before
            parts.append("The run was resumed with other arguments; these commands, in turn, reproduce it:\n")
        for i, step in enumerate(commands):
            if len(commands) > 1:
                last = commands[i + 1]["from_epoch"] - 1 if i + 1 < len(commands) else t.get("epochs")
                parts.append(f"Epochs {step['from_epoch']}-{last}:\n")
            parts.append(f"    LATENT_EXPLORER_DATA=../shared/data {step['command']}\n")
        ema = t.get("ema")
        if ema:
            parts.append(f"The weights are an exponential moving average of the trained ones (`--ema {ema['decay']}`, "
                         f"updated every step from epoch {ema['from_epoch']} on; `train/averaging.py`).\n")
        wrote = _option(t.get("command", ""), "--out")
        # Shipped files live in trained/; a run written elsewhere (runs/) was copied in by hand.
        if wrote and (Path(wrote).parent.name, Path(wrote).name) != ("trained", path.name):
            parts.append(f"The run wrote `{wrote}`; this file is a copy of it, taken when it was evaluated.\n")
        start = t.get("started_from")
        if start:  # a warm start (--init): the run that made the starting weights
            asked = _epochs_in(start.get("command") or "")
            parts.append(f"It started from the weights of `{start.get('checkpoint')}` (the --init above), trained for "
                         f"{start.get('epochs')} epochs" + (f" (of {asked} asked)" if asked and asked != start.get("epochs")
                                                            else "")
                         + f" in {(start.get('seconds') or 0) / 60:.0f} min on {start.get('device')} "
                         f"({start.get('threads')} thread(s), {_precision(start)}) with:\n")
            parts.append(f"    LATENT_EXPLORER_DATA=../shared/data {start.get('command')}\n")
    return "\n".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trained", type=Path, default=Path("trained"))
    a = p.parse_args()
    out = a.trained / "README.md"
    out.write_text(render(a.trained))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
