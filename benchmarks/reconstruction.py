"""Test reconstruction error of every shipped model with an encoder network, side by side.

    python -m benchmarks.reconstruction --data-dir ../shared/data --threads 1

Each test image is encoded once and decoded once: the posterior mean for a VAE, the code for
an autoencoder, the nearest codes for a VQ-VAE. Every model is scored on both versions of its
data set's test images, whatever it was trained on, so that models trained on binarized and
on grey images meet on the same images: the fixed binarized test set (MNIST only) and the
grey one. Reported per image: the Bernoulli reconstruction NLL in nats (on grey images a
training score, not a likelihood) and the mean squared error per pixel between the decoded
probabilities and the input. A VAE's ELBO term (`test_recon_nll` in its metadata) uses a
posterior sample instead, so it is higher than the figure here.
"""

from __future__ import annotations

import argparse
import sys

import torch

from explorer import data, metrics

from . import report

REPORT = report.REPORTS / "reconstruction.md"
KINDS = ("latent", "discrete_latent")


def main(argv: list[str] | None = None) -> list[tuple[str, dict]]:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.checkpoint_arguments(p, REPORT)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    for name, _, ckpt in report.selected_checkpoints(a.trained, a.only, KINDS):
        if not ckpt.model.has_encoder:
            continue
        trained_binary = bool(ckpt.training.get("binarized", ckpt.dataset == "mnist"))
        test = data.load_split(ckpt.dataset, "test", a.data_dir)
        labels = test.labels if ckpt.model.num_classes else None
        for binary in ((True, False) if ckpt.dataset == "mnist" else (False,)):
            x = data.fixed_binarized_test(test.images) if binary else data.to_float(test.images)
            result = metrics.reconstruction_report(ckpt.model, x, labels, binary=binary)
            rows.append((name, {**result, "binary": binary, "trained_binary": trained_binary,
                                "model": ckpt.model.name, "dataset": ckpt.dataset}))
            print(name, "binarized" if binary else "grey", round(result["test_recon_nll"], 2), round(result["test_mse"], 5))
    lines = ["# Reconstruction error", "", f"Command: `{report.command('benchmarks.reconstruction', argv)}`  ",
             report.machine(), "", __doc__.split("\n\n", 2)[2].strip(), "",
             "| checkpoint | model | trained on | test images | recon NLL (nats / image) | MSE per pixel |",
             "|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['model']} | {r['dataset']} {'binarized' if r['trained_binary'] else 'grey'} | "
                     f"{'fixed binarized' if r['binary'] else 'grey'} | {r['test_recon_nll']:.2f} | "
                     f"{r['test_mse']:.5f} |")
    report.write(a.report, lines)
    return rows


if __name__ == "__main__":
    main()
