"""Readers of the three landmark data sets' published annotation formats, on files written here
in each format, and the normalised mean error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from zoo_rl.vision.landmarks import INTEROCULAR, LandmarkFormatError, nme, read_cofw, read_pts, read_wflw

RNG = np.random.default_rng(0)


def test_300w_pts_file(tmp_path):
    points = np.round(RNG.uniform(0, 500, (68, 2)), 3)
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    (tmp_path / "indoor_001.pts").write_text(f"version: 1\nn_points:  68\n{{\n{body}\n}}\n")
    np.testing.assert_array_equal(read_pts(tmp_path / "indoor_001.pts"), points)
    (tmp_path / "short.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(LandmarkFormatError, match=r"short.pts: n_points is 68 but 1 x y lines follow"):
        read_pts(tmp_path / "short.pts")


def test_wflw_annotation_lines(tmp_path):
    faces = [RNG.uniform(0, 300, (98, 2)).round(4) for _ in range(2)]
    lines = [
        " ".join(f"{v:.4f}" for v in face.ravel()) + f" 10 20 210 230 {i} 0 1 0 0 1 51--Dresses/51_{i}.jpg"
        for i, face in enumerate(faces)
    ]
    (tmp_path / "list_98pt_rect_attr_test.txt").write_text("\n".join(lines) + "\n")
    read = read_wflw(tmp_path / "list_98pt_rect_attr_test.txt")
    assert [f.image for f in read] == ["51--Dresses/51_0.jpg", "51--Dresses/51_1.jpg"]
    np.testing.assert_allclose(read[1].landmarks, faces[1])
    assert read[0].box.tolist() == [10, 20, 210, 230] and read[1].attributes["pose"] == 1
    assert read[1].attributes == {
        "pose": 1,
        "expression": 0,
        "illumination": 1,
        "make_up": 0,
        "occlusion": 0,
        "blur": 1,
    }
    (tmp_path / "bad.txt").write_text(lines[0] + "\n" + lines[1].rsplit(" ", 3)[0] + "\n")
    with pytest.raises(LandmarkFormatError, match=r"bad.txt:2: expected 207 fields"):
        read_wflw(tmp_path / "bad.txt")


def test_cofw_mat_file(tmp_path):
    n = 3
    shapes = RNG.uniform(20, 200, (n, 29, 2))
    occluded = RNG.random((n, 29)) > 0.7
    phis = np.concatenate([shapes[:, :, 0], shapes[:, :, 1], occluded.astype(float)], axis=1)
    images = np.empty((n, 1), dtype=object)
    for i in range(n):
        images[i, 0] = RNG.integers(0, 255, (40 + i, 50), dtype=np.uint8)
    boxes = RNG.uniform(0, 100, (n, 4))
    savemat(tmp_path / "COFW_test.mat", {"IsT": images, "phisT": phis, "bboxesT": boxes})
    read_images, landmarks, read_occluded, read_boxes = read_cofw(tmp_path / "COFW_test.mat")
    np.testing.assert_allclose(landmarks, shapes)
    np.testing.assert_array_equal(read_occluded, occluded)
    np.testing.assert_allclose(read_boxes, boxes)
    assert [im.shape for im in read_images] == [(40, 50), (41, 50), (42, 50)]
    savemat(tmp_path / "other.mat", {"phisT": phis[:, :58]})
    with pytest.raises(LandmarkFormatError, match="no IsT, bboxesT"):
        read_cofw(tmp_path / "other.mat")


@pytest.mark.parametrize("points", sorted(INTEROCULAR))
def test_nme_is_error_over_interocular_distance(points):
    truth = RNG.uniform(0, 100, (4, points, 2))
    left, right = INTEROCULAR[points]
    interocular = np.linalg.norm(truth[:, left] - truth[:, right], axis=1)
    shifted = truth + np.array([3.0, 4.0])  # every point 5 pixels off
    np.testing.assert_allclose(nme(shifted, truth), 5.0 / interocular)
    assert nme(truth, truth).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="no inter-ocular convention for 5 landmarks"):
        nme(truth[:, :5], truth[:, :5])
