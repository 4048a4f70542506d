"""Train, evaluate and export an image classifier with a transfer method: one loop, read
top to bottom, with the paper's recipe as defaults (SGD with Nesterov momentum 0.9,
weight decay 5e-4, lr 0.01 decayed x0.1 at 6K and 12K of 15K iterations, batch 48).

The run directory mirrors the RL one: ``config.yaml``, ``tb/``, ``checkpoint.pt`` while
training (re-running the same command resumes from it), then ``model.pt`` (the trained
weights) and ``eval.json`` (top-1 accuracy).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from zoo_rl.core import gate_coefficients
from zoo_rl.errors import ConfigError, TrainingDiverged
from zoo_rl.io_utils import atomic_write, atomic_write_text, read_weights, read_yaml
from zoo_rl.rng import rng_state, set_rng_state
from zoo_rl.run_dir import claim_run, run_status, start_run_dir

from .data import load_datasets
from .models import ARCHS, METHOD_OPTIONS, METHODS, Classifier, DistilledTrunk, build_classifier

CHECKPOINT = "checkpoint.pt"  # while training
MODEL = "model.pt"  # the trained weights: a finished run


@dataclass
class VisionConfig:
    """Everything that defines one vision run."""

    data: str
    zoo: list[str] = field(default_factory=list)
    arch: str = "resnet50"
    method: str = "zoo"
    iters: int = 15_000
    batch_size: int = 48
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_steps: list[int] = field(default_factory=lambda: [6_000, 12_000])
    crop: int = 224
    resize: int = 256
    ten_crop: bool = False
    seed: int = 0
    workers: int = 2
    checkpoint_freq: int = 500
    device: str = "cpu"
    options: dict[str, float] = field(default_factory=dict)  # the method's options (METHOD_OPTIONS)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.method not in METHODS:
            raise ConfigError(f"unknown vision method {self.method!r}; expected one of {', '.join(METHODS)}")
        for name in ("iters", "batch_size", "crop", "resize"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop > self.resize:
            raise ConfigError(f"crop ({self.crop}) must not exceed resize ({self.resize})")
        allowed = METHOD_OPTIONS.get(self.method, ())
        for key, value in self.options.items():
            if key not in allowed:
                takes = f"takes {', '.join(allowed)}" if allowed else "takes none"
                raise ConfigError(f"vision method {self.method!r} has no option {key!r} ({takes})")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"option {key} of {self.method!r} must be a number, got {value!r}")

    def run_name(self) -> str:
        dataset = Path(self.data.partition(":")[2]).name or "data"
        return f"{dataset}_{self.arch}_{self.method}_s{self.seed}"

    def identity(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("checkpoint_freq", "device", "workers", "ten_crop")}

    def save(self, path: Path) -> None:
        atomic_write_text(path, yaml.safe_dump(asdict(self), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> VisionConfig:
        data = read_yaml(Path(path))
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown}")
        return cls(**data)


def build(config: VisionConfig, num_classes: int) -> Classifier:
    return build_classifier(config.arch, config.method, config.zoo, num_classes, **config.options).to(config.device)


def train_vision(config: VisionConfig, out: Path) -> Path:
    """Train (or resume, or skip if finished) one run under ``out``; return its directory."""
    run_dir = Path(out) / config.run_name()
    status = partial(run_status, run_dir, config, VisionConfig.load, finished=MODEL, checkpoint=CHECKPOINT)
    if status() == "finished":
        print(f"{run_dir}: already finished, skipping")
        return run_dir
    torch.manual_seed(config.seed)
    train_set, test_set, num_classes = load_datasets(config.data, config.crop, config.resize, config.ten_crop)
    model = build(config, num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)  # fmt: skip
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.lr_steps, gamma=0.1)
    with claim_run(run_dir, status) as now:  # makes the directory: only after the last check of the options
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
        else:
            start_run_dir(run_dir, config)

        loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=True,
                            num_workers=config.workers)  # fmt: skip
        batches = itertools.chain.from_iterable(itertools.repeat(loader))
        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)
        model.train()
        for iteration in tqdm(range(start, config.iters), initial=start, total=config.iters, desc=run_dir.name):
            images, labels = next(batches)
            loss = nn.functional.cross_entropy(model(images.to(config.device)), labels.to(config.device))
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss.item()} at iteration {iteration}; the last checkpoint is kept")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if (iteration + 1) % 10 == 0 or iteration + 1 == config.iters:
                log_scalars(writer, model, iteration + 1, loss.item(), schedule.get_last_lr()[0])
            due = config.checkpoint_freq and (iteration + 1) % config.checkpoint_freq == 0
            if due and iteration + 1 < config.iters:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "rng": rng_state(), "iteration": iteration + 1}  # fmt: skip
                atomic_write(run_dir / CHECKPOINT, lambda tmp, s=state: torch.save(s, tmp))
        top1 = evaluate(model, test_set, config)
        writer.add_scalar("eval/top1", top1, config.iters)
        writer.close()
        atomic_write_text(run_dir / "eval.json", json.dumps({"top1": top1, "ten_crop": config.ten_crop}, indent=2))
        atomic_write(run_dir / MODEL, lambda tmp: torch.save(model.state_dict(), tmp))
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
        return run_dir


def log_scalars(writer: SummaryWriter, model: Classifier, step: int, loss: float, lr: float) -> None:
    writer.add_scalar("train/loss", loss, step)
    writer.add_scalar("train/lr", lr, step)
    if isinstance(model.backbones[0], DistilledTrunk):
        writer.add_scalar("distill/loss", model.backbones[0].distillation.last_loss, step)
    for layer, coefficients in gate_coefficients(model.backbones[0]).items():
        for i, value in enumerate(coefficients["last"].tolist()):
            writer.add_scalar(f"gate/{layer}/source{i}", value, step)


@torch.no_grad()
def evaluate(model: Classifier, dataset, config: VisionConfig) -> float:
    """Top-1 accuracy; with ten crops, the softmax scores of the crops are averaged."""
    model.eval()
    correct = total = 0
    for images, labels in DataLoader(dataset, batch_size=config.batch_size, num_workers=config.workers):
        images = images.to(config.device)
        if images.dim() == 5:  # (batch, 10 crops, C, H, W)
            b, n = images.shape[:2]
            probs = model(images.flatten(0, 1)).softmax(dim=1).view(b, n, -1).mean(dim=1)
        else:
            probs = model(images)
        correct += int((probs.argmax(dim=1).cpu() == labels).sum())
        total += len(labels)
    model.train()
    return correct / total


def load_trained(run_dir: Path, ten_crop: bool | None = None) -> tuple[VisionConfig, Classifier, object]:
    """The config, the trained model and the test set of a finished run."""
    config = VisionConfig.load(run_dir / "config.yaml")
    if ten_crop is not None:
        config.ten_crop = ten_crop
    if not (run_dir / MODEL).exists():
        raise ConfigError(f"{run_dir}: not finished (no model.pt)")
    _, test_set, num_classes = load_datasets(config.data, config.crop, config.resize, config.ten_crop)
    model = build(config, num_classes)
    model.load_state_dict(read_weights(run_dir / MODEL, "model", config.device))
    return config, model.eval(), test_set
