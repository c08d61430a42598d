"""Save, load and list trained models: one safetensors file per model.

A checkpoint's tensors are the model's state dict; its safetensors metadata (string to
string) holds JSON: the model name and config (enough to rebuild it from the registry),
the data set and data shape, metrics with how they were measured, per-epoch history, and
how it was trained (command, epochs, seconds, device).

Nothing here unpickles: safetensors stores raw tensors and a JSON header, so loading a
file a user hands in cannot run code. Writes go to a temporary file in the same folder,
are flushed to disk, then renamed over the target, so a crash mid-write never leaves a
broken checkpoint in place.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as _serialize

from .models import REGISTRY, GenerativeModel, build

FORMAT = "latent-explorer/1"
# Metadata keys stored as JSON strings; "format" is a plain string.
JSON_KEYS = ("config", "data_shape", "metrics", "history", "training", "extra")
# Training-state files (optimizer, RNG, epoch) sit beside a checkpoint; never shipped.
RESUME_SUFFIX = ".resume.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or not ours; the message names the file."""


@dataclass
class Checkpoint:
    """A rebuilt model and everything its file says about it."""

    path: Path
    model: GenerativeModel
    dataset: str
    metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".safetensors")

    @property
    def binary_images(self) -> bool:
        """Whether it trained on binarized images, as its record says (a file without the record
        counts as grey): only then is a Bernoulli decoder's term a likelihood."""
        return self.training.get("binarized") is True

    def summary(self) -> str:
        """One line: what it is, on what data, and its headline metric."""
        return describe(self.path.name, self.model.name, self.dataset, self.metrics)


def describe(filename: str, model_name: str, dataset: str, metrics: dict[str, Any]) -> str:
    desc = REGISTRY[model_name].description if model_name in REGISTRY else model_name
    line = f"{filename}: {desc} ({model_name}) on {dataset}"
    headline = metrics.get("headline")
    if headline and headline in metrics:
        value = metrics[headline]
        line += f", {headline} = {value:.2f}" if isinstance(value, (int, float)) else f", {headline} = {value}"
    return line


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write bytes so that `path` is either the old file or the whole new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Atomically write tensors plus metadata (values JSON-encoded unless already strings)."""
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    write_atomic(path, _serialize(tensors, metadata=meta))


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file, turning every failure into a CheckpointError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint (truncated or damaged?): {err}"
        ) from None
    return tensors, meta


def save(path: str | Path, model: GenerativeModel, *, dataset: str,
         metrics: dict[str, Any] | None = None, history: dict[str, Any] | None = None,
         training: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
    """Store a model with its metadata, atomically."""
    metadata = {
        "format": FORMAT,
        "model": model.name,
        "dataset": dataset,
        "config": model.config,
        "data_shape": list(model.data_shape),
        "metrics": metrics or {},
        "history": history or {},
        "training": training or {},
        "extra": extra or {},
    }
    save_tensors(path, model.state_dict(), metadata)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded metadata of a checkpoint, without building the model."""
    _, meta = read_tensors(path)
    return _decode_metadata(Path(path), meta)


def _decode_metadata(path: Path, meta: dict[str, str]) -> dict[str, Any]:
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a safetensors file, but not a Latent Explorer checkpoint "
            f"(metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r})"
        )
    out: dict[str, Any] = {"format": FORMAT, "model": meta.get("model"), "dataset": meta.get("dataset")}
    for key in ("model", "dataset"):
        if not isinstance(out[key], str) or not out[key]:
            raise CheckpointError(f"{path}: metadata field {key!r} is missing or empty")
    for key in JSON_KEYS:
        try:
            out[key] = json.loads(meta.get(key, "{}"))
        except (json.JSONDecodeError, RecursionError) as err:
            raise CheckpointError(f"{path}: metadata field {key!r} is not valid JSON ({err})") from None
        expected = list if key == "data_shape" else dict
        if key == "data_shape" and out[key] == {}:
            continue  # older files may lack it; the model's config says the shape
        if not isinstance(out[key], expected):
            raise CheckpointError(f"{path}: metadata field {key!r} should hold a JSON "
                                  f"{'list' if expected is list else 'object'}, not {type(out[key]).__name__}")
    return out


def load(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild a model from its checkpoint and load its weights strictly (eval mode)."""
    path = Path(path)
    tensors, raw_meta = read_tensors(path)
    meta = _decode_metadata(path, raw_meta)
    name = meta["model"]
    if name not in REGISTRY:
        raise CheckpointError(f"{path}: model {name!r} is not known to this version of Latent Explorer")
    try:
        model = build(name, meta["config"])
        model.load_state_dict(tensors, strict=True)
    except (ValueError, RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: weights do not fit model {name!r} with its stored config: {err}") from None
    broken = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise CheckpointError(f"{path}: the weights hold NaN or infinite values ({', '.join(broken[:3])}"
                              f"{', ...' if len(broken) > 3 else ''}); the training run diverged or the file is damaged")
    model.to(device).eval()
    return Checkpoint(path=path, model=model, dataset=meta["dataset"], metrics=meta["metrics"],
                      history=meta["history"], training=meta["training"], extra=meta["extra"])


def update_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Merge new metrics (and their "how" notes) into a checkpoint's metadata, atomically."""
    tensors, raw_meta = read_tensors(path)
    meta = _decode_metadata(Path(path), raw_meta)
    how = {**meta["metrics"].get("how", {}), **metrics.get("how", {})}
    meta["metrics"] = {**meta["metrics"], **metrics, "how": how}
    save_tensors(path, tensors, meta)


def shipped_folder() -> Path:
    """The folder of checkpoints the app serves by default: $LATENT_EXPLORER_TRAINED where it
    is set, else the shipped checkpoints, found through the `trained` package (the
    repository's trained/ folder, or its copy installed by `pip install .`), so from any
    working directory."""
    chosen = os.environ.get("LATENT_EXPLORER_TRAINED")
    if chosen:
        return Path(chosen).expanduser()
    import trained  # the package beside this one; only data (see trained/__init__.py)

    return trained.FOLDER


def shipped(name: str) -> Path:
    """The file of a shipped checkpoint by its name, e.g. shipped("mnist-vae")."""
    return shipped_folder() / f"{name}.safetensors"


def checkpoint_files(folder: str | Path) -> list[Path]:
    """Checkpoints in a folder (training-state files excluded), sorted by name. A folder that
    does not exist is an error: a misspelt path must not look like an empty shelf."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder" if not folder.exists()
                              else f"{folder}: not a folder")
    return sorted(p for p in folder.glob("*.safetensors") if not p.name.endswith(RESUME_SUFFIX))


def list_trained(folder: str | Path | None = None) -> list[str]:
    """One line per checkpoint in `folder` (default: `shipped_folder()`): what it is, or why
    it cannot be read."""
    folder = shipped_folder() if folder is None else folder
    lines = []
    for path in checkpoint_files(folder):
        try:
            meta = read_metadata(path)
            lines.append(describe(path.name, meta["model"], meta["dataset"], meta["metrics"]))
        except CheckpointError as err:
            lines.append(f"{path.name}: unreadable ({err})")
    return lines
