"""Directions in code space, measured on the shipped latent models with encoders.

    python -m benchmarks.directions --data-dir ../shared/data
    python -m benchmarks.directions --data-dir ../shared/data --only mnist-vae --n 2000

For each model: its dimensions ranked by effect (`explorer.directions.rank_dimensions`: KL per
dimension for a VAE on --n test images, image change per step otherwise), how many are
active, the variance share of the first principal directions of the encoded test images, and
how well class-to-class attribute vectors work: for every ordered pair of classes (a, b), the
mean code of class b minus that of class a (from the encoded test images) is added to each
test image of class a, and the data set's classifier labels the decoded result; the report gives
the share labelled b, over all pairs and for a few named pairs. A conditional model (CVAE)
keeps its label a while the code moves: the share then says how far the code alone can carry
a digit into another class.
"""

from __future__ import annotations

import argparse
import sys

import torch

from explorer import checkpoints, data, directions, latent, metrics

from . import report

REPORT = report.REPORTS / "directions.md"
NAMED_PAIRS = [(1, 7), (7, 1), (4, 9), (3, 8), (0, 6)]


@torch.no_grad()
def pair_success(model, codes: torch.Tensor, labels: torch.Tensor, clf, amount: float = 1.0,
                 per_class: int = 200) -> torch.Tensor:
    """(10, 10) share of class-a images labelled b after moving along the a -> b vector; NaN on the diagonal."""
    means = directions.class_means(model, codes, labels)
    out = torch.full((10, 10), float("nan"))
    for a in range(10):
        idx = (labels == a).nonzero().flatten()[:per_class]
        for b in range(10):
            if a == b or len(idx) == 0:
                continue
            vec = directions.attribute_vector(means, a, b)
            moved = latent.unstandardize(model, latent.standardize(model, codes[idx]) + amount * vec)
            y = labels[idx] if model.num_classes else None
            preds, _ = metrics.classify(clf, model.decode(moved, y))
            out[a, b] = float((preds == b).float().mean())
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.checkpoint_arguments(p, REPORT)
    p.add_argument("--n", type=int, default=5000, help="test images to encode")
    p.add_argument("--per-class", type=int, default=200, help="images per class moved along each vector")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    lines = ["# Directions in code space", "", f"Command: `{report.command('benchmarks.directions', argv)}`  ",
             report.machine(), "", __doc__.split("\n\n", 2)[2].strip(), "",
             "| checkpoint | dims | active | strongest (effect) | first 2 principal directions explain | "
             "a -> b labelled b (all pairs) | " + " | ".join(f"{s} -> {t}" for s, t in NAMED_PAIRS) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(NAMED_PAIRS)]
    for name, path, ckpt in report.selected_checkpoints(a.trained, a.only, "latent"):
        model = ckpt.model
        if latent.inverts(model):
            continue   # a GAN encodes by inversion, about a second per image: too slow for thousands
        clf = checkpoints.load(a.trained / f"{ckpt.dataset}-classifier.safetensors").model
        test = data.load_split(ckpt.dataset, "test", a.data_dir)
        x, y = data.to_float(test.images[: a.n]), test.labels[: a.n]
        codes = latent.encode(model, x, y)
        ranking = directions.rank_dimensions(model, x, y if model.num_classes else None)
        pd = directions.principal_directions(model, codes, k=2)
        success = pair_success(model, codes, y, clf, per_class=a.per_class)
        off_diag = success[~torch.isnan(success)]
        strongest = ", ".join(f"z{d} ({float(ranking.effect[d]):.2f})" for d in ranking.strongest(3))
        row = (f"| {name} | {model.latent_dim} | {int(ranking.active.sum())} | {strongest} | "
               f"{float(pd.explained[0]):.1%} + {float(pd.explained[1]):.1%} | {float(off_diag.mean()):.1%} | "
               + " | ".join(f"{float(success[s, t]):.0%}" for s, t in NAMED_PAIRS) + " |")
        print(row, flush=True)
        lines.append(row)
    report.write(a.report, lines)


if __name__ == "__main__":
    main()
