"""The shared training loop. Read it top to bottom: setup, resume, epochs, save.

After every epoch two files are written, each atomically:
  - `<out>`: the model and its metadata, ready to ship and to load in the app;
  - `<state dir>/<out stem>.resume.safetensors` (default state dir `runs/`): the same weights
    plus optimizer state, RNG states and the epoch counter, so `--resume` continues a run
    killed at any moment (even `kill -9`) having lost at most the epoch in progress. It is
    three times the model's size, so it stays out of `trained/` (and out of git).
The checkpoint is written before the resume state, so the state is never ahead of it.
A NaN or infinite loss stops the run at once with a clear message; the files from the
last good epoch stay as they were.

Precision (`train.precision`): the step runs under bf16 autocast when asked (`--precision
bf16`, or `auto` on hardware with native bf16), with weights, gradients, optimizer state and
losses in float32; the per-epoch evaluation always runs in float32.

With `--ema DECAY` the checkpoint holds an average of the weights (`train.averaging`), which is
what each epoch evaluates; the live weights train on and are kept in the resume state.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from explorer import checkpoints, data
from explorer.models import REGISTRY, GenerativeModel, build

from . import precision as precision_
from .averaging import WeightAverage
from .families import RECIPES, Optimizers, Recipe


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class RunConfig:
    model: str
    dataset: str
    epochs: int
    out: Path
    model_config: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None    # None: the family's default
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"          # fp32, bf16 (autocast) or auto (bf16 where the hardware has it)
    channels_last: bool | None = None  # None: the family's measured choice (Recipe.channels_last)
    resume: bool = False
    binarize: bool | None = None     # None: binarize MNIST, keep Fashion-MNIST grey
    data_dir: str | None = None
    limit: int | None = None         # use only the first N training images (quick runs)
    state_dir: Path = Path("runs")   # where the resume state goes
    init: Path | None = None         # start from this checkpoint's weights (same model; fresh optimizer)
    ema: float | None = None         # ship an average of the weights with this decay per step (train.averaging)
    command: str = ""
    progress: bool = True


def resume_path(out: Path, state_dir: Path) -> Path:
    return Path(state_dir) / (Path(out).name.removesuffix(".safetensors") + checkpoints.RESUME_SUFFIX)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but no CUDA GPU is available")
    return torch.device(name)


# --- optimizer state <-> flat tensors (safetensors holds tensors and strings only) -----------

def _flatten_optimizers(opts: Optimizers) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = {}, {}
    for name, opt in opts.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, st in sd["state"].items():
            for key, val in st.items():
                if torch.is_tensor(val):
                    tensors[f"optim.{name}.{idx}.{key}"] = val
                else:
                    scalars.setdefault(str(idx), {})[key] = val
        meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, meta


def _unflatten_optimizers(opts: Optimizers, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    for name, opt in opts.items():
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optim.{name}."
        for key, val in tensors.items():
            if key.startswith(prefix):
                idx, field_name = key[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[field_name] = val
        for idx, scal in meta[name]["scalars"].items():
            state.setdefault(int(idx), {}).update(scal)
        opt.load_state_dict({"state": state, "param_groups": meta[name]["param_groups"]})


def _resume_learning_rate(opts: Optimizers, lr: float | None, hp: dict[str, Any]) -> None:
    """After the optimizers' stored state is loaded: a --lr given on resume takes over from the
    stored rate (a step decay is a second invocation); without one the stored rate goes on, and
    `hp` records it."""
    stored = next(iter(opts.values())).param_groups[0]["lr"]
    if lr is None:
        hp["lr"] = stored
        return
    if lr != stored:
        print(f"--lr {lr}: the learning rate was {stored} until now")
    for opt in opts.values():
        for group in opt.param_groups:
            group["lr"] = lr


def _warm_start(model: GenerativeModel, path: Path) -> dict[str, Any]:
    """Load a checkpoint's weights into `model`: every tensor whose name and shape match (same
    model name; the config may differ in what it trains or adds, e.g. a VQ-VAE's prior refit
    on frozen codes, perhaps class-conditional). The rest keep their fresh initial values and
    are named, here and in the metadata. A resumed run then overwrites all with its own.
    Returns what the model card says about the start."""
    start = checkpoints.load(path)
    if start.model.name != model.name:
        raise SystemExit(f"--init {path}: holds a {start.model.name}, not a {model.name}")
    theirs, ours = start.model.state_dict(), model.state_dict()
    fitting = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    if not fitting:
        raise SystemExit(f"--init {path}: none of its weights fit this config")
    model.load_state_dict(fitting, strict=False)
    fresh = sorted(set(ours) - set(fitting))
    if fresh:
        print(f"--init {path}: {len(fitting)} tensors loaded; fresh: {', '.join(fresh)}")
    keys = ("command", "epochs", "seconds", "precision", "threads", "device")
    return {"checkpoint": Path(path).name, "config": start.model.config, "fresh": fresh,
            **{k: start.training.get(k) for k in keys}}


# --- the run ---------------------------------------------------------------------------------

def resumed_config(cfg: RunConfig, state_file: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The model config a resumed run goes on with: the run's own, with what this command's
    --set changes. Only keys the family marks `retunable` (training settings such as a plain
    GAN's g_steps) may change; anything else must match or the resume is refused."""
    if run["model"] != cfg.model:
        raise SystemExit(f"{state_file}: holds a {run['model']} run, not a {cfg.model} one; "
                         f"remove it or pass the same model")
    config = {**run["model_config"], **cfg.model_config}
    retunable = REGISTRY[cfg.model].retunable
    changed = sorted(k for k in config if config[k] != run["model_config"].get(k))
    fixed = [k for k in changed if k not in retunable]
    if fixed:
        raise SystemExit(f"{state_file}: holds a {run['model']} run with config {run['model_config']}; "
                         f"{', '.join(fixed)} cannot change on resume (only {', '.join(retunable) or 'nothing'} can); "
                         f"remove the state or pass the same settings")
    if changed:
        was = run["model_config"]
        print("resuming with " + ", ".join(f"{k}={config[k]} (was {was.get(k)})" for k in changed))
    return config


@dataclass
class Run:
    """What a run carries from one epoch to the next (and, through the resume state, from one
    invocation to the next)."""

    recipe: Recipe
    model: GenerativeModel
    opts: Optimizers
    hp: dict[str, Any]                  # the recipe's settings as used: lr, batch size, ...
    device: torch.device
    precision: str
    channels_last: bool
    binarize: bool
    out: Path
    state_file: Path
    shuffle_gen: torch.Generator
    noise_gen: torch.Generator
    history: dict[str, list] = field(default_factory=dict)
    start_epoch: int = 0
    seconds: float = 0.0                # training time so far, over every invocation
    average: WeightAverage | None = None
    averaged_from: int | None = None
    # Each invocation's command and the epoch it started at: a run resumed with other
    # arguments (more epochs, averaging switched on) is reproduced by running them in turn.
    commands: list[dict[str, Any]] = field(default_factory=list)
    started_from: dict[str, Any] | None = None


@dataclass
class Data:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def fit(cfg: RunConfig) -> GenerativeModel:
    """Train (or resume) one model and return it as saved; writes both files after every epoch.
    The steps: settings and model (`start`), data (`load_data`), then per epoch the training
    pass (`train_epoch`), the evaluation and the two writes (`finish_epoch`)."""
    run = start(cfg)
    split = load_data(cfg, run)
    for epoch in range(run.start_epoch, cfg.epochs):
        began = time.time()
        sums = train_epoch(cfg, run, split, epoch)
        finish_epoch(cfg, run, split, epoch, sums, began)
    if run.start_epoch >= cfg.epochs:
        print(f"nothing to do: {run.state_file} already holds {run.start_epoch} epochs (asked for {cfg.epochs})")
    elif run.average:  # hand back what was saved: the averaged weights
        run.model.load_state_dict(checkpoints.load(run.out).model.state_dict())
    return run.model


def start(cfg: RunConfig) -> Run:
    """The run's settings, its model and optimizers, from scratch, a warm start or its resume state."""
    recipe = RECIPES[cfg.model]
    hp = {**(recipe.defaults or {})}
    if cfg.lr is not None:
        hp["lr"] = cfg.lr
    if cfg.batch_size is not None:
        hp["batch_size"] = cfg.batch_size
    binarize = cfg.binarize
    if binarize is None:  # the family's choice, else: binarize MNIST, keep Fashion-MNIST grey
        binarize = hp.pop("binarize", cfg.dataset == "mnist")
    hp.pop("binarize", None)
    device = pick_device(cfg.device)
    precision = precision_.resolve(cfg.precision, device)
    channels_last = recipe.channels_last if cfg.channels_last is None else cfg.channels_last
    if precision == "bf16" and not precision_.native_bf16(device):
        print(f"note: {device.type} has no native bf16 (no AMX / AVX-512 BF16 / bf16 GPU): bf16 is emulated "
              f"and slower than fp32 here; --precision auto picks the faster one")
    out, state_file = Path(cfg.out), resume_path(Path(cfg.out), cfg.state_dir)

    torch.manual_seed(cfg.seed)
    saved = checkpoints.read_tensors(state_file) if cfg.resume and state_file.exists() else None
    model_config = resumed_config(cfg, state_file, json.loads(saved[1]["run"])) if saved else cfg.model_config
    model = build(cfg.model, model_config).to(device, memory_format=precision_.memory_format(channels_last))
    # A resumed run's weights come from its state, and its --init file may have changed since
    # (replaced by this very run's output, say): describe the start as it was first read.
    started_from = _warm_start(model, cfg.init) if cfg.init and not saved else None
    run = Run(recipe, model, recipe.make_optimizers(model, hp), hp, device, precision, channels_last, binarize, out,
              state_file, torch.Generator().manual_seed(cfg.seed + 1), torch.Generator().manual_seed(cfg.seed + 2),
              started_from=started_from)
    if saved:
        _resume(cfg, run, *saved)
    elif cfg.resume:
        print(f"--resume: no training state at {state_file}; starting from scratch")
    if cfg.ema and run.average is None:
        run.average, run.averaged_from = WeightAverage(model, cfg.ema), run.start_epoch + 1
        if run.start_epoch:
            print(f"--ema {cfg.ema}: averaging starts from the weights after epoch {run.start_epoch}")
    if not run.commands or run.commands[-1]["command"] != cfg.command:
        run.commands.append({"from_epoch": run.start_epoch + 1, "command": cfg.command})
    return run


def _resume(cfg: RunConfig, run: Run, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Weights, optimizers, random generators and history from the resume state."""
    state = json.loads(meta["run"])
    run.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    _unflatten_optimizers(run.opts, tensors, state["optimizers"])
    _resume_learning_rate(run.opts, cfg.lr, run.hp)
    torch.set_rng_state(tensors["rng.torch"])
    run.shuffle_gen.set_state(tensors["rng.shuffle"])
    run.noise_gen.set_state(tensors["rng.noise"])
    run.history, run.start_epoch, run.seconds = state["history"], state["epoch"], state["seconds"]
    run.commands = state.get("commands") or [{"from_epoch": 1, "command": state["cfg"]["command"]}]
    if "started_from" in state:
        run.started_from = state["started_from"]
    elif run.out.exists():  # a state written before the run kept it: its last checkpoint has it
        run.started_from = checkpoints.read_metadata(run.out)["training"].get("started_from")
    stored = {k[8:]: v for k, v in tensors.items() if k.startswith("average.")}
    if cfg.ema and stored:
        run.average, run.averaged_from = WeightAverage(run.model, cfg.ema, stored), state["averaged_from_epoch"]
    elif stored:
        print("note: this run kept a weight average; without --ema the plain weights are saved from now on")
    print(f"resuming {cfg.model} from {run.state_file} after epoch {run.start_epoch}/{cfg.epochs}")


def load_data(cfg: RunConfig, run: Run) -> Data:
    """Training images as floats in [0, 1] (binarized per batch later, if the run binarizes);
    the test images fixed-binarized once, or as floats."""
    train = data.load_split(cfg.dataset, "train", cfg.data_dir)
    test = data.load_split(cfg.dataset, "test", cfg.data_dir)
    train_x, train_y = data.to_float(train.images), train.labels
    if cfg.limit:
        train_x, train_y = train_x[:cfg.limit], train_y[:cfg.limit]
    test_x = data.fixed_binarized_test(test.images) if run.binarize else data.to_float(test.images)
    return Data(train_x, train_y, test_x, test.labels)


def train_epoch(cfg: RunConfig, run: Run, split: Data, epoch: int) -> dict[str, float]:
    """One pass over the training images in a fresh order; the summed losses (each times its
    batch size). A NaN or infinite loss stops the run (TrainingDiverged), leaving the last
    checkpoint in place."""
    recipe, n, bs = run.recipe, len(split.train_x), run.hp["batch_size"]
    run.model.train()
    perm = torch.randperm(n, generator=run.shuffle_gen)
    sums: dict[str, float] = {}
    bar = tqdm(range(math.ceil(n / bs)), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
               disable=not cfg.progress, dynamic_ncols=True)
    for i in bar:
        idx = perm[i * bs:(i + 1) * bs]
        x = split.train_x[idx]                                       # (B, C, H, W)
        if run.binarize:
            x = data.binarize(x, run.noise_gen)
        with precision_.autocast(run.precision, run.device):  # evaluation runs outside it, in float32
            losses = recipe.step(run.model, run.opts, precision_.to_layout(x.to(run.device), run.channels_last),
                                 split.train_y[idx].to(run.device))
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            kept = (f"the checkpoint from epoch {run.start_epoch if epoch == run.start_epoch else epoch} "
                    f"at {run.out} is kept" if run.out.exists() else "no checkpoint was written yet")
            raise TrainingDiverged(
                f"training stopped: loss {bad} at epoch {epoch + 1}, step {i + 1}; {kept}. "
                f"Try a lower --lr (now {run.hp['lr']}) or check the data.")
        if run.average:
            run.average.update(run.model)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v * len(idx)
        bar.set_postfix(loss=f"{losses['loss']:.3f}")
    bar.close()
    return sums


def finish_epoch(cfg: RunConfig, run: Run, split: Data, epoch: int, sums: dict[str, float], began: float) -> None:
    """Evaluate the weights that ship (the average, with --ema), then write the checkpoint and
    the resume state. The epoch's time (since `began`) counts its evaluation."""
    recipe, n, model = run.recipe, len(split.train_x), run.model
    model.eval()
    with run.average.applied(model) if run.average else contextlib.nullcontext():
        if recipe.after_epoch:
            recipe.after_epoch(model, split.train_x, split.train_y)
        report = recipe.evaluate(model, split.test_x, split.test_y, run.binarize)
        run.seconds += time.time() - began
        row = {"epoch": epoch + 1, **{f"train_{k}": v / n for k, v in sums.items()},
               **{k: v for k, v in report.items() if isinstance(v, (int, float))}, "seconds": round(run.seconds, 1)}
        for k, v in {**row, **report.pop("history", {})}.items():  # "history": per-epoch extras (sample grids)
            run.history.setdefault(k, []).append(v)
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        # Checkpoint first, resume state second: a kill between the two leaves the state one
        # epoch behind, and --resume redoes that epoch exactly (same RNG states) and writes both.
        # (The other order would leave a finished run's checkpoint behind, with nothing to redo.)
        checkpoints.save(run.out, model, dataset=cfg.dataset, metrics=report, history=run.history,
                         training=training_record(cfg, run, epoch, n))
    _save_state(cfg, run, epoch)


def training_record(cfg: RunConfig, run: Run, epoch: int, n: int) -> dict[str, Any]:
    """How the checkpoint was trained, as its metadata says (and the model card shows)."""
    device = run.device
    training = {"command": cfg.command, "epochs": epoch + 1, "epochs_requested": cfg.epochs,
                "seconds": round(run.seconds, 1),
                "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
                "threads": torch.get_num_threads(), "precision": run.precision, "channels_last": run.channels_last,
                "seed": cfg.seed, "binarized": run.binarize, "train_images": n, "torch": torch.__version__, **run.hp}
    if run.started_from:
        training["started_from"] = run.started_from
    if run.average:
        training["ema"] = {"decay": cfg.ema, "from_epoch": run.averaged_from}
    if len(run.commands) > 1:
        training["commands"] = run.commands
    return training


def _save_state(cfg: RunConfig, run: Run, epoch: int) -> None:
    """The resume state after `epoch`: live weights, optimizers, the average, random generators."""
    opt_tensors, opt_meta = _flatten_optimizers(run.opts)
    state = {"model": cfg.model, "model_config": run.model.config, "epoch": epoch + 1, "history": run.history,
             "seconds": run.seconds, "optimizers": opt_meta, "commands": run.commands,
             "averaged_from_epoch": run.averaged_from, "started_from": run.started_from,
             "cfg": {**asdict(cfg), "out": str(cfg.out), "state_dir": str(cfg.state_dir),
                     "init": str(cfg.init) if cfg.init else None}}
    checkpoints.save_tensors(run.state_file, {
        **{f"model.{k}": v for k, v in run.model.state_dict().items()}, **opt_tensors,
        **({f"average.{k}": v for k, v in run.average.state.items()} if run.average else {}),
        "rng.torch": torch.get_rng_state(), "rng.shuffle": run.shuffle_gen.get_state(),
        "rng.noise": run.noise_gen.get_state()}, {"run": state})
