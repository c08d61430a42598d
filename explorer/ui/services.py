"""The computations the tabs share over the catalog's models, each done once and remembered.

Examples (a test image, or a sample where there is none), codes of user images and of test
images, GAN training replays with their class scores, receptive fields, typical prior
densities, a VQ-VAE's generations step by step and its codebook usage, and the warm-up that fills these caches before the first visitor arrives. Heavy
results are cached so that dragging a slider never recomputes them; every cache is a
`Memo`. No Gradio here: the tabs call these and turn the results into components.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Iterator, TypeVar

import numpy as np
import torch

from .. import directions, heavy, latent, metrics, packing, sampling
from ..models.base import LatentModel
from .catalog import Catalog

# Test images encoded for the scatter of a 2-D code space: enough to see the clusters,
# few enough for the browser to draw quickly.
SCATTER_POINTS = 2000
# Encoded user images remembered (per model, image and class).
ENCODE_CACHE = 256
# Receptive fields remembered (per model, pixel and class): every pixel of four 28x28 models.
FIELD_CACHE = 4 * 784
# Generations of a VQ-VAE's prior remembered, every step of each (per model, seed and class):
# about 40 kB each, so stepping back and forth and replaying never draws the codes again.
CODE_PLAYS = 256
# Test images whose codes make a VQ-VAE's codebook-usage histogram.
USAGE_IMAGES = 2000
# Pictures drawn from a view's settings alone, remembered (the most recent): a hall asking for
# the same view at once (a preset, the lecturer's "now set the range to 3") draws it once.
PICTURES = 64

V = TypeVar("V")


def content_key(picture: Any) -> tuple:
    """A picture (numpy array or tensor) as a cache key: its shape, type and a digest of its
    pixels, so the same picture sent again finds what was computed for it."""
    array = np.ascontiguousarray(picture.numpy() if isinstance(picture, torch.Tensor) else np.asarray(picture))
    return array.shape, str(array.dtype), hashlib.sha1(array).digest()


class Memo(Generic[V]):
    """Values computed once per key and remembered: all of them, or the `size` most recently
    used. Safe to share between request threads; a value is computed outside the lock, so
    slow work never blocks lookups of other keys."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._computing: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value remembered for `key`, or `compute()`'s, remembered from now on. A caller
        that asks for a key another thread is computing waits for that value instead of
        computing it again (a visitor arriving while the warm-up computes it, say)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            running = self._computing.get(key)
            if running is None:
                running = self._computing[key] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            running.wait()
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    return self._values[key]
            return self.get(key, compute)  # the other thread failed (or it was evicted): try again
        try:
            value = compute()
            with self._lock:
                self._values[key] = value
                self._values.move_to_end(key)
                while self.size is not None and len(self._values) > self.size:
                    self._values.popitem(last=False)
            return value
        finally:
            with self._lock:
                del self._computing[key]
            running.set()


class ReplayScores:
    """Per epoch of a replay, what the data set's classifier reads in its frame
    (`metrics.replay_class_scores`: class_histogram, classes_covered, kl_to_uniform, legible),
    scored an epoch at a time on first use and remembered: all 60 epochs of a run take about a
    second of a core, one epoch a few milliseconds, and a visitor first asks for one."""

    def __init__(self, classifier: torch.nn.Module, frames: torch.Tensor) -> None:
        self._classifier, self._frames = classifier, frames
        self._scored: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._frames)

    def _score(self, epochs: list[int]) -> None:
        missing = [i for i in epochs if i not in self._scored]
        if missing:
            found = metrics.replay_class_scores(self._classifier, self._frames[missing])
            with self._lock:
                self._scored.update(zip(missing, found))

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"epoch index {i} out of range for {len(self)} epochs")
        i %= len(self)
        self._score([i])
        return self._scored[i]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._score(list(range(len(self))))  # the missing ones in one batch
        return (self._scored[i] for i in range(len(self)))


@dataclass(frozen=True)
class Replay:
    """A GAN's training replay: the same fixed-seed samples after every epoch, and their classes."""

    frames: torch.Tensor  # (E, N, 1, 28, 28) in [0, 1], one set of N samples per epoch
    epochs: list[int]  # the training epoch of each frame
    classes: list[str]
    # Per epoch: class_histogram, classes_covered, kl_to_uniform, legible; None without a classifier.
    scores: ReplayScores | None


@dataclass(frozen=True)
class CodeDirections:
    """What the directions view needs of one latent model, computed once."""

    ranking: directions.DimensionRanking
    principal: directions.PrincipalDirections
    class_means: torch.Tensor | None  # (classes, D) in standardized units; None without labels
    source: str                       # where the codes came from, in words


class Services:
    """Cached computations over the models of `catalog` (which they look models up in)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        # (model, image hash, class) -> (code (D,), reconstruction MSE per pixel)
        self._encoded: Memo[tuple[torch.Tensor, float]] = Memo(ENCODE_CACHE)
        self._test_codes: Memo[tuple[torch.Tensor, torch.Tensor]] = Memo()
        self._replays: Memo[Replay] = Memo()
        self._fields: Memo[torch.Tensor] = Memo(FIELD_CACHE)
        self._typical: Memo[float] = Memo()
        self._directions: Memo[CodeDirections] = Memo()
        self._samples: Memo[tuple[torch.Tensor, torch.Tensor]] = Memo()
        self._code_plays: Memo[list[sampling.CodeStep]] = Memo(CODE_PLAYS)
        self._code_usage: Memo[tuple[torch.Tensor, str]] = Memo()
        self._pictures: Memo[Any] = Memo(PICTURES)

    def _latent_model(self, name: str | None) -> LatentModel:
        return self.catalog.checkpoint(name, "latent").model  # type: ignore[return-value]

    # ---------------------------------------------------------------- examples

    def example(self, name: str, index: int) -> tuple[torch.Tensor, int | None, str]:
        """Example input for a model: (image (1, 28, 28) in [0, 1], class or None, caption).

        A real test image where the data set is available; otherwise a sample from the
        model itself (seeded by `index`), so the app works with no data at all.
        """
        index = int(index)
        ckpt = self.catalog.checkpoint(name)
        if ckpt.dataset in self.catalog.test_sets:
            return self.catalog.test_image(ckpt.dataset, index)
        model = ckpt.model
        label = index % model.num_classes if model.num_classes else None
        if isinstance(model, LatentModel):
            image = latent.decode(model, latent.seeded_code(model, index).unsqueeze(0), label)[0]
        elif model.kind == "discrete_latent":  # a VQ-VAE: codes from its prior, then the decoder
            with torch.no_grad():
                image = model.decode(sampling.sample_codes(model, 1, y=label,
                                                           generator=torch.Generator().manual_seed(index)))[0]
        else:
            image = sampling.sample(model, 1, y=label, generator=torch.Generator().manual_seed(index))[0]
        return image, label, f"no test images available; a sample from {name} (seed {index})"

    def dataset_example(self, dataset: str, index: int) -> tuple[torch.Tensor, int | None, str]:
        """Test image number `index` of a data set: (image (1, 28, 28) in [0, 1], class, caption);
        without its test images, a sample from a model of that data set."""
        if dataset in self.catalog.test_sets:
            return self.catalog.test_image(dataset, index)
        stand_ins = self.catalog.dataset_models(dataset)
        if not stand_ins:
            raise ValueError(f"No {dataset} test images and no {dataset} model here; "
                             "upload or draw an image instead.")
        return self.example(stand_ins[0], index)

    # ---------------------------------------------------------------- codes

    def encode(self, name: str, image: torch.Tensor, label: int | None = None) -> torch.Tensor:
        """Code (D,) of one image (1, 28, 28); see `encode_with_error`."""
        return self.encode_with_error(name, image, label)[0]

    def encode_with_error(self, name: str, image: torch.Tensor, label: int | None = None,
                          progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, float]:
        """Code (D,) of one image (1, 28, 28) and the reconstruction's mean squared error per
        pixel, remembered: re-drawing a grid or changing the number of steps never re-encodes
        (a GAN's encoder is a slow optimisation, and the error is how well it fitted).
        `progress` follows a GAN's inversion (steps done, steps); a remembered code has none."""
        def compute() -> tuple[torch.Tensor, float]:
            model = self._latent_model(name)
            # A GAN's inversion is heavy (a GPU on ZeroGPU); an encoder network is one quick pass.
            if latent.inverts(model):
                code, error = heavy.invert(model, image.unsqueeze(0), label, progress=progress)
            else:
                code, error = heavy.encode(model, image.unsqueeze(0), label)
            return code[0], float(error[0])

        return self._encoded.get((name, content_key(image), label), compute)

    def test_codes(self, name: str, n: int = SCATTER_POINTS) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Codes (n, D) and labels (n,) of the first n test images, computed once per model.

        None without test images, and for a GAN: inverting thousands of images by optimisation
        would take several minutes of computing."""
        split = self.catalog.test_set(name)
        model = self._latent_model(name)
        if split is None or latent.inverts(model):
            return None

        def compute() -> tuple[torch.Tensor, torch.Tensor]:
            x = split.images[:n].float().div(255.0).unsqueeze(1)
            y = split.labels[:n]
            if not model.num_classes:
                return latent.encode(model, x), y
            codes = torch.cat([latent.encode(model, x[y == k], int(k)) for k in range(model.num_classes)])
            return codes, torch.cat([y[y == k] for k in range(model.num_classes)])

        return self._test_codes.get((name, n), compute)

    def typical_log_density(self, name: str) -> float:
        """Average prior log-density of prior samples of a latent model (a reference line)."""
        return self._typical.get(name, lambda: latent.typical_log_density(self._latent_model(name)))

    def labelled_samples(self, name: str, n: int = SCATTER_POINTS) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Prior codes (n, D) and the class the data set's classifier reads in each decoded one,
        for a model whose test images cannot be encoded quickly (a GAN); None without a classifier."""
        classifier = self.catalog.classifier(name)
        if classifier is None:
            return None

        def compute() -> tuple[torch.Tensor, torch.Tensor]:
            model = self._latent_model(name)
            z = model.sample_latent(n, torch.Generator().manual_seed(0))
            label = 0 if model.num_classes else None
            return z, metrics.classify(classifier.model, latent.decode(model, z, label))[0]

        return self._samples.get(name, compute)

    def code_directions(self, name: str) -> CodeDirections:
        """Dimensions ranked by effect, principal directions and class means of a latent model.

        With an encoder and test images: from the encoded test images (the KL ranking of a VAE
        on those images). A GAN (no encoder), or a model without test images: from prior
        samples, GANSpace-style, with class means of samples the classifier labels."""
        def compute() -> CodeDirections:
            model = self._latent_model(name)
            found = self.test_codes(name)
            split = self.catalog.test_set(name)
            classifier = self.catalog.classifier(name)
            if found is not None and split is not None:
                codes, labels = found
                x = split.images[:SCATTER_POINTS].float().div(255.0).unsqueeze(1)
                y = split.labels[:SCATTER_POINTS] if model.num_classes else None
                ranking = directions.rank_dimensions(model, x, y)
                principal = directions.principal_directions(model, codes, source=f"{len(codes)} encoded test images")
                means = None if model.num_classes else directions.class_means(model, codes, labels)
                return CodeDirections(ranking, principal, means, f"{len(codes)} encoded test images")
            n = 2000
            samples = latent.decode(model, model.sample_latent(n, torch.Generator().manual_seed(0)),
                                    0 if model.num_classes else None)
            ranking = directions.rank_dimensions(model, samples if directions.variational(model) else None,
                                                 torch.zeros(n, dtype=torch.long) if model.num_classes else None)
            principal = directions.sampled_principal_directions(model, n=n)
            means = (directions.sampled_class_means(model, classifier.model, n=n)
                     if classifier is not None and not model.num_classes else None)
            return CodeDirections(ranking, principal, means, f"{n} prior samples (no encoded test images)")

        return self._directions.get(name, compute)

    # ---------------------------------------------------------------- training replay

    def replay(self, name: str) -> Replay:
        """The model's training replay with each epoch's class scores, computed once."""
        return self._replays.get(name, lambda: self._load_replay(name))

    def _load_replay(self, name: str) -> Replay:
        ckpt = self.catalog.checkpoint(name, "latent")
        if not ckpt.history.get("replay"):
            raise ValueError(f"{name} has no training replay: only GAN checkpoints keep samples from every epoch.")
        frames = packing.unpack_replay(ckpt.history["replay"], tuple(ckpt.model.data_shape))
        epochs = ckpt.history.get("epoch")
        if not isinstance(epochs, list) or len(epochs) != len(frames):
            epochs = list(range(1, len(frames) + 1))
        classifier = self.catalog.classifier(name)
        scores = None if classifier is None else ReplayScores(classifier.model, frames)
        return Replay(frames, [int(e) for e in epochs], self.catalog.classes(name), scores)

    # ---------------------------------------------------------------- autoregressive models

    def receptive_field(self, name: str, row: int, col: int, label: int | None = None) -> torch.Tensor:
        """Which pixels the prediction at (row, col) depends on, (H, W) in [0, 1], remembered:
        it depends only on the model and the position, not on the image being generated."""
        model = self.catalog.checkpoint(name, "autoregressive").model
        return self._fields.get((name, int(row), int(col), label), lambda: sampling.receptive_field(
            model, int(row), int(col), label, generator=torch.Generator().manual_seed(0)))

    # ---------------------------------------------------------------- discrete codes (VQ-VAE)

    def code_play(self, name: str, seed: int, label: int | None = None) -> list[sampling.CodeStep]:
        """Every step of one generation by a VQ-VAE's prior (one sample), drawn in full once and
        remembered: a player then only shows frames, and stepping never re-runs the prior."""
        model = self.catalog.checkpoint(name, "discrete").model

        def compute() -> list[sampling.CodeStep]:
            return list(sampling.code_stream(model, 1, y=label, generator=torch.Generator().manual_seed(int(seed))))

        return self._code_plays.get((name, int(seed), label), compute)

    def code_usage(self, name: str) -> tuple[torch.Tensor, str] | None:
        """How often each code is used, (K,) counts, over the first USAGE_IMAGES encoded test
        images, and where they came from in words; None without test images."""
        split = self.catalog.test_set(name)
        if split is None:
            return None

        def compute() -> tuple[torch.Tensor, str]:
            model = self.catalog.checkpoint(name, "discrete").model
            x = split.images[:USAGE_IMAGES].float().div(255.0).unsqueeze(1)
            with torch.no_grad():
                codes = model.encode(x)
            return torch.bincount(codes.flatten(), minlength=model.num_codes), f"{len(x)} encoded test images"

        return self._code_usage.get(name, compute)

    # ---------------------------------------------------------------- pictures

    def picture(self, key: Hashable, draw: Callable[[], V]) -> V:
        """What `draw` makes for a view's settings `key` (every setting that decides it, the
        model's name first), drawn once and remembered among the PICTURES most recent. The
        value is shared: callers never change it."""
        return self._pictures.get(key, draw)

    # ---------------------------------------------------------------- start-up

    def warm_up(self, stop: threading.Event | None = None) -> None:
        """Run each model once and fill the caches, so visitors do not pay for lazy
        initialisation; the quick steps first, the directions of GANs (seconds each) last.
        Checks `stop` between steps (the server sets it when it exits)."""
        for step in self.warm_up_steps():
            if stop is not None and stop.is_set():
                return
            step()

    def warm_up_steps(self) -> Iterator[Callable[[], Any]]:
        """The warm-up as a sequence of steps, each a call of a second or less on a core,
        except the directions of a model without an encoder (a GAN: several seconds)."""
        for name in self.catalog.latent_names:
            yield functools.partial(self._first_pass, name)
        for name in self.catalog.replay_names():
            yield lambda name=name: list(self.replay(name).scores or [])  # every epoch, for the coverage curve
        for name, ckpt in self.catalog.autoregressive.items():
            label = 0 if ckpt.model.num_classes else None
            yield lambda ckpt=ckpt, label=label: sampling.sample(ckpt.model, 1, y=label,
                                                                 generator=torch.Generator().manual_seed(0))
            yield functools.partial(self.receptive_field, name, *(s // 2 for s in ckpt.model.data_shape[1:]), label)
        for name, ckpt in self.catalog.discrete.items():
            yield functools.partial(self.code_play, name, 0, 0 if ckpt.model.num_classes else None)
            yield functools.partial(self.code_usage, name)
        for name in sorted(self.catalog.latent_names, key=lambda n: latent.inverts(self._latent_model(n))):
            yield functools.partial(self.code_directions, name)  # also encodes test images where it can
            yield functools.partial(self.typical_log_density, name)

    def _first_pass(self, name: str) -> None:
        """Decode and encode once (the first call of a model pays for lazy set-up)."""
        model = self._latent_model(name)
        label = 0 if model.num_classes else None
        x = latent.decode(model, latent.prior_mean(model).unsqueeze(0), label)
        if latent.inverts(model):
            # One step of one restart runs the whole inversion code path without its cost.
            model.invert(x, restarts=1, steps=1)  # type: ignore[attr-defined]
        else:
            latent.encode(model, x, label)
