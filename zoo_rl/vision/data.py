"""Datasets and the paper's image transforms: random 224 crops of images resized to 256
for training, the centre crop (or ten crops, averaged) for evaluation."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from zoo_rl.errors import ConfigError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet statistics, as the sources were trained


def train_transform(crop: int, resize: int) -> transforms.Compose:
    return transforms.Compose([
        transforms.Resize(resize), transforms.RandomCrop(crop), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(MEAN, STD),
    ])  # fmt: skip


def eval_transform(crop: int, resize: int, ten_crop: bool) -> transforms.Compose:
    """One tensor (C, H, W), or with ``ten_crop`` a stack (10, C, H, W) of the four corners,
    the centre and their mirror images."""
    normalize = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    if not ten_crop:
        return transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), normalize])
    return transforms.Compose([
        transforms.Resize(resize), transforms.TenCrop(crop),
        transforms.Lambda(lambda crops: torch.stack([normalize(c) for c in crops])),
    ])  # fmt: skip


def load_datasets(spec: str, crop: int, resize: int, ten_crop: bool) -> tuple[Dataset, Dataset, int]:
    """``(train, test, number of classes)`` of ``imagefolder:DIR`` (DIR/train and DIR/val, one
    folder per class) or ``cifar100:DIR`` (the python version, already in DIR: nothing is downloaded)."""
    kind, sep, root = spec.partition(":")
    if not sep or kind not in ("imagefolder", "cifar100"):
        raise ConfigError(f"--data expects imagefolder:DIR or cifar100:DIR, got {spec!r}")
    train_tf, test_tf = train_transform(crop, resize), eval_transform(crop, resize, ten_crop)
    if kind == "cifar100":
        try:
            train = datasets.CIFAR100(root, train=True, transform=train_tf, download=False)
            test = datasets.CIFAR100(root, train=False, transform=test_tf, download=False)
        except RuntimeError as err:
            raise ConfigError(f"{root}: no CIFAR-100 (cifar-100-python) there ({err})") from err
        return train, test, 100
    folders = {split: Path(root) / split for split in ("train", "val")}
    for folder in folders.values():
        if not folder.is_dir():
            raise ConfigError(f"{folder}: missing; imagefolder:DIR needs DIR/train and DIR/val, a folder per class")
    train = datasets.ImageFolder(folders["train"], transform=train_tf)
    test = datasets.ImageFolder(folders["val"], transform=test_tf)
    if train.classes != test.classes:
        raise ConfigError(f"{root}: train and val have different class folders")
    return train, test, len(train.classes)
