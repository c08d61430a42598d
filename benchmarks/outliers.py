"""Can a classifier, a density model or a conditional density model tell an outlier? AUROC per score.

    python -m benchmarks.outliers --data-dir ../shared/data --write-metadata
    python -m benchmarks.outliers --data-dir ../shared/data --datasets mnist --n 500

For each data set (the "inliers"), the shipped models of it, `trained/<dataset>-classifier`,
`<dataset>-gated_pixelcnn` (p(x)) and `<dataset>-gated_pixelcnn-classes` (p(x|y)), where
present, judge the first --n test images and as many images of each outlier set:

- the other data set's test images (MNIST <-> Fashion-MNIST);
- noise: every pixel uniform in [0, 1] (seed 0);
- the inliers' own test images inverted, 1 - x: same shapes, other ink.

Every score is "higher = stranger" (`explorer.three_kinds`): classifier doubt 1 - max p(y|x),
-log p(x), -max_y log p(x|y), and -log p(x) minus the image's PNG complexity (Serra et al.
2020). The AUROC is the chance that a random outlier scores above a random inlier (0.5 is
chance; below 0.5 the outliers look *more* typical than real data). "flagged" is the share of
outliers above the threshold at the 99th percentile of the inliers' scores. Binary models see
every image cut at 0.5, as the app shows a picture to them; 8-bit models its 256 grey levels.

The report also gives the Bayes classifier's accuracy on those inliers beside the
discriminative classifier's, a blank image's place in each spread, and conditional generation
by Bayes: --draws samples of p(x), weighted by the classifier's p(y|x) for each class, with the
effective sample size of each class's weights. `--write-metadata` stores each density model's
test spread (101 percentiles of its score over the inliers) and the 99th-percentile threshold
in its checkpoint, for the app's verdicts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from explorer import bayes, checkpoints, data, outliers, three_kinds

from . import report

REPORT = report.REPORTS / "outliers.md"
OTHER = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}


def cell(text: str) -> str:
    """Text for a markdown table cell (score names hold "|", as in p(x|y))."""
    return text.replace("|", "\\|")


def model_paths(trained: Path, dataset: str) -> dict[str, Path | None]:
    """The three shipped models of a data set (None where a file is missing)."""
    names = {"classifier": f"{dataset}-classifier", "density": f"{dataset}-gated_pixelcnn",
             "conditional": f"{dataset}-gated_pixelcnn-classes"}
    return {role: (trained / f"{stem}.safetensors") if (trained / f"{stem}.safetensors").exists() else None
            for role, stem in names.items()}


def load_three(paths: dict[str, Path | None]) -> three_kinds.ThreeKinds:
    return three_kinds.ThreeKinds(**{role: None if path is None else checkpoints.load(path).model
                                     for role, path in paths.items()})


def outlier_sets(dataset: str, inliers: torch.Tensor, n: int, data_dir: str | None) -> dict[str, torch.Tensor]:
    """Grey outlier images (n, 1, 28, 28) by name."""
    other = data.to_float(data.load_split(OTHER[dataset], "test", data_dir).images[:n])
    noise = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return {f"{OTHER[dataset]} test": other, "uniform noise": noise, f"inverted {dataset} test": 1.0 - inliers}


def metadata(spread: outliers.Spread, threshold_key: str, spread_key: str, score: str, dataset: str) -> dict:
    threshold = spread.threshold()
    return {spread_key: spread.to_json(), threshold_key: threshold.value,
            "how": {threshold_key: f"{score} of an image: 99th percentile over the first {spread.n} {dataset} "
                                   f"test images (cut at 0.5 for a binary model), by benchmarks/outliers.py; "
                                   f"{spread_key} keeps the 0th..100th percentiles"}}


def run_dataset(dataset: str, a: argparse.Namespace, lines: list[str]) -> None:
    paths = model_paths(a.trained, dataset)
    if not any(paths.values()):
        return
    models = load_three(paths)
    test = data.load_split(dataset, "test", a.data_dir)
    inliers = data.to_float(test.images[:a.n])
    labels = test.labels[:a.n]
    t0 = time.time()
    judged = {f"{dataset} test (inliers)": models.judge(inliers, progress=True)}
    for name, images in outlier_sets(dataset, inliers, a.n, a.data_dir).items():
        judged[name] = models.judge(images, progress=True)
    blank = models.judge(torch.zeros(1, 1, 28, 28))
    seconds = time.time() - t0

    found = {role: path.name for role, path in paths.items() if path}
    lines += [f"## {dataset} as the inliers", "",
              "Models: " + ", ".join(f"{role} `{name}`" for role, name in found.items()) + f"; {a.n} images per set; "
              f"{seconds:.0f} s to score them all.", ""]
    inlier_name, inlier_judgement = next(iter(judged.items()))
    inlier_scores = inlier_judgement.scores()
    lines += ["| outliers | score | AUROC | flagged at the inliers' 99th percentile |", "|---|---|---|---|"]
    for name, judgement in list(judged.items())[1:]:
        for score, values in judgement.scores().items():
            threshold = outliers.threshold_from(inlier_scores[score])
            lines.append(f"| {name} | {cell(score)} | {outliers.auroc(inlier_scores[score], values):.3f} "
                         f"| {float(threshold.flags(values).double().mean()):.1%} |")
    lines += ["", "A blank image (all zeros) against the inliers' spread (percentile: share of real test images "
              "scoring below it; low = looks *more* typical than real data):", "",
              "| score | blank image | its percentile among inliers |", "|---|---|---|"]
    for score, value in blank.scores().items():
        spread = outliers.Spread.of(inlier_scores[score])
        lines.append(f"| {cell(score)} | {float(value[0]):.4g} | {spread.percentile_of(float(value[0])):.1f} |")

    lines.append("")
    if inlier_judgement.classifier_probs is not None:
        acc = float((inlier_judgement.classifier_probs.argmax(1) == labels).double().mean())
        lines.append(f"Discriminative classifier accuracy on these {a.n} inliers: **{acc:.4f}**.  ")
    if inlier_judgement.bayes_probs is not None:
        acc = float((inlier_judgement.bayes_probs.argmax(1) == labels).double().mean())
        true_nll = float(-inlier_judgement.class_log_likelihoods.gather(1, labels.long()[:, None]).mean())
        lines.append(f"Bayes classifier argmax_y p(x|y) (uniform p(y)) on the same images: **{acc:.4f}**; "
                     f"their mean -log p(x|y) under the true label: {true_nll:.2f} nats.  ")
    lines.append("")

    if models.density is not None and models.classifier is not None and a.draws:
        t0 = time.time()
        found_draws = three_kinds.by_bayes(models.density, models.classifier, 0, a.draws, a.draws,
                                           torch.Generator().manual_seed(0))
        with torch.no_grad():
            probs = torch.softmax(models.classifier(found_draws.draws).double(), 1)     # (N, K)
        classes = data.class_names(dataset)
        ess = [bayes.effective_sample_size(probs[:, k]) for k in range(probs.shape[1])]
        lines += [f"Conditional generation by Bayes: {a.draws} draws from `{paths['density'].name}` (seed 0, "
                  f"{time.time() - t0:.0f} s), weighted by the classifier's p(y|x). Effective sample size of each "
                  f"class's weights (out of {a.draws}; about {a.draws / len(classes):.0f} if draws spread evenly "
                  "over classes and the classifier is sure):", "",
                  "| class | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|",
                  "| ESS | " + " | ".join(f"{v:.1f}" for v in ess) + " |", ""]

    if a.write_metadata:
        for score, (spread_key, threshold_key) in three_kinds.STORED_SPREADS.items():
            role = "density" if score == three_kinds.DENSITY else "conditional"
            if paths[role] is not None and score in inlier_scores:
                spread = outliers.Spread.of(inlier_scores[score])
                checkpoints.update_metrics(paths[role], metadata(spread, threshold_key, spread_key, score, dataset))
                print(f"stored the {score} spread in {paths[role]}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.checkpoint_arguments(p, REPORT)
    p.add_argument("--datasets", nargs="*", default=sorted(OTHER), choices=sorted(OTHER),
                   help="data sets to take as the inliers")
    p.add_argument("--n", type=int, default=2000, help="images per set (inliers and each outlier set)")
    p.add_argument("--draws", type=int, default=200, help="draws from p(x) for conditional generation by Bayes (0: skip)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    lines = ["# Outliers: a classifier, a density model and a conditional density model", "",
             f"Command: `{report.command('benchmarks.outliers', argv)}`  ", report.machine(), "",
             "See the docstring of `benchmarks/outliers.py` for what each set and score is.", ""]
    for dataset in a.datasets:
        run_dataset(dataset, a, lines)
    report.write(a.report, lines)


if __name__ == "__main__":
    main()
