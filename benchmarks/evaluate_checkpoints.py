"""Evaluate every checkpoint in trained/ on its test set and write a markdown table.

    python -m benchmarks.evaluate_checkpoints --data-dir ../shared/data --k 1000 --write-metadata

For VAEs: the negative ELBO and the importance-weighted bound on -log p(x) with k samples
(Burda et al. 2016), in nats per image; on MNIST both use the fixed binarized test set, so
they are comparable with the literature. For the AE: reconstruction error. For
autoregressive models (PixelCNN, PixelRNN): the exact -log p(x), in nats per image on the
fixed binarized MNIST test set and in bits per dimension on 8-bit data; for a class-conditional
one, -log p(x | y) with the true labels and the accuracy of its Bayes classifier. For a VQ-VAE: its
reconstruction, codebook perplexity, the prior's bits per code grid and the bound they make. `--write-metadata`
stores the figures (and how they were measured) in each checkpoint's metadata, from which
`python -m train.model_card` renders trained/README.md.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import torch

from explorer import checkpoints, data, metrics

from . import report

REPORT = report.REPORTS / "checkpoints.md"


@functools.cache
def _test_split(dataset: str, data_dir: str | None) -> data.Split:
    return data.load_split(dataset, "test", data_dir)


def evaluate(ckpt: checkpoints.Checkpoint, data_dir: str | None, k: int, limit: int | None) -> dict:
    model = ckpt.model
    binary = bool(ckpt.training.get("binarized", ckpt.dataset == "mnist"))
    test = _test_split(ckpt.dataset, data_dir)  # read once per data set, not per checkpoint
    x = data.fixed_binarized_test(test.images) if binary else data.to_float(test.images)
    y = test.labels if model.num_classes else None
    if limit:
        x, y = x[:limit], None if y is None else y[:limit]
    if model.kind == "discrete_latent":   # a VQ-VAE: reconstruction, codebook use, prior bits, their bound
        return metrics.codes_report(model, x, y, binary=binary)
    if model.kind == "autoregressive":
        x = model.as_input(x)   # the 256 levels exactly for an 8-bit model
        result = metrics.autoregressive_report(model, x, y, binary=binary)
        if model.num_classes:   # a class-conditional model is also a classifier, by Bayes' rule
            bayes = metrics.bayes_classifier_report(model, x, y, binary=binary, progress=True)
            result.update({k: v for k, v in bayes.items() if k != "how"})
            result["how"].update(bayes["how"])
            classifier = ckpt.path.parent / f"{ckpt.dataset}-classifier.safetensors"
            if classifier.exists():   # the discriminative classifier's figure, for the model card
                accuracy = checkpoints.read_metadata(classifier)["metrics"].get("test_accuracy")
                if accuracy is not None:
                    result["how"]["bayes_test_accuracy"] += (f"; the discriminative classifier {classifier.name}: "
                                                             f"{accuracy:.4f} on the grey test images")
        return result
    if model.likelihood is None:
        return metrics.reconstruction_report(model, x, y, binary=binary)
    result = metrics.elbo_report(model, x, y, binary=binary)
    if binary and k:
        t0 = time.time()
        nll = metrics.importance_weighted_nll(model, x, y, k=k)
        key = metrics.IW_BOUND_KEY.format(k=k)
        result[key] = float(nll.mean())
        result["headline"] = key
        result["how"][key] = (f"importance-weighted bound on -log p(x) (Burda et al. 2016), k={k} samples "
                              f"per image, mean over {len(x)} images of the fixed binarized test set, nats; "
                              f"{time.time() - t0:.0f} s on {torch.get_num_threads()} CPU thread(s)")
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.checkpoint_arguments(p, REPORT)
    p.add_argument("--k", type=int, default=1000, help="importance samples for the IW bound (0: skip)")
    p.add_argument("--limit", type=int, help="use only the first N test images (quick looks, not for reports)")
    argv = sys.argv[1:] if argv is None else argv
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    rows = []
    for name, path, ckpt in report.selected_checkpoints(a.trained, a.only, ("latent", "autoregressive", "discrete_latent")):
        if ckpt.model.kind == "latent" and not ckpt.model.has_encoder:
            continue  # GANs have no likelihood: benchmarks.sample_quality scores them
        result = evaluate(ckpt, a.data_dir, a.k, a.limit)
        if a.write_metadata and not a.limit:
            checkpoints.update_metrics(path, result)
        rows.append((name, ckpt, result))
        print(name, {key: round(v, 3) for key, v in result.items() if isinstance(v, float)})

    lines = ["# Checkpoint evaluation", "", f"Command: `{report.command('benchmarks.evaluate_checkpoints', argv)}`  ",
             report.machine() + (f"; first {a.limit} test images only" if a.limit else ""), "",
             "| checkpoint | model | data | epochs | metric | value | how |", "|---|---|---|---|---|---|---|"]
    for name, ckpt, result in rows:
        for key, value in result.items():
            if isinstance(value, float):
                how = result["how"].get(key, "")
                lines.append(f"| {name} | {ckpt.model.name} | {ckpt.dataset} | {ckpt.training.get('epochs', '?')} "
                             f"| {key} | {value:.4g} | {how} |")
    report.write(a.report, lines)


if __name__ == "__main__":
    main()
