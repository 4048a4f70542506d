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
