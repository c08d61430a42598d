"""Sample quality of every shipped model: legibility, class coverage, KL to uniform, Frechet distance.

    python -m benchmarks.sample_quality --data-dir ../shared/data --write-metadata
    python -m benchmarks.sample_quality --data-dir ../shared/data --only mnist-pixelcnn --n 1000

For each data set, the shipped classifier (`trained/<dataset>-classifier.safetensors`, trained
with `python -m train classifier`) labels --n samples of each latent model (decoded prior
draws; a VQ-VAE's are code grids from its prior, decoded) and --n-autoregressive of each
autoregressive model (pixel by pixel from the cached sampler), seed 0 (--seed: a second draw
for a checkpoint picked by its seed-0 score). A sample is legible when the classifier gives its
top class probability >= 0.9; the same share of the test images is the reference ("test
legible"). A class is covered when it gets at least
2.5% of the samples. The Frechet distance compares the classifier's 128-d features of the
samples with those of the test images; the same distance between as many training images and
the test images is the floor (what a perfect model would score, up to noise). Models of binary
images (Bernoulli autoregressive models) are compared with the fixed binarized test set and
binarized training images; all others with the grey images. These are not Inception FIDs:
compare them within this project only.
"""

from __future__ import annotations

import argparse
import sys

import torch

from explorer import checkpoints, data, metrics, packing

from . import report

REPORT = report.REPORTS / "sample_quality.md"
HOW = ("{n} samples (seed {seed}) scored by trained/{dataset}-classifier.safetensors: legible = share with top "
       "class probability >= 0.9 (test images: {test_legible:.3f}); classes with >= 2.5% of samples; "
       "KL(class histogram || uniform) in nats; Frechet distance of its 128-d features to the {m} {kind} test "
       "images (not an Inception FID); floor = the same distance from {m} {kind} train images")
KINDS = ("latent", "autoregressive", "discrete_latent")


def is_binary(model) -> bool:
    """Whether the model draws binary images (compared with binarized data)."""
    return getattr(model, "output_kind", None) == "bernoulli"


def reference(dataset: str, binary: bool, trained, data_dir):
    """(classifier, test features, floor, test legible share, number of test images) for one data set."""
    clf = checkpoints.load(trained / f"{dataset}-classifier.safetensors").model
    test_u8 = data.load_split(dataset, "test", data_dir).images
    train_u8 = data.load_split(dataset, "train", data_dir).images[: len(test_u8)]
    if binary:
        test, train = data.fixed_binarized_test(test_u8), data.binarize(data.to_float(train_u8),
                                                                          torch.Generator().manual_seed(0))
    else:
        test, train = data.to_float(test_u8), data.to_float(train_u8)
    test_feats = metrics.classify(clf, test)[1]
    floor = metrics.frechet_distance(metrics.classify(clf, train)[1], test_feats)
    return clf, test_feats, floor, metrics.legible_share(clf, test), len(test)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.checkpoint_arguments(p, REPORT)
    p.add_argument("--n", type=int, default=10_000, help="samples per latent model")
    p.add_argument("--n-autoregressive", type=int, default=2_000,
                   help="samples per autoregressive model (drawn pixel by pixel: slower)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    refs: dict[tuple[str, bool], tuple] = {}
    rows = []
    for name, path, ckpt in report.selected_checkpoints(a.trained, a.only, KINDS):
        key = (ckpt.dataset, is_binary(ckpt.model))
        if key not in refs:
            refs[key] = reference(*key, a.trained, a.data_dir)
        clf, test_feats, floor, test_legible, m = refs[key]
        n = a.n_autoregressive if ckpt.model.kind == "autoregressive" else a.n
        batch_size = 500 if ckpt.model.kind == "autoregressive" else 1000
        samples = metrics.model_samples(ckpt.model, n, seed=a.seed, batch_size=batch_size, progress=True)
        scores = metrics.sample_quality(samples, clf, test_feats)
        scores.update(frechet_floor=floor, test_legible=test_legible)
        print(f"{name}: legible {scores['legible']:.3f} (test {test_legible:.3f}), covered "
              f"{scores['classes_covered']}/10, KL {scores['kl_to_uniform']:.3f}, Frechet "
              f"{scores['frechet_distance']:.2f} (floor {floor:.2f}), histogram {scores['class_histogram']}")
        if a.write_metadata:
            how = HOW.format(n=n, seed=a.seed, m=m, dataset=ckpt.dataset, test_legible=test_legible,
                             kind="binarized" if key[1] else "grey")
            stored = {k: v for k, v in scores.items() if k != "class_histogram"}
            stored["sample_class_histogram"] = scores["class_histogram"]
            if ckpt.metrics.get("headline") in (None, "critic_gap"):  # GANs have no likelihood to lead with
                stored["headline"] = "frechet_distance"
            stored["how"] = {k: how for k in ("legible", "test_legible", "classes_covered", "kl_to_uniform",
                                              "frechet_distance", "frechet_floor")}
            checkpoints.update_metrics(path, stored)
        rows.append((name, ckpt, scores))

    lines = ["# Sample quality", "", f"Command: `{report.command('benchmarks.sample_quality', argv)}`  ",
             report.machine(), "", __doc__.split("\n\n", 2)[2].strip(), "",
             "| checkpoint | model | data | legible | test legible | classes covered | KL to uniform | "
             "Frechet distance | floor (train vs test) | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, ckpt, s in rows:
        lines.append(f"| {name} | {ckpt.model.name} | {ckpt.dataset}{' (binary)' if is_binary(ckpt.model) else ''} | "
                     f"{s['legible']:.1%} | {s['test_legible']:.1%} | {s['classes_covered']}/10 | "
                     f"{s['kl_to_uniform']:.3f} | {s['frechet_distance']:.2f} | {s['frechet_floor']:.2f} | "
                     f"{s['frechet_distance'] / s['frechet_floor']:.1f}x |")
    lines += replay_section(rows, a.trained)
    report.write(a.report, lines)


def replay_section(rows, trained) -> list[str]:
    """Per epoch of each training replay (the fixed-seed sample grid a GAN stored after every
    epoch): the classes the classifier sees, and the legible share of the frame."""
    lines = []
    for name, ckpt, _ in rows:
        replay = ckpt.history.get("replay")
        if not replay:
            continue
        clf = checkpoints.load(trained / f"{ckpt.dataset}-classifier.safetensors").model
        scores = metrics.replay_class_scores(clf, packing.unpack_replay(replay))
        tops = []
        lines += ["", f"## Training replay: {name}", "",
                  f"{len(scores)} epochs, {sum(scores[0]['class_histogram'])} fixed-seed samples per frame.", "",
                  "| epoch | classes covered | top classes (samples) | legible |", "|---|---|---|---|"]
        for epoch, s in enumerate(scores, start=1):
            hist = torch.tensor(s["class_histogram"])
            top = [int(c) for c in hist.argsort(descending=True)[:3] if hist[c] > 0]
            tops.append(top[0])
            lines.append(f"| {epoch} | {s['classes_covered']} | "
                         + ", ".join(f"{c} ({int(hist[c])})" for c in top) + f" | {s['legible']:.0%} |")
        lines += ["", f"Top class per epoch: {' '.join(map(str, tops))} ({len(set(tops))} different); epochs with "
                      f"1-3 classes: {sum(1 <= s['classes_covered'] <= 3 for s in scores)} of {len(scores)}; "
                      f"with >= 80% legible: {sum(s['legible'] >= 0.8 for s in scores)} of {len(scores)}."]
    return lines


if __name__ == "__main__":
    main()
