"""Facial landmarks (the paper's Table 2): readers for the three data sets' published annotation
formats and the normalised mean error.

* 300W: one ``.pts`` file per image (``version: 1``, ``n_points: 68``, then ``x y`` lines
  between braces), coordinates 1-based as the iBUG tools write them: read as they are.
* WFLW: ``list_98pt_rect_attr_{train,test}.txt``, one face per line: 196 coordinates
  ``x0 y0 ... x97 y97``, the box ``x_min y_min x_max y_max``, six 0/1 attributes (pose,
  expression, illumination, make-up, occlusion, blur) and the image's path.
* COFW: ``COFW_train.mat`` / ``COFW_test.mat`` (MATLAB v5): images ``IsTr``/``IsT`` (a cell
  array), shapes ``phisTr``/``phisT`` (per face 29 x, 29 y, 29 occlusion flags) and boxes
  ``bboxesTr``/``bboxesT`` (x, y, width, height).

NME: the mean point-to-point error of a face divided by its inter-ocular distance (the outer
eye corners), as the 300W, WFLW and COFW protocols define it; the corner indices are those of
each scheme (68 points: 36 and 45; 98 points: 60 and 72; 29 points: 8 and 9, 0-based).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zoo_rl.errors import ConfigError, ZooRlError

# Number of points -> 0-based indices of the two outer eye corners.
INTEROCULAR: dict[int, tuple[int, int]] = {68: (36, 45), 98: (60, 72), 29: (8, 9)}
WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make_up", "occlusion", "blur")


class LandmarkFormatError(ZooRlError, ValueError):
    """An annotation file that is not in its data set's format; the message names the file and line."""


def read_pts(path: str | Path) -> np.ndarray:
    """The (n_points, 2) landmarks of a 300W ``.pts`` file."""
    path = Path(path)
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        header = dict(line.split(":", 1) for line in lines[: lines.index("{")])
        n = int(header["n_points"])
        body = lines[lines.index("{") + 1 : lines.index("}")]
        points = np.array([[float(v) for v in line.split()] for line in body], dtype=np.float64)
    except (ValueError, KeyError) as err:
        raise LandmarkFormatError(f"{path}: not a .pts file (n_points header, then x y lines in braces)") from err
    if points.shape != (n, 2):
        raise LandmarkFormatError(f"{path}: n_points is {n} but {len(body)} x y lines follow")
    return points


@dataclass
class WflwFace:
    image: str
    landmarks: np.ndarray  # (98, 2)
    box: np.ndarray  # x_min, y_min, x_max, y_max
    attributes: dict[str, int]


def read_wflw(path: str | Path) -> list[WflwFace]:
    """Every face of a WFLW annotation file."""
    faces = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 207:
            raise LandmarkFormatError(f"{path}:{number}: expected 207 fields (196 coordinates, box, 6 attributes, "
                                      f"image), got {len(fields)}")  # fmt: skip
        try:
            values = np.array(fields[:206], dtype=np.float64)
        except ValueError as err:
            raise LandmarkFormatError(f"{path}:{number}: non-numeric coordinate, box or attribute") from err
        attributes = dict(zip(WFLW_ATTRIBUTES, values[200:206].astype(int).tolist(), strict=True))
        faces.append(WflwFace(fields[206], values[:196].reshape(98, 2), values[196:200], attributes))
    return faces


def read_cofw(path: str | Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """``(images, landmarks (N, 29, 2), occluded (N, 29) bool, boxes (N, 4))`` of a COFW .mat file."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except (ValueError, NotImplementedError, OSError) as err:  # NotImplementedError: MATLAB v7.3 (HDF5)
        raise LandmarkFormatError(f"{path}: not a MATLAB v5 .mat file ({err})") from err
    split = "Tr" if "phisTr" in mat else "T"
    missing = [k + split for k in ("Is", "phis", "bboxes") if k + split not in mat]
    if missing:
        raise LandmarkFormatError(f"{path}: no {', '.join(missing)} (expected COFW's IsTr/phisTr/bboxesTr or IsT/...)")
    phis = np.asarray(mat["phis" + split], dtype=np.float64)
    if phis.ndim != 2 or phis.shape[1] != 87:
        raise LandmarkFormatError(f"{path}: phis{split} has shape {phis.shape}, expected (N, 87)")
    images = [np.asarray(image) for image in np.asarray(mat["Is" + split]).ravel()]
    landmarks = np.stack([phis[:, :29], phis[:, 29:58]], axis=2)
    return images, landmarks, phis[:, 58:] > 0, np.asarray(mat["bboxes" + split], dtype=np.float64)


def nme(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-face normalised mean error of (N, K, 2) predictions, K one of :data:`INTEROCULAR`."""
    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    k = truth.shape[1]
    if k not in INTEROCULAR:
        raise ConfigError(f"no inter-ocular convention for {k} landmarks; expected one of {sorted(INTEROCULAR)}")
    left, right = INTEROCULAR[k]
    interocular = np.linalg.norm(truth[:, left] - truth[:, right], axis=1)
    return np.linalg.norm(predicted - truth, axis=2).mean(axis=1) / interocular


# Heatmaps: pixel centres are at integer coordinates in both the image and the heatmap, so a
# point p of the image sits at (p + 0.5) / stride - 0.5 on a heatmap `stride` times smaller.
HEATMAP_STRIDE = 4  # a ResNet's stride 32, undone by the head's three x2 transposed convolutions
HEATMAP_SIGMA = 1.5  # heatmap pixels, as HRNet's facial landmark recipe


def heatmap_targets(points: torch.Tensor, size: int, sigma: float = HEATMAP_SIGMA) -> torch.Tensor:
    """(B, K, size, size) Gaussian heatmaps, peak 1, of (B, K, 2) image points (x, y)."""
    centres = (points + 0.5) / HEATMAP_STRIDE - 0.5
    grid = torch.arange(size, dtype=points.dtype, device=points.device)
    dx = (grid.view(1, 1, 1, -1) - centres[..., 0, None, None]) ** 2
    dy = (grid.view(1, 1, -1, 1) - centres[..., 1, None, None]) ** 2
    return torch.exp(-(dx + dy) / (2 * sigma**2))


def decode_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) image points of (B, K, H, W) heatmaps: the maximum, moved a quarter pixel
    towards its higher neighbour on each axis (the usual sub-pixel step), back to image pixels."""
    b, k, h, w = heatmaps.shape
    flat = heatmaps.flatten(2).argmax(dim=2)
    y, x = (flat // w), (flat % w)
    maps = heatmaps.flatten(0, 1)
    rows = torch.arange(b * k, device=heatmaps.device)
    xs, ys = x.flatten(), y.flatten()

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return maps[rows, yy.clamp(0, h - 1), xx.clamp(0, w - 1)]

    shift_x = torch.sign(at(ys, xs + 1) - at(ys, xs - 1)) * ((xs > 0) & (xs < w - 1))
    shift_y = torch.sign(at(ys + 1, xs) - at(ys - 1, xs)) * ((ys > 0) & (ys < h - 1))
    coords = torch.stack([xs + 0.25 * shift_x, ys + 0.25 * shift_y], dim=1).view(b, k, 2).float()
    return (coords + 0.5) * HEATMAP_STRIDE - 0.5
