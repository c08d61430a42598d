"""What the app serves: the latent models in a folder, loaded once, and their test sets.

A missing, damaged or foreign checkpoint is skipped and noted (the app shows the notes);
the rest are served. Latent models are what the model pickers offer; a data set's
classifier is a tool (it scores GAN samples in the training replay), never offered;
autoregressive models are kept apart for their own views. Test images are loaded once per
data set where they can be had (a data folder, or a download of the test split); without them the
app falls back to samples from the models and says so. No Gradio here: the tabs ask this
object for models, examples and cached results.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import checkpoints, heavy, latent, metrics, packing, sampling
from ..checkpoints import Checkpoint, CheckpointError
from ..data import DataError, Split, class_names, load_split, resolve_data_dir
from ..models.base import AutoregressiveModel, LatentModel

log = logging.getLogger(__name__)

# Test images encoded for the scatter of a 2-D code space: enough to see the clusters,
# few enough for the browser to draw quickly.
SCATTER_POINTS = 2000
# Encoded user images remembered (per model, image and class).
ENCODE_CACHE = 256
# Receptive fields remembered (per model, pixel and class): every pixel of four 28x28 models.
FIELD_CACHE = 4 * 784


@dataclass(frozen=True)
class Replay:
    """A GAN's training replay: the same fixed-seed samples after every epoch, and their classes."""

    frames: torch.Tensor  # (E, N, 1, 28, 28) in [0, 1], one set of N samples per epoch
    epochs: list[int]  # the training epoch of each frame
    classes: list[str]
    # Per epoch: class_histogram, classes_covered, kl_to_uniform; None without a classifier.
    scores: list[dict[str, Any]] | None


@dataclass
class Catalog:
    """Loaded latent models by name, notes about what was skipped, and test sets by data set.

    `classifiers` (by data set) and `autoregressive` (by name) hold the other checkpoints
    found; the latent-model pickers never offer them.
    """

    models: dict[str, Checkpoint]
    notices: list[str] = field(default_factory=list)
    test_sets: dict[str, Split] = field(default_factory=dict)
    data_notes: dict[str, str] = field(default_factory=dict)
    classifiers: dict[str, Checkpoint] = field(default_factory=dict)
    autoregressive: dict[str, Checkpoint] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        # (model, image hash, class) -> (code (D,), reconstruction MSE per pixel)
        self._encoded: OrderedDict[tuple[str, bytes, int | None], tuple[torch.Tensor, float]] = OrderedDict()
        self._replays: dict[str, Replay] = {}
        self._fields: OrderedDict[tuple[str, int, int, int | None], torch.Tensor] = OrderedDict()

    # ---------------------------------------------------------------- building

    @classmethod
    def from_folder(cls, folder: str | Path, data_dir: str | Path | None = None,
                    download: bool = True) -> "Catalog":
        """Load every latent-model checkpoint in `folder`; skip (and note) those that fail.

        Test sets come from `data_dir`, else $LATENT_EXPLORER_DATA, else (if `download`)
        a download of the test split; a data set that cannot be had is noted, not fatal.
        """
        folder = Path(folder)
        models: dict[str, Checkpoint] = {}
        classifiers: dict[str, Checkpoint] = {}
        autoregressive: dict[str, Checkpoint] = {}
        notices: list[str] = []
        files = checkpoints.checkpoint_files(folder)
        if not files:
            notices.append(f"No checkpoints found in the folder {folder.name}/: train one with `python -m train ...`.")
        for path in files:
            try:
                ckpt = checkpoints.load(path)
            except CheckpointError as err:
                # The file's name, not its path: the page never shows where the server keeps files.
                notices.append(f"Skipped {path.name}: {str(err).replace(f'{path}: ', '')}")
                continue
            if isinstance(ckpt.model, LatentModel):
                models[ckpt.name] = ckpt
            elif ckpt.model.kind == "classifier":
                # The replay scores with trained/<dataset>-classifier; any other one only stands in.
                if ckpt.name == f"{ckpt.dataset}-classifier" or ckpt.dataset not in classifiers:
                    classifiers[ckpt.dataset] = ckpt
            elif ckpt.model.kind == "autoregressive":
                autoregressive[ckpt.name] = ckpt
        test_sets: dict[str, Split] = {}
        data_notes: dict[str, str] = {}
        folder_for_data = resolve_data_dir(data_dir)
        for dataset in sorted({c.dataset for c in (*models.values(), *autoregressive.values())}):
            if folder_for_data is None and not download:
                data_notes[dataset] = "no data folder given and downloads are off"
                continue
            try:
                test_sets[dataset] = load_split(dataset, "test", folder_for_data)
            except (DataError, ValueError, OSError) as err:
                # The page gets a short sentence; the details (paths, network errors), the log.
                log.warning("no %s test images: %s", dataset, err)
                data_notes[dataset] = err.brief if isinstance(err, DataError) else "the test images could not be read"
        return cls(models, notices, test_sets, data_notes, classifiers, autoregressive)

    # ---------------------------------------------------------------- lookups

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def choices(self, names: list[str] | None = None) -> list[tuple[str, str]]:
        """(label, name) pairs for a dropdown: the file's one-line summary names data and metric."""
        return [(self.label(n), n) for n in (self.names if names is None else names)]

    def label(self, name: str) -> str:
        """One line: what the model is, on what data, and its key metric.

        For a GAN that is the sample-quality score (Frechet distance on the classifier's
        features, classes covered) where the benchmark has stored it: a GAN has no likelihood,
        and its training losses say little about its samples. Otherwise the file's headline.
        """
        ckpt = self.checkpoint(name)
        scores = ckpt.metrics
        if latent.inverts(ckpt.model) and "frechet_distance" in scores:
            scores = {**scores, "headline": "frechet_distance"}
        line = checkpoints.describe(ckpt.path.name, ckpt.model.name, ckpt.dataset, scores)
        line = line.removeprefix(f"{ckpt.path.name}: ")
        if scores is not ckpt.metrics and "classes_covered" in scores:
            line += f", classes covered = {scores['classes_covered']}/{len(self.classes(name))}"
        return line

    def get(self, name: str | None) -> Checkpoint:
        if not name or name not in self.models:
            known = ", ".join(self.names) or "none"
            raise ValueError(f"Unknown model {name!r}. Available models: {known}.")
        return self.models[name]

    def model(self, name: str | None) -> LatentModel:
        return self.get(name).model  # type: ignore[return-value]

    @property
    def ar_names(self) -> list[str]:
        """The autoregressive models (PixelCNN, PixelRNN), for the pixel and likelihood tabs."""
        return list(self.autoregressive)

    def ar_model(self, name: str | None) -> AutoregressiveModel:
        if not name or name not in self.autoregressive:
            known = ", ".join(self.ar_names) or "none"
            raise ValueError(f"Unknown autoregressive model {name!r}. Available: {known}.")
        return self.autoregressive[name].model  # type: ignore[return-value]

    def checkpoint(self, name: str | None) -> Checkpoint:
        """Any served model's checkpoint, latent or autoregressive."""
        if name and name in self.autoregressive:
            return self.autoregressive[name]
        if name and name in self.models:
            return self.models[name]
        known = ", ".join([*self.names, *self.ar_names]) or "none"
        raise ValueError(f"Unknown model {name!r}. Available models: {known}.")

    def classes(self, name: str) -> list[str]:
        """Class names of the model's data set (what a conditional model's label means)."""
        return class_names(self.checkpoint(name).dataset)

    def widest(self) -> int:
        """The largest code size among the models (at least 2, the least a grid needs)."""
        return max([2] + [c.model.latent_dim for c in self.models.values()])

    def two_d(self) -> list[str]:
        """Models with a 2-D code space (their whole manifold fits one picture)."""
        return [n for n, c in self.models.items() if c.model.latent_dim == 2]

    def test_set(self, name: str) -> Split | None:
        return self.test_sets.get(self.checkpoint(name).dataset)

    def data_note(self, name: str) -> str:
        dataset = self.checkpoint(name).dataset
        return self.data_notes.get(dataset, "") if dataset not in self.test_sets else ""

    # ---------------------------------------------------------------- examples

    def example(self, name: str, index: int) -> tuple[torch.Tensor, int | None, str]:
        """Example input for a model: (image (1, 28, 28) in [0, 1], class or None, caption).

        A real test image where the data set is available; otherwise a sample from the
        model itself (seeded by `index`), so the app works with no data at all.
        """
        index = int(index)
        ckpt = self.checkpoint(name)
        if ckpt.dataset in self.test_sets:
            return self.dataset_example(ckpt.dataset, index)
        model = ckpt.model
        label = index % model.num_classes if model.num_classes else None
        if isinstance(model, LatentModel):
            image = latent.decode(model, latent.seeded_code(model, index).unsqueeze(0), label)[0]
        else:
            image = sampling.sample(model, 1, y=label, generator=torch.Generator().manual_seed(index))[0]
        return image, label, f"no test images available; a sample from {name} (seed {index})"

    def dataset_example(self, dataset: str, index: int) -> tuple[torch.Tensor, int | None, str]:
        """Test image number `index` of a data set: (image (1, 28, 28) in [0, 1], class, caption);
        without its test images, a sample from a model of that data set."""
        split = self.test_sets.get(dataset)
        if split is None:
            # Without the data set, a sample from one of its models (a latent model decodes fastest).
            stand_ins = [n for n, c in (*self.models.items(), *self.autoregressive.items()) if c.dataset == dataset]
            if not stand_ins:
                raise ValueError(f"No {dataset} test images and no {dataset} model here; "
                                 "upload or draw an image instead.")
            return self.example(stand_ins[0], index)
        index = int(index) % len(split)
        label = int(split.labels[index])
        image = split.images[index].float().div(255.0).unsqueeze(0)
        return image, label, f"{dataset} test image #{index}: {split.classes[label]}"

    def encode(self, name: str, image: torch.Tensor, label: int | None = None) -> torch.Tensor:
        """Code (D,) of one image (1, 28, 28); see `encode_with_error`."""
        return self.encode_with_error(name, image, label)[0]

    def encode_with_error(self, name: str, image: torch.Tensor, label: int | None = None
                          ) -> tuple[torch.Tensor, float]:
        """Code (D,) of one image (1, 28, 28) and the reconstruction's mean squared error per
        pixel, remembered: re-drawing a grid or changing the number of steps never re-encodes
        (a GAN's encoder is a slow optimisation, and the error is how well it fitted)."""
        key = (name, hashlib.sha1(image.numpy().tobytes()).digest(), label)
        with self._lock:
            if key in self._encoded:
                self._encoded.move_to_end(key)
                return self._encoded[key]
        model = self.model(name)
        x = image.unsqueeze(0)
        # A GAN's inversion is heavy (a GPU on ZeroGPU); an encoder network is one quick pass.
        code, error = (heavy.invert if latent.inverts(model) else heavy.encode)(model, x, label)
        found = (code[0], float(error[0]))
        with self._lock:
            self._encoded[key] = found
            while len(self._encoded) > ENCODE_CACHE:
                self._encoded.popitem(last=False)
        return found

    def test_codes(self, name: str, n: int = SCATTER_POINTS) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Codes (n, D) and labels (n,) of the first n test images, computed once per model.

        None without test images, and for a GAN: inverting thousands of images by optimisation
        would take several minutes of computing."""
        split = self.test_set(name)
        if split is None or latent.inverts(self.model(name)):
            return None
        with self._lock:
            if name not in self._codes:
                model = self.model(name)
                x = split.images[:n].float().div(255.0).unsqueeze(1)
                y = split.labels[:n]
                if model.num_classes:
                    codes = torch.cat([latent.encode(model, x[y == k], int(k)) for k in range(model.num_classes)])
                    y = torch.cat([y[y == k] for k in range(model.num_classes)])
                else:
                    codes = latent.encode(model, x)
                self._codes[name] = (codes, y)
            return self._codes[name]

    # ---------------------------------------------------------------- training replay

    def replayable(self) -> list[str]:
        """Models whose checkpoint holds a training replay (GANs: fixed-seed samples per epoch)."""
        return [n for n, c in self.models.items() if c.history.get("replay")]

    def classifier(self, name: str) -> Checkpoint | None:
        """The classifier of the model's data set, if one was loaded."""
        return self.classifiers.get(self.get(name).dataset)

    def replay(self, name: str) -> Replay:
        """The model's training replay with each epoch's class scores, computed once."""
        with self._lock:
            if name in self._replays:
                return self._replays[name]
        ckpt = self.get(name)
        if not ckpt.history.get("replay"):
            raise ValueError(f"{name} has no training replay: only GAN checkpoints keep samples from every epoch.")
        frames = packing.unpack_replay(ckpt.history["replay"], tuple(ckpt.model.data_shape))
        epochs = ckpt.history.get("epoch")
        if not isinstance(epochs, list) or len(epochs) != len(frames):
            epochs = list(range(1, len(frames) + 1))
        classifier = self.classifier(name)
        scores = None if classifier is None else metrics.replay_class_scores(classifier.model, frames)
        found = Replay(frames, [int(e) for e in epochs], self.classes(name), scores)
        with self._lock:
            self._replays[name] = found
        return found

    # ---------------------------------------------------------------- autoregressive models

    def receptive_field(self, name: str, row: int, col: int, label: int | None = None) -> torch.Tensor:
        """Which pixels the prediction at (row, col) depends on, (H, W) in [0, 1], remembered:
        it depends only on the model and the position, not on the image being generated."""
        key = (name, int(row), int(col), label)
        with self._lock:
            if key in self._fields:
                self._fields.move_to_end(key)
                return self._fields[key]
        field = sampling.receptive_field(self.ar_model(name), int(row), int(col), label,
                                         generator=torch.Generator().manual_seed(0))
        with self._lock:
            self._fields[key] = field
            while len(self._fields) > FIELD_CACHE:
                self._fields.popitem(last=False)
        return field

    @functools.cached_property
    def typical_log_density(self) -> dict[str, float]:
        """Average prior log-density of prior samples, per model (a reference line)."""
        return {n: latent.typical_log_density(c.model) for n, c in self.models.items()}  # type: ignore[arg-type]

    def warm_up(self) -> None:
        """Run each model once (decode and encode) and fill the caches, so the first
        visitor does not pay for lazy initialisation."""
        for name, ckpt in self.models.items():
            model: LatentModel = ckpt.model  # type: ignore[assignment]
            label = 0 if model.num_classes else None
            z = latent.prior_mean(model).unsqueeze(0)
            x = latent.decode(model, z, label)
            if latent.inverts(model):
                # One step of one restart runs the whole inversion code path (its first call
                # pays seconds of lazy set-up) without the full budget's cost.
                model.invert(x, restarts=1, steps=1)  # type: ignore[attr-defined]
            else:
                latent.encode(model, x, label)
            if model.latent_dim == 2:
                self.test_codes(name)
        for name in self.replayable():
            self.replay(name)
        for name, ckpt in self.autoregressive.items():
            label = 0 if ckpt.model.num_classes else None
            sampling.sample(ckpt.model, 1, y=label, generator=torch.Generator().manual_seed(0))
            self.receptive_field(name, *(s // 2 for s in ckpt.model.data_shape[1:]), label)
        _ = self.typical_log_density
