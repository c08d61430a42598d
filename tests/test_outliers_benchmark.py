"""Smoke test of `benchmarks.outliers` on tiny checkpoints and fake data: the report holds an
AUROC for every score and outlier set, and --write-metadata stores spreads the app can read."""

from __future__ import annotations

import re


from benchmarks import outliers as benchmark
from explorer import checkpoints, outliers, three_kinds
from tests.helpers import benchmark_setup, write_fake_dataset


def test_report_and_stored_spreads(tiny_trained_dir, tmp_path):
    trained, folder = benchmark_setup(tiny_trained_dir, tmp_path,
                                      ("mnist-classifier", "mnist-gated_pixelcnn", "mnist-gated_pixelcnn-classes"),
                                      n_test=24)
    write_fake_dataset(folder, "fashion-mnist", n_test=24)
    report = tmp_path / "outliers.md"
    benchmark.main(["--trained", str(trained), "--data-dir", str(folder), "--datasets", "mnist", "--n", "24",
                    "--draws", "4", "--threads", "1", "--report", str(report), "--write-metadata"])
    text = report.read_text()
    rows = [line for line in text.splitlines() if re.match(r"\| (fashion-mnist|uniform noise|inverted)", line)]
    assert len(rows) == 3 * 4    # three outlier sets x four scores
    for row in rows:
        assert 0.0 <= float(row.split("|")[-3]) <= 1.0
    assert "Bayes classifier" in text and "Discriminative classifier accuracy" in text and "| ESS |" in text
    stored = checkpoints.load(trained / "mnist-gated_pixelcnn.safetensors").metrics
    spread = outliers.Spread.from_json(stored["test_nll_spread"])
    assert spread.n == 24 and abs(stored["outlier_threshold_nll"] - spread.threshold().value) < 1e-3
    assert "99th percentile" in stored["how"]["outlier_threshold_nll"]
    assert "test_best_class_nll_spread" in checkpoints.load(trained / "mnist-gated_pixelcnn-classes.safetensors").metrics
    assert three_kinds.CORRECTED in text and "p(x\\|y)" in text
