"""Sample quality of every latent model in trained/: class coverage, KL to uniform, Frechet distance.

    python -m benchmarks.sample_quality --data-dir ../shared/data --write-metadata

For each data set, the shipped classifier (`trained/<dataset>-classifier.safetensors`, trained
with `python -m train classifier`) labels 10,000 samples of each model; a class is covered when
it gets at least 2.5% of them. The Frechet distance compares the classifier's 128-d features of
the samples with those of the 10,000 test images; the same distance between 10,000 training
images and the test images is the floor (what a perfect model would score, up to noise).
These are not Inception FIDs: compare them within this project only.
"""

from __future__ import annotations

import argparse
import sys

import torch

from explorer import checkpoints, data, metrics

from . import report

REPORT = report.REPORTS / "sample_quality.md"
HOW = ("{n} prior samples (seed 0) scored by trained/{dataset}-classifier.safetensors: classes with >= 2.5% of "
       "samples; KL(class histogram || uniform) in nats; Frechet distance of its 128-d features to the "
       "{m} test images (not an Inception FID); floor = the same distance from {m} train images")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.checkpoint_arguments(p, REPORT)
    p.add_argument("--n", type=int, default=10_000, help="samples per model")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    floors: dict[str, tuple] = {}
    rows = []
    for name, path, ckpt in report.selected_checkpoints(a.trained, a.only, "latent"):
        if ckpt.dataset not in floors:
            clf_path = a.trained / f"{ckpt.dataset}-classifier.safetensors"
            clf = checkpoints.load(clf_path).model
            test = data.to_float(data.load_split(ckpt.dataset, "test", a.data_dir).images)
            train = data.to_float(data.load_split(ckpt.dataset, "train", a.data_dir).images[: len(test)])
            test_feats = metrics.classify(clf, test)[1]
            floor = metrics.frechet_distance(metrics.classify(clf, train)[1], test_feats)
            floors[ckpt.dataset] = (clf, test_feats, floor, len(test))
        clf, test_feats, floor, m = floors[ckpt.dataset]
        scores = metrics.sample_quality(metrics.model_samples(ckpt.model, a.n), clf, test_feats)
        scores["frechet_floor"] = floor
        print(f"{name}: covered {scores['classes_covered']}/10, KL {scores['kl_to_uniform']:.3f}, "
              f"Frechet {scores['frechet_distance']:.2f} (floor {floor:.2f}), histogram {scores['class_histogram']}")
        if a.write_metadata:
            how = HOW.format(n=a.n, m=m, dataset=ckpt.dataset)
            stored = {k: v for k, v in scores.items() if k != "class_histogram"}
            stored["sample_class_histogram"] = scores["class_histogram"]
            if ckpt.metrics.get("headline") in (None, "critic_gap"):  # GANs have no likelihood to lead with
                stored["headline"] = "frechet_distance"
            stored["how"] = {k: how for k in ("classes_covered", "kl_to_uniform", "frechet_distance", "frechet_floor")}
            checkpoints.update_metrics(path, stored)
        rows.append((name, ckpt, scores))

    lines = ["# Sample quality", "", f"Command: `{report.command('benchmarks.sample_quality', argv)}`  ",
             report.machine(), "", __doc__.split("\n\n", 2)[2].strip(), "",
             "| checkpoint | model | data | classes covered | KL to uniform | Frechet distance | floor (train vs test) | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for name, ckpt, s in rows:
        lines.append(f"| {name} | {ckpt.model.name} | {ckpt.dataset} | {s['classes_covered']}/10 | "
                     f"{s['kl_to_uniform']:.3f} | {s['frechet_distance']:.2f} | {s['frechet_floor']:.2f} | "
                     f"{s['frechet_distance'] / s['frechet_floor']:.1f}x |")
    report.write(a.report, lines)


if __name__ == "__main__":
    main()
