"""Is this image like the training data? Outlier scores, thresholds read off test data, AUROC.

Every score here is "higher = stranger", so one threshold rule and one AUROC serve them all:

- `classifier_doubt`: 1 - max_y p(y | x). A classifier must name a class for any input, so
  this is its only way to say "not sure"; it is often confident on things that are no digit.
- -log p(x) from a density model (an autoregressive model's exact NLL, in nats).
- `conditional_doubt`: -max_y log p(x | y), the cost of the image under its best label.
- `complexity_corrected`: -log p(x) minus the image's complexity, its length under a
  general-purpose lossless compressor (PNG), in nats (Serra et al., "Input Complexity and
  Out-of-distribution Detection with Likelihood-based Generative Models", ICLR 2020). A
  density model finds simple images (blank, smooth, few strokes) cheap whatever they show;
  a compressor does too, so the difference asks "cheaper than its simplicity explains?".
  It is a log-likelihood ratio against the simplest background model to hand.

Density models are known to rate some foreign images as *more* likely than their own test
data (Nalisnick et al., "Do Deep Generative Models Know What They Don't Know?", ICLR 2019);
`benchmarks/outliers.py` measures where that happens here.

A verdict compares a score with a threshold taken from scores of real test images (by
default their 99th percentile, so 1% of real images are flagged): never a constant.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

# Share of real test images allowed above the threshold, by default: 1%.
DEFAULT_QUANTILE = 0.99


def classifier_doubt(probabilities: torch.Tensor) -> torch.Tensor:
    """1 - max_y p(y | x) per image, from class probabilities (N, K): (N,)."""
    return 1.0 - probabilities.max(dim=-1).values


def conditional_doubt(class_log_likelihoods: torch.Tensor) -> torch.Tensor:
    """-max_y log p(x | y) per image, from log-likelihoods (N, K) in nats: (N,)."""
    return -class_log_likelihoods.max(dim=-1).values


def _png_bytes(image: np.ndarray, binary: bool) -> int:
    buffer = io.BytesIO()
    picture = Image.fromarray(image)
    (picture.convert("1") if binary else picture).save(buffer, "PNG", optimize=True)
    return len(buffer.getvalue())


def png_complexity(x: torch.Tensor) -> torch.Tensor:
    """Each image's PNG length beyond that of a blank image of its size, in nats: (N,) float64.

    `x` is (N, 1, H, W) in [0, 1]. Binary images are stored as 1-bit PNGs, others as 8-bit
    grey, so the compressor sees what the model sees. The blank image's length (headers,
    mostly) is subtracted so that a blank image has complexity 0.
    """
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"need grey images (N, 1, H, W), got {tuple(x.shape)}")
    binary = bool(((x == 0) | (x == 1)).all())
    pixels = (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()   # (N, H, W)
    blank = _png_bytes(np.zeros(pixels.shape[1:], np.uint8), binary)
    lengths = [_png_bytes(image, binary) - blank for image in pixels]
    return torch.tensor(lengths, dtype=torch.float64) * 8 * math.log(2)


def complexity_corrected(nll: torch.Tensor, complexity: torch.Tensor) -> torch.Tensor:
    """-log p(x) - complexity(x), both in nats per image: (N,)."""
    return nll.double() - complexity.double()


@dataclass(frozen=True)
class Threshold:
    """A score above `value` is flagged: `value` is the `quantile` of `n` real test images' scores."""

    value: float
    quantile: float
    n: int

    def flags(self, scores: torch.Tensor | float) -> torch.Tensor:
        """True where a score lies above the threshold (the image looks unlike the test data)."""
        return torch.as_tensor(scores, dtype=torch.float64) > self.value

    def describe(self, unit: str = "") -> str:
        """A sentence for a student: where the line is and where it came from."""
        flagged = f"{100 * (1 - self.quantile):.3g}%"
        return (f"threshold {self.value:.4g}{unit}: the {100 * self.quantile:.3g}th percentile of {self.n} "
                f"real test images, so {flagged} of real images land above it")


def threshold_from(scores: torch.Tensor, quantile: float = DEFAULT_QUANTILE) -> Threshold:
    """The threshold that flags a share 1 - quantile of these (real, in-distribution) scores."""
    scores = torch.as_tensor(scores, dtype=torch.float64).reshape(-1)
    if len(scores) < 2:
        raise ValueError("a threshold needs the scores of at least two real images")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    return Threshold(float(torch.quantile(scores, quantile)), quantile, len(scores))


@dataclass(frozen=True)
class Spread:
    """How a score spreads over real test images, kept as its 0th..100th percentiles.

    101 numbers are enough to place any image in the spread and to draw a threshold, and
    small enough to store in a checkpoint's metadata, so the app has them without the data.
    """

    percentiles: tuple[float, ...]
    n: int

    @classmethod
    def of(cls, scores: torch.Tensor) -> "Spread":
        scores = torch.as_tensor(scores, dtype=torch.float64).reshape(-1)
        if len(scores) < 2:
            raise ValueError("a spread needs the scores of at least two real images")
        levels = torch.linspace(0, 1, 101, dtype=torch.float64)
        return cls(tuple(torch.quantile(scores, levels).tolist()), len(scores))

    def threshold(self, quantile: float = DEFAULT_QUANTILE) -> Threshold:
        """The threshold at this quantile of the test scores (interpolated between percentiles)."""
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
        value = float(np.interp(100 * quantile, np.arange(101), self.percentiles))
        return Threshold(value, quantile, self.n)

    def percentile_of(self, value: float) -> float:
        """Where a score sits in the spread: the share of test images below it, in percent."""
        return float(np.interp(value, self.percentiles, np.arange(101)))

    def to_json(self) -> dict:
        return {"percentiles": [round(v, 4) for v in self.percentiles], "n": self.n}

    @classmethod
    def from_json(cls, stored: dict) -> "Spread":
        percentiles = tuple(float(v) for v in stored["percentiles"])
        if len(percentiles) != 101 or list(percentiles) != sorted(percentiles):
            raise ValueError("a stored spread holds 101 percentiles in increasing order")
        return cls(percentiles, int(stored["n"]))


def auroc(inliers: torch.Tensor, outliers: torch.Tensor) -> float:
    """The chance that a random outlier scores above a random inlier (ties count half).

    The area under the ROC curve of the rule "flag if score > t" over all t: 1 separates
    the sets perfectly, 0.5 is chance, below 0.5 the score ranks outliers as *more* typical
    than real data. Exact (Mann-Whitney U), from sorted inlier scores.
    """
    inliers = torch.as_tensor(inliers, dtype=torch.float64).reshape(-1).sort().values
    outliers = torch.as_tensor(outliers, dtype=torch.float64).reshape(-1)
    if len(inliers) == 0 or len(outliers) == 0:
        raise ValueError("AUROC needs at least one inlier and one outlier score")
    below = torch.searchsorted(inliers, outliers, side="left").double()       # inliers < each outlier
    at_or_below = torch.searchsorted(inliers, outliers, side="right").double()
    wins = below + 0.5 * (at_or_below - below)
    return float(wins.sum()) / (len(inliers) * len(outliers))
