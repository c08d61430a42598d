"""Smoke test of the training-speed benchmark on tiny settings: it times, reports and pairs."""

from __future__ import annotations

from benchmarks import training_speed
from explorer.models.pixelcnn import MaskedConv2d
from tests.helpers import write_fake_dataset


def test_report_has_a_row_per_family_and_restores_the_masks(tmp_path, monkeypatch):
    monkeypatch.setitem(training_speed.SHIPPED_SIZES, "gan", {"hidden": 8, "latent_dim": 4})
    monkeypatch.setitem(training_speed.SHIPPED_SIZES, "gated_pixelcnn", {"channels": 4, "layers": 1,
                                                                         "first_kernel": 3})
    out = tmp_path / "speed.md"
    training_speed.main(["--only", "gan", "gated_pixelcnn", "--steps", "1", "--report", str(out)])
    text = out.read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith("| gan ") or ln.startswith("| gated_pixelcnn ")]
    assert len(rows) == 2 and "native bf16:" in text
    cells = rows[1].split("|")[1:-1]
    assert len(cells) == 11 and all(float(c) > 0 for c in cells[2:7])
    assert MaskedConv2d.masked_weight is not None and "lambda" not in repr(MaskedConv2d.masked_weight)


def test_paired_run_trains_both_precisions(tmp_path, monkeypatch):
    data = write_fake_dataset(tmp_path / "data", n_train=64, n_test=16)
    monkeypatch.setattr(training_speed, "PAIRED", {"model": "pixelcnn", "epochs": 1, "limit": 64,
                                                   "config": {"channels": 4, "layers": 1, "first_kernel": 3}})
    rows = training_speed.paired_run(str(data), threads=1)
    assert [r[0] for r in rows] == ["fp32", "bf16"]
    assert all(0 < nll < float("inf") and sec > 0 for _, nll, sec in rows)
    # Same seed and data: the two runs start from the same weights and see the same batches,
    # so after one tiny epoch their NLLs are close (bf16 rounding only).
    assert abs(rows[0][1] - rows[1][1]) < 0.05 * rows[0][1]
