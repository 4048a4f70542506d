"""Facial landmarks: readers of the three data sets' published annotation formats (on files
written here in each format), the NME, heatmaps, face crops, every Table 2 method as a heatmap
model, and training end to end on a synthetic task a network can learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from tests.conftest import run_cli
from zoo_rl.core import KnowledgeFlow
from zoo_rl.errors import ConfigError
from zoo_rl.vision.landmark_data import Face, FaceCrops, landmark_datasets
from zoo_rl.vision.landmarks import (
    INTEROCULAR,
    LandmarkFormatError,
    decode_heatmaps,
    heatmap_targets,
    nme,
    read_cofw,
    read_pts,
    read_wflw,
)
from zoo_rl.vision.models import METHODS, model_from_sources, plain_state_dict, trunk

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


def test_heatmaps_encode_and_decode_points_to_within_a_pixel():
    points = torch.as_tensor(RNG.uniform(4, 56, (3, 29, 2)), dtype=torch.float32)  # off the border row
    maps = heatmap_targets(points, 16)
    assert maps.shape == (3, 29, 16, 16) and float(maps.amax()) <= 1.0
    error = (decode_heatmaps(maps) - points).norm(dim=2)
    assert float(error.max()) < 1.5 and float(error.mean()) < 1.0  # argmax on a grid 4x coarser, quarter step


@pytest.mark.parametrize("train", [False, True])
def test_face_crop_moves_landmarks_with_the_pixels(train):
    """Dots drawn at the landmarks are found at the crop's landmark coordinates (also under the
    random rotation and scale of training): image and points go through the same transform."""
    points = np.array([[60.0, 70.0], [140.0, 75.0], [100.0, 130.0]])
    image = np.zeros((200, 220, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:200, :220]
    for x, y in points:
        image[(xx - x) ** 2 + (yy - y) ** 2 <= 16] = 255
    face = Face(lambda: Image.fromarray(image), points, np.array([50.0, 60.0, 150.0, 140.0]))
    torch.manual_seed(3)
    crop, moved = FaceCrops([face], 128, train=train)[0]
    assert crop.shape == (3, 128, 128)
    bright = crop[0] > crop[0].amax() / 2
    cy, cx = np.mgrid[:128, :128]
    for x, y in moved.numpy():
        near = bright.numpy() & ((cx - x) ** 2 + (cy - y) ** 2 <= 25)
        centroid = np.array([cx[near].mean(), cy[near].mean()])
        assert np.linalg.norm(centroid - [x, y]) < 0.35, (centroid, (x, y))


def write_300w(root, rng):
    for split, count in (("train", 2), ("test", 1)):
        folder = root / split / "helen"
        folder.mkdir(parents=True)
        for i in range(count):
            points = rng.uniform(20, 80, (68, 2))
            body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
            (folder / f"{i}.pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")
            Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")


def test_landmark_data_sets_from_each_published_layout(tmp_path):
    write_300w(tmp_path / "300w", RNG)
    (tmp_path / "wflw" / "WFLW_images" / "0--Parade").mkdir(parents=True)
    line = " ".join(f"{v:.2f}" for v in RNG.uniform(20, 80, 196)) + " 20 20 80 80 0 0 0 0 0 0 0--Parade/a.jpg"
    for split in ("train", "test"):
        (tmp_path / "wflw" / f"list_98pt_rect_attr_{split}.txt").write_text(line + "\n")
    face = Image.fromarray(RNG.integers(0, 255, (100, 100, 3), dtype=np.uint8))
    face.save(tmp_path / "wflw/WFLW_images/0--Parade/a.jpg")
    (tmp_path / "cofw").mkdir()
    for split, key in (("train", "Tr"), ("test", "T")):
        images = np.empty((2, 1), dtype=object)
        for i in range(2):
            images[i, 0] = RNG.integers(0, 255, (90, 100), dtype=np.uint8)
        phis = np.concatenate([RNG.uniform(20, 80, (2, 58)), np.zeros((2, 29))], axis=1)
        boxes = np.tile([20.0, 20, 60, 60], (2, 1))
        data = {f"Is{key}": images, f"phis{key}": phis, f"bboxes{key}": boxes}
        savemat(tmp_path / "cofw" / f"COFW_{split}.mat", data)
    for kind, points, sizes in (("300w", 68, (2, 1)), ("wflw", 98, (1, 1)), ("cofw", 29, (2, 2))):
        train, test, k = landmark_datasets(kind, str(tmp_path / kind), 64)
        assert (k, len(train), len(test)) == (points, *sizes)
        image, landmarks = test[0]
        assert image.shape == (3, 64, 64) and landmarks.shape == (points, 2)
    (tmp_path / "300w/test/helen/0.jpg").unlink()
    with pytest.raises(ConfigError, match=r"300w/test/helen/0.pts: no image beside it"):
        landmark_datasets("300w", str(tmp_path / "300w"), 64)
    with pytest.raises(ConfigError, match=r"no list_98pt_rect_attr_train.txt"):
        landmark_datasets("wflw", str(tmp_path), 64)
    with pytest.raises(ConfigError, match="synthetic:N expects a number of training images"):
        landmark_datasets("synthetic", "many", 64)


@pytest.mark.parametrize("method", METHODS)
def test_every_table_2_row_builds_a_heatmap_model(method):
    """Each method flag gives a model from 64x64 faces to 29 heatmaps of 16x16 that trains;
    those whose row says they export give one plain ResNet-18 and head with the same outputs."""
    torch.manual_seed(0)
    sources = [trunk("resnet18").state_dict() for _ in range(1 if method == "finetune" else 2)]
    model = model_from_sources("resnet18", method, [] if method == "scratch" else sources, 29, landmarks=True)
    x = torch.rand(2, 3, 64, 64)
    out = model.train()(x)
    assert out.shape == (2, 29, 16, 16)
    out.pow(2).mean().backward()
    if method == "distill":
        assert model.backbones[0].distillation.last_loss > 0
    model.eval()
    flows = [m for m in model.modules() if isinstance(m, KnowledgeFlow)]
    for flow in flows:  # as Knowledge Flow ends when trained long enough: free of its teachers
        with pytest.raises(ConfigError, match="still depends on its teachers"):
            plain_state_dict(model)
        with torch.no_grad():
            flow.dependency[:, 1:] = 0.0
    if not METHODS[method].exportable:  # input-dependent weights, or several trunks
        with pytest.raises(ConfigError):
            plain_state_dict(model)
        return
    plain = model_from_sources("resnet18", "scratch", [], 29, landmarks=True).eval()
    plain.load_state_dict(plain_state_dict(model), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), rtol=1e-4, atol=1e-5)


def test_synthetic_landmarks_are_learned_end_to_end(resnet18_zoo, tmp_path, capsys):
    """`zoo-rl vision train` on the synthetic task with lite Zoo-Tuning from two ResNet-18s: the
    test NME falls well below the untrained model's; the run evaluates, exports and is costed."""
    from zoo_rl.vision.train import VisionConfig, build, datasets, evaluate

    args = ["--data", "synthetic:128", "--arch", "resnet18", "--method", "lite", "--zoo", *resnet18_zoo,
            "--iters", 100, "--batch-size", 8, "--optimizer", "adam", "--lr", 1e-3, "--lr-steps",
            "--crop", 64, "--workers", 0, "--out", tmp_path]  # fmt: skip
    assert run_cli("vision", "train", *args) == 0
    run_dir = tmp_path / "synthetic128_resnet18_lite_s0"
    config = VisionConfig.load(run_dir / "config.yaml")
    torch.manual_seed(config.seed)
    _, test_set, points = datasets(config)
    untrained = evaluate(build(config, points), test_set, config)["nme"]
    trained = json.loads((run_dir / "eval.json").read_text())
    assert trained["nme"] < 0.5 * untrained, (trained, untrained)
    assert "NME" in capsys.readouterr().out
    assert run_cli("vision", "eval", run_dir) == 0
    assert f"NME {trained['nme']:.4f}" in capsys.readouterr().out
    assert run_cli("vision", "export", run_dir, "-o", tmp_path / "plain.pt") == 0
    plain = model_from_sources("resnet18", "scratch", [], 29, landmarks=True)
    plain.load_state_dict(torch.load(tmp_path / "plain.pt", weights_only=True), strict=True)
    assert run_cli("vision", "cost", run_dir, "--crop", 64, "--train-batch", 2) == 0
    assert str(run_dir) in capsys.readouterr().out
