"""What the app serves: the checkpoints in a folder, loaded once and found by name, and the
test sets of their data sets.

A missing, damaged or foreign checkpoint is skipped and noted (the app shows the notes); the
rest are shelved by kind. Latent models are what the main model pickers offer; autoregressive
models and discrete-code models (VQ-VAEs) have their own views; a data set's classifier is a tool (it scores GAN samples in the
training replay), never offered. Test images are loaded once per data set where they can be
had (a data folder, or a download of the test split); without them the app falls back to
samples from the models and says so.

Lookups only: nothing here computes with a model. The cached computations the tabs share
live in `services`. No Gradio here either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import checkpoints, latent, packing
from ..checkpoints import Checkpoint, CheckpointError
from ..data import DataError, Split, class_names, load_split, resolve_data_dir
from ..models.base import LatentModel

log = logging.getLogger(__name__)

KINDS = ("latent", "autoregressive", "discrete")

# Plain names of the model kinds and data sets, for the pickers (checkpoint names are for APIs).
KIND_NAMES = {"ae": "Autoencoder", "vae": "VAE", "cvae": "VAE", "gan": "GAN", "dcgan": "DCGAN",
              "wgan_gp": "WGAN-GP", "vqvae": "VQ-VAE", "pixelcnn": "PixelCNN", "gated_pixelcnn": "Gated PixelCNN",
              "row_lstm": "PixelRNN Row LSTM", "diagonal_bilstm": "PixelRNN Diagonal BiLSTM"}
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
# What a model's headline metric measures, as a sentence (lower is better for all of them).
METRIC_MEANINGS = {
    "test_nll": "test -log p(x) = {value:.2f} nats per image, exact (lower is better)",
    "test_bits_per_dim": "{value:.3f} bits per pixel on the test set: the exact -log p(x) in bits, "
                         "divided by the pixels (lower is better)",
    "test_neg_elbo": "test negative ELBO = {value:.2f} nats per image, an upper bound on -log p(x) "
                     "(lower is better)",
    "test_recon_nll": "test reconstruction cost = {value:.2f} nats per image (lower is better; a plain "
                      "autoencoder has no likelihood to report)",
    "test_nll_bound": "test -log p(x) at most {value:.2f} nats per image: reconstruction plus the code "
                      "prior's bits, on binary images (lower is better)",
    "test_accuracy": "test accuracy {value:.3f}",
}


# Files a checkpoint folder may hold besides checkpoints, without a notice (the shipped folder
# is also a package of data, hence its __init__.py).
QUIET_SUFFIXES = (".md", ".txt", ".json", ".gitattributes", ".gitignore", ".tmp")
QUIET_NAMES = ("__init__.py",)


def other_files(folder: Path) -> list[Path]:
    """Files in `folder` that are neither checkpoints, resume states nor documentation."""
    if not folder.is_dir():
        return []
    shelved = set(checkpoints.checkpoint_files(folder))
    return sorted(p for p in folder.iterdir() if p.is_file() and p not in shelved
                  and not p.name.endswith(checkpoints.RESUME_SUFFIX) and not p.name.startswith(".")
                  and not p.name.endswith(QUIET_SUFFIXES) and p.name not in QUIET_NAMES)


def damaged_replay(ckpt: Checkpoint) -> None:
    """A CheckpointError where the file's training replay (a GAN's) cannot be unpacked."""
    replay = ckpt.history.get("replay")
    if not replay:
        return
    try:
        if not isinstance(replay, list) or not all(isinstance(t, str) for t in replay):
            raise ValueError("it is not a list of packed frames")
        frames = packing.unpack_replay(replay, tuple(ckpt.model.data_shape))
        epochs = ckpt.history.get("epoch")
        if isinstance(epochs, list) and len(epochs) == len(frames):
            [int(e) for e in epochs]  # the replay numbers its frames with these
    except (ValueError, TypeError, RuntimeError) as err:  # binascii.Error is a ValueError
        raise CheckpointError(f"{ckpt.path}: its training replay is damaged ({err})") from None


@dataclass
class Catalog:
    """Served checkpoints by kind and name, notes on what was skipped, test sets by data set.

    `latent`, `autoregressive` and `discrete` map names to checkpoints; `classifiers` maps a data set to
    its classifier. `checkpoint(name, kind)` is the one way to find a served model.
    """

    latent: dict[str, Checkpoint]
    notices: list[str] = field(default_factory=list)
    test_sets: dict[str, Split] = field(default_factory=dict)
    data_notes: dict[str, str] = field(default_factory=dict)
    classifiers: dict[str, Checkpoint] = field(default_factory=dict)
    autoregressive: dict[str, Checkpoint] = field(default_factory=dict)
    discrete: dict[str, Checkpoint] = field(default_factory=dict)   # VQ-VAEs: a grid of codes and a prior

    @classmethod
    def from_folder(cls, folder: str | Path, data_dir: str | Path | None = None,
                    download: bool = True) -> "Catalog":
        """Load every checkpoint in `folder`; skip (and note) those that fail.

        Test sets come from `data_dir`, else $LATENT_EXPLORER_DATA, else (if `download`)
        a download of the test split; a data set that cannot be had is noted, not fatal.
        """
        folder = Path(folder)
        latent_models: dict[str, Checkpoint] = {}
        classifiers: dict[str, Checkpoint] = {}
        autoregressive: dict[str, Checkpoint] = {}
        discrete: dict[str, Checkpoint] = {}
        notices: list[str] = []
        files = checkpoints.checkpoint_files(folder)
        notices += [f"Ignored {p.name}: not a .safetensors checkpoint (the app never loads pickled or other "
                    "files)." for p in other_files(folder)]
        if not files:
            notices.append(f"No checkpoints found in the folder {folder.name}/: train one with `python -m train ...`.")
        for path in files:
            try:
                ckpt = checkpoints.load(path)
                damaged_replay(ckpt)
            except CheckpointError as err:
                # The file's name, not its path: the page never shows where the server keeps files.
                notices.append(f"Skipped {path.name}: {str(err).replace(f'{path}: ', '').replace(str(folder), '')}")
                continue
            if isinstance(ckpt.model, LatentModel):
                latent_models[ckpt.name] = ckpt
            elif ckpt.model.kind == "classifier":
                # The replay scores with trained/<dataset>-classifier; any other one only stands in.
                if ckpt.name == f"{ckpt.dataset}-classifier" or ckpt.dataset not in classifiers:
                    classifiers[ckpt.dataset] = ckpt
            elif ckpt.model.kind == "autoregressive":
                autoregressive[ckpt.name] = ckpt
            elif ckpt.model.kind == "discrete_latent":
                discrete[ckpt.name] = ckpt
        test_sets: dict[str, Split] = {}
        data_notes: dict[str, str] = {}
        folder_for_data = resolve_data_dir(data_dir)
        for dataset in sorted({c.dataset for c in (*latent_models.values(), *autoregressive.values(), *discrete.values())}):
            if folder_for_data is None and not download:
                data_notes[dataset] = "no data folder given and downloads are off"
                continue
            try:
                test_sets[dataset] = load_split(dataset, "test", folder_for_data)
            except (DataError, ValueError, OSError) as err:
                # The page gets a short sentence; the details (paths, network errors), the log.
                log.warning("no %s test images: %s", dataset, err)
                data_notes[dataset] = err.brief if isinstance(err, DataError) else "the test images could not be read"
        return cls(latent_models, notices, test_sets, data_notes, classifiers, autoregressive, discrete)

    # ---------------------------------------------------------------- finding models

    def checkpoint(self, name: str | None, kind: str | None = None) -> Checkpoint:
        """The checkpoint of a served model by name; with `kind` ("latent", "autoregressive"
        or "discrete"), only a model of that kind. An unknown name is a ValueError that
        lists what there is."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        shelves = [self.latent, self.autoregressive, self.discrete] if kind is None else [getattr(self, kind)]
        if not isinstance(name, str):  # an API caller may send anything: a list, a number
            name = None
        for shelf in shelves:
            if name and name in shelf:
                return shelf[name]
        known = ", ".join(n for shelf in shelves for n in shelf) or "none"
        what = {"autoregressive": "autoregressive model", "discrete": "VQ-VAE"}.get(kind or "", "model")
        raise ValueError(f"Unknown {what} {name!r}. Available: {known}.")

    @property
    def latent_names(self) -> list[str]:
        """The latent models (AE, VAEs, GANs): what the main model pickers offer."""
        return list(self.latent)

    @property
    def autoregressive_names(self) -> list[str]:
        """The autoregressive models (PixelCNN, PixelRNN), for the pixel and likelihood tabs."""
        return list(self.autoregressive)

    @property
    def discrete_names(self) -> list[str]:
        """The discrete-code models (VQ-VAEs), for the codes tab."""
        return list(self.discrete)

    def two_d_names(self) -> list[str]:
        """Latent models with a 2-D code space (their whole manifold fits one picture)."""
        return [n for n, c in self.latent.items() if c.model.latent_dim == 2]

    def replay_names(self) -> list[str]:
        """Models whose checkpoint holds a training replay (GANs: fixed-seed samples per epoch)."""
        return [n for n, c in self.latent.items() if c.history.get("replay")]

    def classifier(self, name: str) -> Checkpoint | None:
        """The classifier of the model's data set, if one was loaded."""
        return self.classifiers.get(self.checkpoint(name).dataset)

    # ---------------------------------------------------------------- describing models

    def choices(self, names: list[str] | None = None) -> list[tuple[str, str]]:
        """(display name, checkpoint name) pairs for a dropdown; by default every latent model.
        The page shows the plain name; the value (what events and API callers send) stays the
        checkpoint's name."""
        return [(self.display_name(n), n) for n in (self.latent_names if names is None else names)]

    def display_name(self, name: str) -> str:
        """A short plain name that tells the served models apart, e.g. "VAE, 16-D (MNIST)".

        Kind, code size (latent models), "conditional" and the data set; where two served
        models would still read alike, the words their file name adds (e.g. "collapse")."""
        own = self._plain_name(name)
        twins = [n for n in (*self.latent, *self.autoregressive) if n != name and self._plain_name(n) == own]
        if not twins:
            return own
        ckpt = self.checkpoint(name)
        extra = name.removeprefix(f"{ckpt.dataset}-").removeprefix(ckpt.model.name).strip("-_")
        return own.replace(" (", f", {extra.replace('-', ' ').replace('_', ' ') or name} (", 1)

    def _plain_name(self, name: str) -> str:
        ckpt = self.checkpoint(name)
        model = ckpt.model
        parts = [KIND_NAMES.get(model.name, model.name)]
        dims = getattr(model, "latent_dim", None)
        if isinstance(model, LatentModel) and isinstance(dims, int) and not latent.inverts(model):
            parts.append(f"{dims}-D")
        if getattr(model, "num_classes", 0):
            parts.append("conditional")
        return f"{', '.join(parts)} ({DATASET_NAMES.get(ckpt.dataset, ckpt.dataset)})"

    def metric_note(self, name: str) -> str:
        """The model's key metric as a sentence saying what it measures ("" if it has none)."""
        ckpt = self.checkpoint(name)
        scores = ckpt.metrics
        key = "frechet_distance" if latent.inverts(ckpt.model) and "frechet_distance" in scores else scores.get("headline")
        value = scores.get(key) if isinstance(key, str) else None
        if not isinstance(value, (int, float)):
            return ""
        return f"{self._metric_sentence(name, key, value)} (`{key} = {value:.2f}`)"

    def _metric_sentence(self, name: str, key: str, value: float) -> str:
        scores = self.checkpoint(name).metrics
        if key.startswith("test_iw_nll_k") and key.removeprefix("test_iw_nll_k").isdigit():
            k = key.removeprefix("test_iw_nll_k")
            return (f"test -log p(x) at most {value:.2f} nats per image: an importance-weighted bound with "
                    f"k = {k} samples (lower is better; a larger k gives a tighter bound)")
        if key == "frechet_distance":
            covered = scores.get("classes_covered")
            cover = f"; its samples cover {covered}/{len(self.classes(name))} classes" if covered is not None else ""
            return (f"Frechet distance {value:.2f} between its samples and test images, on the features of "
                    f"this project's classifier (lower is better; not comparable with published FIDs){cover}")
        if key == "test_nll_bound" and not self.checkpoint(name).binary_images:
            # Reconstruction plus prior bounds -log p(x) only where the Bernoulli decoder is a
            # likelihood, on binary images; on grey levels the sum is a training score.
            return (f"test reconstruction cost plus the code prior's bits = {value:.2f} nats per image on grey "
                    "images (lower is better; a training score, not a likelihood: the Bernoulli decoder term is "
                    "not one on grey levels)")
        template = METRIC_MEANINGS.get(key)
        return template.format(value=value) if template else f"{key} = {value:.4g}"

    def summary_line(self, name: str) -> str:
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

    def classes(self, name: str) -> list[str]:
        """Class names of the model's data set (what a conditional model's label means)."""
        return class_names(self.checkpoint(name).dataset)

    def widest_code(self) -> int:
        """The largest code size among the latent models (at least 2, the least a grid needs)."""
        return max([2] + [c.model.latent_dim for c in self.latent.values()])

    # ---------------------------------------------------------------- test images

    def test_set(self, name: str) -> Split | None:
        """The test set of the model's data set, if it could be loaded."""
        return self.test_sets.get(self.checkpoint(name).dataset)

    def data_note(self, name: str) -> str:
        """Why the model's data set has no test images here; empty when it has them."""
        dataset = self.checkpoint(name).dataset
        return self.data_notes.get(dataset, "") if dataset not in self.test_sets else ""

    def dataset_models(self, dataset: str) -> list[str]:
        """The served models of a data set, latent ones first (a latent model decodes fastest)."""
        return [n for n, c in (*self.latent.items(), *self.autoregressive.items(), *self.discrete.items())
                if c.dataset == dataset]

    def test_image(self, dataset: str, index: int) -> tuple[torch.Tensor, int, str]:
        """Test image number `index` of a data set: (image (1, 28, 28) in [0, 1], class, caption).
        A ValueError where the data set's test images are not here."""
        split = self.test_sets.get(dataset)
        if split is None:
            raise ValueError(f"No {dataset} test images here; upload or draw an image instead.")
        index = int(index) % len(split)
        label = int(split.labels[index])
        image = split.images[index].float().div(255.0).unsqueeze(0)
        return image, label, f"{dataset} test image #{index}: {split.classes[label]}"
