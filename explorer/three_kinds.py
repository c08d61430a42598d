"""One image, three kinds of model: a classifier p(y | x), a density p(x), a conditional density p(x | y).

The lecture contrast in code. For a batch of images this gathers what each kind says:

- the classifier's p(y | x): it must name a class, even for an image that is no digit;
- the density model's -log p(x): it can call an image unlike its data (an outlier);
- the class-conditional model's -log p(x | y) for every y, and by Bayes' rule
  (`explorer.bayes`) its own p(y | x) and p(x): it can label an image and reject it.

Verdicts compare scores with thresholds read off real test images (`explorer.outliers`).
The app's side-by-side view and `benchmarks/outliers.py` both call `judge`, so the numbers
on the page are the numbers in the report. Conditional generation two ways lives here too:
straight from p(x | y), and by Bayes from p(x) and p(y | x) (`by_bayes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from . import bayes, outliers, sampling
from .models.base import AutoregressiveModel

# Score names, as the benchmark reports them and as checkpoints store their test spreads.
CLASSIFIER = "classifier doubt, 1 - max p(y|x)"
DENSITY = "-log p(x)"
CONDITIONAL = "-max_y log p(x|y)"
CORRECTED = "-log p(x) - PNG complexity"
# Where a checkpoint keeps the spread of its score over real test images (written by
# `benchmarks/outliers.py --write-metadata`), and the threshold read off it, for the model card.
STORED_SPREADS = {DENSITY: ("test_nll_spread", "outlier_threshold_nll"),
                  CONDITIONAL: ("test_best_class_nll_spread", "outlier_threshold_best_class_nll")}


def stored_spread(metrics: dict, score: str) -> outliers.Spread | None:
    """The test spread of `score` a checkpoint's metrics hold, or None if they hold none."""
    key = STORED_SPREADS[score][0]
    return outliers.Spread.from_json(metrics[key]) if key in metrics else None


@dataclass
class Judgement:
    """What each kind of model says about N images. Missing models leave their fields None.

    classifier_probs (N, K): the classifier's p(y | x).
    nll (N,): -log p(x) under the density model, nats.
    class_log_likelihoods (N, K): log p(x | y) under the conditional model, nats.
    bayes_probs (N, K), evidence (N,): the conditional model's p(y | x) and log p(x).
    complexity (N,): PNG length of the image as the density model saw it, nats.
    """

    classifier_probs: torch.Tensor | None = None
    nll: torch.Tensor | None = None
    class_log_likelihoods: torch.Tensor | None = None
    bayes_probs: torch.Tensor | None = None
    evidence: torch.Tensor | None = None
    complexity: torch.Tensor | None = None

    def scores(self) -> dict[str, torch.Tensor]:
        """Every outlier score the models allow, by name; higher = stranger. (N,) each."""
        out = {}
        if self.classifier_probs is not None:
            out[CLASSIFIER] = outliers.classifier_doubt(self.classifier_probs).double()
        if self.nll is not None:
            out[DENSITY] = self.nll.double()
        if self.class_log_likelihoods is not None:
            out[CONDITIONAL] = outliers.conditional_doubt(self.class_log_likelihoods).double()
        if self.nll is not None and self.complexity is not None:
            out[CORRECTED] = outliers.complexity_corrected(self.nll, self.complexity)
        return out


@dataclass
class ThreeKinds:
    """A classifier, a density model and a class-conditional density model of one data set.

    Any may be None (the app serves what it has). `log_prior` is p(y) for the Bayes
    classifier, uniform if None.
    """

    classifier: nn.Module | None = None
    density: AutoregressiveModel | None = None
    conditional: AutoregressiveModel | None = None
    log_prior: torch.Tensor | None = field(default=None)

    @torch.no_grad()
    def judge(self, grey: torch.Tensor, *, batch_size: int = 50, progress: bool = False) -> Judgement:
        """Grey images (N, 1, H, W) in [0, 1] under each model present: a `Judgement`.

        A binary density model sees each image cut at 0.5 (one fixed rule for a user's picture
        and for every data set scored against it), an 8-bit one its 256 grey levels."""
        out = Judgement()
        if self.classifier is not None:
            self.classifier.eval()
            device = next(self.classifier.parameters()).device
            out.classifier_probs = torch.cat([
                torch.softmax(self.classifier(grey[s:s + 1000].to(device)).double(), 1).cpu()
                for s in range(0, len(grey), 1000)])
        if self.density is not None:
            x = self.density.as_input(grey, threshold=True)
            device = next(self.density.parameters()).device
            out.nll = torch.cat([-self.density.log_prob(x[s:s + batch_size].to(device)).double().cpu()
                                 for s in range(0, len(x), batch_size)])
            out.complexity = outliers.png_complexity(x)
        if self.conditional is not None:
            x = self.conditional.as_input(grey, threshold=True)
            out.class_log_likelihoods = bayes.class_log_likelihoods(self.conditional, x, progress=progress)
            out.bayes_probs, out.evidence = bayes.posterior(out.class_log_likelihoods, self.log_prior)
        return out


def most_ambiguous(probabilities: torch.Tensor, a: int, b: int) -> int:
    """The index of the image a classifier finds hardest to call between classes a and b:
    the largest min(p(a | x), p(b | x)) among class probabilities (N, K)."""
    return int(torch.minimum(probabilities[:, a], probabilities[:, b]).argmax())


@dataclass(frozen=True)
class Verdict:
    """One image's score against the spread of real test images' scores."""

    score: str
    value: float
    spread: outliers.Spread | None      # None: no test scores to compare with

    @property
    def threshold(self) -> outliers.Threshold | None:
        return None if self.spread is None else self.spread.threshold()

    @property
    def percentile(self) -> float | None:
        """Share of real test images scoring below this image, in percent."""
        return None if self.spread is None else self.spread.percentile_of(self.value)

    @property
    def outlier(self) -> bool | None:
        """True above the threshold, False below it, None without test scores."""
        return None if self.spread is None else bool(self.threshold.flags(self.value))


@dataclass
class BayesDraws:
    """Conditional generation by Bayes: draws from p(x), their weights p(y | x), the resampled ones."""

    draws: torch.Tensor        # (N, C, H, W) from the unconditional model
    weights: torch.Tensor      # (N,) the classifier's p(y | x) of each draw
    chosen: torch.Tensor       # (M,) indices into draws, resampled by weight
    effective_sample_size: float

    @property
    def images(self) -> torch.Tensor:
        """The resampled draws: approximately samples of p(x | y). (M, C, H, W)"""
        return self.draws[self.chosen]


@torch.no_grad()
def by_bayes(density: AutoregressiveModel, classifier: nn.Module, label: int, draws: int, keep: int,
             generator: torch.Generator) -> BayesDraws:
    """p(x | y) without a conditional model: `draws` images from p(x), weighted by the
    classifier's p(y = label | x), `keep` of them resampled (sampling-importance-resampling).

    p(x | y) = p(y | x) p(x) / p(y), so draws from p(x) weighted by p(y | x) represent p(x | y);
    the effective sample size says how many independent samples of it the draws are worth
    (about draws / K when the classifier is sure and the classes are balanced).
    """
    classes = int(classifier.num_classes)
    if not 0 <= label < classes:
        raise ValueError(f"the class must be one of 0..{classes - 1}, not {label}")
    x = sampling.sample(density, draws, generator=generator)                   # (N, C, H, W)
    classifier.eval()
    device = next(classifier.parameters()).device
    probs = torch.softmax(classifier(x.to(device)).double(), 1).cpu()         # (N, K)
    weights = probs[:, label]
    return BayesDraws(x, weights, bayes.resample(weights, keep, generator), bayes.effective_sample_size(weights))


@torch.no_grad()
def from_conditional(conditional: AutoregressiveModel, label: int, n: int,
                     generator: torch.Generator) -> torch.Tensor:
    """n samples of p(x | y = label) straight from a class-conditional model: (n, C, H, W)."""
    return sampling.sample(conditional, n, y=torch.full((n,), label), generator=generator)
