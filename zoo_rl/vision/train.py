"""Train, evaluate and export a vision model with a transfer method: one loop, read top to
bottom, for both of the paper's vision tasks, chosen by the ``--data`` spec: image
classification (cross-entropy, top-1 accuracy) and facial landmarks (heatmap regression, NME).
Defaults are the paper's classification recipe (``zoo_rl.vision.defaults``).

The run directory mirrors the RL one: ``config.yaml``, ``tb/``, ``checkpoint.pt`` while
training (re-running the same command resumes from it), then ``model.pt`` (the trained
weights) and ``eval.json`` (top-1 accuracy, or NME and failure rate).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from zoo_rl.core import readouts
from zoo_rl.devices import channels_last_on_cpu, check_device, fused
from zoo_rl.errors import ConfigError, TrainingDiverged
from zoo_rl.io_utils import atomic_write, atomic_write_text, read_weights, read_yaml
from zoo_rl.records import check_types, from_mapping
from zoo_rl.rng import rng_state, set_rng_state
from zoo_rl.run_dir import RunDirectory

from .data import load_datasets
from .defaults import VISION_DEFAULTS
from .landmark_data import KINDS as LANDMARK_KINDS
from .landmark_data import landmark_datasets
from .landmarks import decode_heatmaps, heatmap_targets, nme
from .models import ARCHS, METHODS, TransferNet, build_model

CHECKPOINT = "checkpoint.pt"  # while training
MODEL = "model.pt"  # the trained weights: a finished run
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
FAILURE_NME = 0.1  # a face whose NME exceeds it counts as a failure (the WFLW/COFW convention)


@dataclass
class VisionConfig:
    """Everything that defines one vision run."""

    data: str
    zoo: list[str] = field(default_factory=list)
    arch: str = VISION_DEFAULTS["arch"]
    method: str = VISION_DEFAULTS["method"]
    iters: int = VISION_DEFAULTS["iters"]
    batch_size: int = VISION_DEFAULTS["batch_size"]
    lr: float = VISION_DEFAULTS["lr"]
    momentum: float = VISION_DEFAULTS["momentum"]
    optimizer: str = VISION_DEFAULTS["optimizer"]  # sgd (Nesterov, `momentum`) or adam
    weight_decay: float = VISION_DEFAULTS["weight_decay"]
    lr_steps: list[int] = field(default_factory=lambda: list(VISION_DEFAULTS["lr_steps"]))
    crop: int = VISION_DEFAULTS["crop"]
    resize: int = VISION_DEFAULTS["resize"]
    ten_crop: bool = False
    seed: int = VISION_DEFAULTS["seed"]
    workers: int = VISION_DEFAULTS["workers"]
    checkpoint_freq: int = VISION_DEFAULTS["checkpoint_freq"]
    device: str = VISION_DEFAULTS["device"]
    options: dict[str, Any] = field(default_factory=dict)  # the method's options (METHODS), checked below

    def __post_init__(self):
        check_types(self)
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.method not in METHODS:
            raise ConfigError(f"unknown vision method {self.method!r}; expected one of {', '.join(METHODS)}")
        for name in ("iters", "batch_size", "crop", "resize"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop > self.resize and not self.landmarks:
            raise ConfigError(f"crop ({self.crop}) must not exceed resize ({self.resize})")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
        if self.landmarks and self.ten_crop:
            raise ConfigError("ten-crop evaluation is for classification; landmark models see one face crop")
        if self.landmarks and self.crop % 32:
            raise ConfigError(f"a landmark crop must be a multiple of 32 (the trunk's stride), got {self.crop}")
        allowed = METHODS[self.method].options
        for key, value in self.options.items():
            if key not in allowed:
                takes = f"takes {', '.join(allowed)}" if allowed else "takes none"
                raise ConfigError(f"vision method {self.method!r} has no option {key!r} ({takes})")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"option {key} of {self.method!r} must be a number, got {value!r}")

    @property
    def landmarks(self) -> bool:
        """Whether ``data`` is a landmark data set (else classification)."""
        return self.data.partition(":")[0] in LANDMARK_KINDS

    def run_name(self) -> str:
        kind, _, root = self.data.partition(":")
        dataset = f"synthetic{root}" if kind == "synthetic" else Path(root).name or "data"
        return f"{dataset}_{self.arch}_{self.method}_s{self.seed}"

    def identity(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("checkpoint_freq", "device", "workers", "ten_crop")}

    def save(self, path: Path) -> None:
        atomic_write_text(path, yaml.safe_dump(asdict(self), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> VisionConfig:
        return from_mapping(cls, read_yaml(Path(path)), str(path))


def datasets(config: VisionConfig) -> tuple[Dataset, Dataset, int]:
    """``(train, test, outputs)``: the number of classes, or of landmarks."""
    kind, _, root = config.data.partition(":")
    if config.landmarks:
        return landmark_datasets(kind, root, config.crop)
    return load_datasets(config.data, config.crop, config.resize, config.ten_crop)


def build(config: VisionConfig, outputs: int) -> TransferNet:
    model = build_model(config.arch, config.method, config.zoo, outputs, config.landmarks, **config.options)
    model = model.to(config.device)
    channels_last_on_cpu([model])
    return model


def task_loss(config: VisionConfig, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of class scores, or mean squared error of heatmaps to Gaussians at the landmarks."""
    if config.landmarks:
        return nn.functional.mse_loss(output, heatmap_targets(target, output.shape[-1]))
    return nn.functional.cross_entropy(output, target)


def train_vision(config: VisionConfig, out: Path) -> Path:
    """Train (or resume, or skip if finished) one run under ``out``; return its directory."""
    check_device(config.device)
    run = RunDirectory(Path(out) / config.run_name(), config, VisionConfig.load, MODEL, CHECKPOINT)
    run_dir = run.path
    if run.finished_before():
        return run_dir
    torch.manual_seed(config.seed)
    train_set, test_set, outputs = datasets(config)
    model = build(config, outputs)
    if config.optimizer == "adam":
        optimizer = fused(torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay))
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                    weight_decay=config.weight_decay)  # fmt: skip
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.lr_steps, gamma=0.1)
    with run.open() as now:  # makes the directory: only after the last check of the options
        if now == "finished":
            return run_dir
        start = 0
        if now == "checkpoint":
            state = read_weights(run_dir / CHECKPOINT, "checkpoint", config.device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            set_rng_state(state["rng"])
            start = state["iteration"]
            print(f"{run_dir}: resuming from the checkpoint at iteration {start} of {config.iters}")

        loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=True,
                            num_workers=config.workers)  # fmt: skip
        batches = itertools.chain.from_iterable(itertools.repeat(loader))
        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)
        sources = [Path(path).stem for path in config.zoo]  # what the gates and teachers are called in TensorBoard
        model.train()
        for iteration in tqdm(range(start, config.iters), initial=start, total=config.iters, desc=run_dir.name):
            images, targets = next(batches)
            loss = task_loss(config, model(images.to(config.device)), targets.to(config.device))
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss.item()} at iteration {iteration}; the last checkpoint is kept")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if (iteration + 1) % 10 == 0 or iteration + 1 == config.iters:
                log_scalars(writer, model, sources, iteration + 1, loss.item(), schedule.get_last_lr()[0])
            due = config.checkpoint_freq and (iteration + 1) % config.checkpoint_freq == 0
            if due and iteration + 1 < config.iters:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "rng": rng_state(), "iteration": iteration + 1}  # fmt: skip
                atomic_write(run_dir / CHECKPOINT, lambda tmp, s=state: torch.save(s, tmp))
        scores = evaluate(model, test_set, config)
        for name, value in scores.items():
            writer.add_scalar(f"eval/{name}", value, config.iters)
        writer.close()
        atomic_write_text(run_dir / "eval.json", json.dumps({**scores, "ten_crop": config.ten_crop}, indent=2))
        atomic_write(run_dir / MODEL, lambda tmp: torch.save(model.state_dict(), tmp))
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
        return run_dir


def log_scalars(writer: SummaryWriter, model: TransferNet, sources: list[str], step: int, loss: float,
                lr: float) -> None:  # fmt: skip
    """The loss, the learning rate, and what the method learns (``zoo_rl.core.readouts``: gate
    coefficients per source, distillation loss, Knowledge Flow weights)."""
    writer.add_scalar("train/loss", loss, step)
    writer.add_scalar("train/lr", lr, step)
    for tag, value in readouts(model, sources).items():
        writer.add_scalar(tag, value, step)


@torch.no_grad()
def evaluate(model: TransferNet, dataset: Dataset, config: VisionConfig) -> dict[str, float]:
    """Classification: ``top1`` accuracy (with ten crops, the softmax scores of the crops are
    averaged).  Landmarks: mean ``nme`` over faces and the ``failure_rate`` (NME > 0.1)."""
    model.eval()
    correct, errors = 0, []
    for images, targets in DataLoader(dataset, batch_size=config.batch_size, num_workers=config.workers):
        images = images.to(config.device)
        if config.landmarks:
            errors.append(nme(decode_heatmaps(model(images)).cpu().numpy(), targets.numpy()))
        elif images.dim() == 5:  # (batch, 10 crops, C, H, W)
            b, n = images.shape[:2]
            probs = model(images.flatten(0, 1)).softmax(dim=1).view(b, n, -1).mean(dim=1)
            correct += int((probs.argmax(dim=1).cpu() == targets).sum())
        else:
            correct += int((model(images).argmax(dim=1).cpu() == targets).sum())
    model.train()
    if config.landmarks:
        per_face = np.concatenate(errors)
        return {"nme": float(per_face.mean()), "failure_rate": float((per_face > FAILURE_NME).mean())}
    return {"top1": correct / len(dataset)}


def load_trained(run_dir: Path, ten_crop: bool | None = None) -> tuple[VisionConfig, TransferNet, Dataset]:
    """The config, the trained model and the test set of a finished run."""
    config = VisionConfig.load(run_dir / "config.yaml")
    if ten_crop is not None:
        config.ten_crop = ten_crop
    if not (run_dir / MODEL).exists():
        raise ConfigError(f"{run_dir}: not finished (no model.pt)")
    _, test_set, outputs = datasets(config)
    model = build(config, outputs)
    model.load_state_dict(read_weights(run_dir / MODEL, "model", config.device))
    return config, model.eval(), test_set
