"""Landmark data sets as ``(image tensor, landmarks in the crop's pixels)`` pairs.

A face is cut from its image by a square of 1.25 times the longer side of its box, centred on
the box, and resized to ``crop`` pixels (training adds a random rotation of up to 15 degrees and
a scale of 0.9-1.1; no flip, which would need each scheme's left/right point pairs).  The crop
is a similarity transform, so the NME, a ratio of distances, is the same in crop pixels as in
the original image's.

``--data`` specs: ``300w:DIR`` (``DIR/train`` and ``DIR/test``, searched for ``.pts`` files
with their image beside them), ``wflw:DIR`` (the two ``list_98pt_rect_attr_*.txt`` files and
``WFLW_images/``), ``cofw:DIR`` (``COFW_train_color.mat``/``COFW_train.mat`` and the test
file) and ``synthetic:N`` (N training images of drawn keypoints, below).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import functional as TF

from zoo_rl.errors import ConfigError

from .data import MEAN, STD
from .landmarks import INTEROCULAR, read_cofw, read_pts, read_wflw

KINDS: tuple[str, ...] = ("300w", "wflw", "cofw", "synthetic")
BOX_SCALE = 1.25
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class Face:
    image: Callable[[], Image.Image]  # loads the RGB image (lazily: a data set holds thousands)
    points: np.ndarray  # (K, 2) x, y in the image's pixels
    box: np.ndarray  # x_min, y_min, x_max, y_max


def _to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(image), MEAN, STD)


class FaceCrops(Dataset):
    """Square face crops of ``faces`` with their landmarks in crop pixels."""

    def __init__(self, faces: Sequence[Face], crop: int, train: bool):
        self.faces, self.crop, self.train = list(faces), crop, train

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        face = self.faces[index]
        x0, y0, x1, y1 = face.box
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        pixels = BOX_SCALE * max(x1 - x0, y1 - y0) / self.crop  # image pixels per crop pixel
        angle = 0.0
        if self.train:
            pixels *= float(torch.empty(()).uniform_(0.9, 1.1))
            angle = math.radians(float(torch.empty(()).uniform_(-15, 15)))
        # crop pixel u -> image pixel centre + pixels * R (u - middle), pixel centres at integers
        rotation = pixels * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        middle = (self.crop - 1) / 2
        offset = centre - rotation @ np.array([middle, middle])
        # PIL samples output pixel (u, v) at input (a, b; d, e) (u + 0.5, v + 0.5) + (c, f), in
        # pixel-corner coordinates: shifted by half a pixel on both sides to our convention.
        shift = offset + 0.5 - rotation @ np.array([0.5, 0.5])
        data = (rotation[0, 0], rotation[0, 1], shift[0], rotation[1, 0], rotation[1, 1], shift[1])
        image = face.image().transform((self.crop, self.crop), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
        points = (face.points - offset) @ np.linalg.inv(rotation).T
        return _to_tensor(image), torch.as_tensor(points, dtype=torch.float32)


class SyntheticFaces(Dataset):
    """A landmark task a network can genuinely learn without any data set: 29 keypoints (the
    COFW scheme's count, so its inter-ocular convention applies) of one fixed random "face"
    template, placed under a random similarity transform with per-point jitter, each drawn as
    a disc of its own colour on a noisy background.  Image ``i`` of a split is the same on
    every call (seeded by split and index)."""

    points = 29

    def __init__(self, size: int, crop: int, split_seed: int):
        self.size, self.crop, self.split_seed = size, crop, split_seed
        template = np.random.default_rng(12345).uniform(-1, 1, (self.points, 2))
        template[list(INTEROCULAR[self.points])] = [[-0.6, -0.4], [0.6, -0.4]]  # the "outer eye corners"
        self.template = template
        hues = np.linspace(0, 1, self.points, endpoint=False)
        self.colours = np.stack([np.abs(((hues * 6 + k) % 6) - 3) - 1 for k in (0, 4, 2)], 1).clip(0, 1)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.split_seed, index])
        angle = rng.uniform(-0.4, 0.4)
        scale = rng.uniform(0.25, 0.35) * self.crop
        rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        centre = self.crop / 2 + rng.uniform(-0.08, 0.08, 2) * self.crop
        points = (self.template + rng.normal(0, 0.03, self.template.shape)) @ rotation.T + centre
        image = rng.uniform(0, 0.3, (self.crop, self.crop, 3))
        grid_y, grid_x = np.mgrid[: self.crop, : self.crop]
        radius = max(1.5, self.crop / 40)
        for (x, y), colour in zip(points, self.colours, strict=True):
            image[(grid_x - x) ** 2 + (grid_y - y) ** 2 <= radius**2] = colour
        return _to_tensor(image.astype(np.float32)), torch.as_tensor(points, dtype=torch.float32)


def _image_loader(path: Path) -> Callable[[], Image.Image]:
    return lambda: Image.open(path).convert("RGB")


def _array_loader(image: np.ndarray) -> Callable[[], Image.Image]:
    return lambda: Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")


def _300w_faces(folder: Path) -> list[Face]:
    faces = []
    for pts in sorted(folder.rglob("*.pts")):
        # AFW's images with several faces have one file per face: image_1.pts, image_2.pts
        stems = [pts.stem, pts.stem.rsplit("_", 1)[0]]
        images = [pts.with_name(stem + suffix) for stem in stems for suffix in IMAGE_SUFFIXES]
        image = next((path for path in images if path.exists()), None)
        if image is None:
            raise ConfigError(f"{pts}: no image beside it ({', '.join(IMAGE_SUFFIXES)})")
        points = read_pts(pts)
        faces.append(Face(_image_loader(image), points, np.concatenate([points.min(0), points.max(0)])))
    if not faces:
        raise ConfigError(f"{folder}: no .pts files (300w:DIR needs DIR/train and DIR/test with 300W's .pts files)")
    return faces


def _wflw_faces(root: Path, split: str) -> list[Face]:
    name = f"list_98pt_rect_attr_{split}.txt"
    candidates = [root / name, root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / name]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise ConfigError(f"{root}: no {name} (wflw:DIR needs WFLW's annotation files and DIR/WFLW_images)")
    return [Face(_image_loader(root / "WFLW_images" / f.image), f.landmarks, f.box) for f in read_wflw(path)]


def _cofw_faces(root: Path, split: str) -> list[Face]:
    path = next(
        (root / f"COFW_{split}{s}.mat" for s in ("_color", "") if (root / f"COFW_{split}{s}.mat").exists()), None
    )
    if path is None:
        raise ConfigError(f"{root}: no COFW_{split}_color.mat or COFW_{split}.mat")
    images, landmarks, _, boxes = read_cofw(path)
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)  # x, y, w, h -> corners
    return [
        Face(_array_loader(image), points, box) for image, points, box in zip(images, landmarks, corners, strict=True)
    ]


def landmark_datasets(kind: str, root: str, crop: int) -> tuple[Dataset, Dataset, int]:
    """``(train, test, number of landmarks)`` of a landmark ``--data`` spec (see the module)."""
    if kind == "synthetic":
        try:
            size = int(root)
        except ValueError:
            size = 0
        if size < 1:
            raise ConfigError(f"synthetic:N expects a number of training images >= 1, got {root!r}")
        return SyntheticFaces(size, crop, 0), SyntheticFaces(max(64, size // 4), crop, 1), SyntheticFaces.points
    folder = Path(root)
    if kind == "300w":
        train, test = _300w_faces(folder / "train"), _300w_faces(folder / "test")
    elif kind == "wflw":
        train, test = _wflw_faces(folder, "train"), _wflw_faces(folder, "test")
    else:
        train, test = _cofw_faces(folder, "train"), _cofw_faces(folder, "test")
    return FaceCrops(train, crop, train=True), FaceCrops(test, crop, train=False), len(train[0].points)
