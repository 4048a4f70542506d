"""Vision path: the five checkpoint layouts of the paper's zoo, built from torchvision's own
model definitions with random weights, and the train / eval / export commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image
from torchvision.models import detection, segmentation

from tests.conftest import run_cli
from zoo_rl.core import zoo_layers
from zoo_rl.errors import ConfigError
from zoo_rl.vision.checkpoints import CheckpointFormatError, backbone_weights
from zoo_rl.vision.models import build_model, trunk
from zoo_rl.vision.train import VisionConfig, train_vision


def moco_v2_checkpoint() -> dict:
    """What MoCo v2's main_moco.py saves: query and key encoders (ResNet-50 with an MLP head)."""
    encoder = torchvision.models.resnet50(weights=None)
    encoder.fc = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 128))
    state = {}
    for name in ("encoder_q", "encoder_k"):
        state.update({f"module.{name}.{k}": v for k, v in encoder.state_dict().items()})
    state["module.queue"] = torch.randn(128, 16)
    return {"epoch": 200, "arch": "resnet50", "state_dict": state}


FORMATS = {
    "classification": lambda: torchvision.models.resnet50(weights=None).state_dict(),
    "moco": moco_v2_checkpoint,
    "mask r-cnn": lambda: detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(),
    "keypoint r-cnn": lambda: detection.keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(),
    "deeplabv3": lambda: segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None).state_dict(),
}
EXPECTED = {"classification": "classification", "moco": "moco", "mask r-cnn": "detection",
            "keypoint r-cnn": "detection", "deeplabv3": "segmentation"}  # fmt: skip


@pytest.fixture(scope="module")
def resnet50_zoo(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("vision_zoo")
    paths = {}
    for name, make in FORMATS.items():
        torch.manual_seed(len(paths))
        paths[name] = folder / f"{name.replace(' ', '_')}.pth"
        torch.save(make(), paths[name])
    return paths


def test_each_format_yields_the_resnet_trunk(resnet50_zoo):
    reference = trunk("resnet50").state_dict()
    for name, path in resnet50_zoo.items():
        found, weights = backbone_weights(path, reference)
        assert found == EXPECTED[name]
        assert weights.keys() == reference.keys() and all(weights[k].shape == v.shape for k, v in reference.items())
    moco = torch.load(resnet50_zoo["moco"], weights_only=True)["state_dict"]
    _, weights = backbone_weights(resnet50_zoo["moco"], reference)
    assert torch.equal(weights["layer4.2.conv3.weight"], moco["module.encoder_q.layer4.2.conv3.weight"])


def test_a_zoo_of_all_five_formats_builds_one_resnet50(resnet50_zoo):
    model = build_model("resnet50", "zoo", list(resnet50_zoo.values()), 10)
    layers = zoo_layers(model.backbones[0])
    assert len(layers) == 53 and all(layer.num_sources == 5 for layer in layers.values())
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 10)


def test_unknown_format_lists_the_prefixes_it_found(tmp_path):
    torch.save({"encoder.stem.weight": torch.zeros(1), "head.fc.weight": torch.zeros(1)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointFormatError, match=r"odd\.pth: no ResNet trunk found.*'encoder\.stem', 'head\.fc'"):
        backbone_weights(tmp_path / "odd.pth", trunk("resnet18").state_dict())


def test_other_depth_is_named(resnet50_zoo):
    with pytest.raises(CheckpointFormatError, match=r"has shape .* \(another ResNet depth\?\)"):
        backbone_weights(resnet50_zoo["classification"], trunk("resnet18").state_dict())


def test_pickle_payload_in_a_checkpoint_never_runs(tmp_path):
    from tests.test_bad_input import Payload

    marker = tmp_path / "pwned"
    torch.save({"conv1.weight": Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointFormatError, match="not a plain weights file"):
        backbone_weights(tmp_path / "evil.pth", trunk("resnet18").state_dict())
    assert not marker.exists()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Two classes of generated 40x40 images: bright and dark."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for label, base in (("bright", 180), ("dark", 40)):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(base + rng.normal(0, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")
    return root


def vision_train(image_folder: Path, zoo: list[Path], out: Path, method: str, *extra) -> int:
    zoo_args = ["--zoo", *zoo] if zoo else []
    return run_cli("vision", "train", "--data", f"imagefolder:{image_folder}", *zoo_args, "--method", method,
                   "--arch", "resnet18", "--iters", 4, "--batch-size", 4, "--crop", 32, "--resize", 36,
                   "--lr-steps", 2, "--workers", 0, "--out", out, *extra)  # fmt: skip


# Knowledge Flow exports once the dependency loss has freed its student: a large weight does it at once.
FREE_KFLOW = ("--method-option", "dependency_weight=1000", "--method-option", "ramp_updates=1")


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("lite", ()),
        ("finetune", ()),
        ("scratch", ()),
        ("distill", ("--method-option", "weight=2")),
        ("kflow", FREE_KFLOW),
    ],
)
def test_trained_model_exports_to_plain_torchvision_with_the_same_outputs(
    method, extra, image_folder, resnet18_zoo, tmp_path, capsys
):
    zoo = resnet18_zoo[:1] if method == "finetune" else [] if method == "scratch" else resnet18_zoo
    assert vision_train(image_folder, zoo, tmp_path, method, *extra) == 0
    run_dir = tmp_path / f"{image_folder.name}_resnet18_{method}_s0"
    assert 0.0 <= json.loads((run_dir / "eval.json").read_text())["top1"] <= 1.0
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert run_cli("vision", "export", run_dir, "-o", tmp_path / "plain.pth") == 0
    plain = torchvision.models.resnet18(num_classes=2)
    plain.load_state_dict(torch.load(tmp_path / "plain.pth", weights_only=True), strict=True)
    from zoo_rl.vision.train import load_trained

    _, model, _ = load_trained(run_dir)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), model(x), rtol=1e-4, atol=1e-5)
    assert run_cli("vision", "eval", run_dir, "--ten-crop") == 0
    assert "ten crops" in capsys.readouterr().out
    assert run_cli("vision", "cost", run_dir, "--crop", 32, "--train-batch", 2) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(str(run_dir)))
    plain_params = sum(p.numel() for p in plain.parameters())
    assert row.split()[-1] == f"{plain_params / 1e6:.2f}M"  # inference: one plain ResNet-18, lite merged


def test_cost_columns_count_what_the_paper_counts():
    from zoo_rl.vision.cost import method_costs, model_cost
    from zoo_rl.vision.models import model_from_sources

    # one ResNet-50 with a 100-class head: the paper's 23.71M parameters, 4.09 GMACs (paper: 4.12)
    single = model_cost(model_from_sources("resnet50", "scratch", [], 100), 224, train_batch=1)
    assert single["inference_params"] == 23_712_932 and single["train_params"] == 23_712_932
    assert single["inference_gmacs"] == pytest.approx(4.087, abs=0.001)
    rows = {r["method"]: r for r in method_costs("resnet18", sources=2, outputs=10, crop=64, train_batch=4)}
    scratch, lite, zoo, ensemble = rows["scratch"], rows["lite"], rows["zoo"], rows["ensemble"]
    assert {**rows["finetune"], "method": "scratch"} == scratch
    for column in ("inference_gmacs", "inference_params"):  # lite merges into one plain ResNet
        assert lite[column] == scratch[column]
    assert lite["train_params"] > 2 * scratch["train_params"]  # two sources, alignment and gates
    assert zoo["train_gmacs"] > lite["train_gmacs"] > scratch["train_gmacs"]  # per-image mixing, then per batch
    assert ensemble["inference_gmacs"] == pytest.approx(2 * scratch["inference_gmacs"], rel=1e-3)
    distill = rows["distill"]  # trains with both frozen teachers, acts as the student alone
    assert (
        distill["inference_gmacs"] == scratch["inference_gmacs"]
        and distill["inference_params"] == scratch["inference_params"]
    )
    assert distill["train_gmacs"] == pytest.approx(3 * scratch["train_gmacs"], rel=1e-2)
    assert run_cli("vision", "cost", "--arch", "resnet18", "--sources", 2, "--crop", 32, "--train-batch", 2) == 0


@pytest.mark.parametrize("method", ["zoo", "ensemble", "kflow"])
def test_zoo_and_ensemble_train_but_do_not_export(method, image_folder, resnet18_zoo, tmp_path, capsys):
    assert vision_train(image_folder, resnet18_zoo, tmp_path, method) == 0
    run_dir = tmp_path / f"{image_folder.name}_resnet18_{method}_s0"
    assert (run_dir / "model.pt").exists()
    assert run_cli("vision", "export", run_dir, "-o", tmp_path / "x.pth") == 2
    expected = {"zoo": "full Zoo-Tuning", "ensemble": "ensemble", "kflow": "still depends on its teachers"}[method]
    assert expected in capsys.readouterr().err


def test_killed_vision_run_resumes_and_truncated_files_are_one_line(
    image_folder, resnet18_zoo, tmp_path, capsys, monkeypatch
):
    import zoo_rl.vision.train as vision

    def crash(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(vision, "evaluate", crash)  # dies after the last iteration, before saving
    with pytest.raises(KeyboardInterrupt):
        vision_train(image_folder, resnet18_zoo, tmp_path, "lite", "--checkpoint-freq", 2)
    monkeypatch.undo()
    run_dir = tmp_path / f"{image_folder.name}_resnet18_lite_s0"
    checkpoint = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(checkpoint[: len(checkpoint) // 2])  # a truncated checkpoint
    capsys.readouterr()
    assert vision_train(image_folder, resnet18_zoo, tmp_path, "lite", "--checkpoint-freq", 2) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.pt: not a readable zoo-rl checkpoint" in err, err
    (run_dir / "checkpoint.pt").write_bytes(checkpoint)  # nothing was lost: the run resumes
    assert vision_train(image_folder, resnet18_zoo, tmp_path, "lite", "--checkpoint-freq", 2) == 0
    assert "resuming from the checkpoint at iteration 2 of 4" in capsys.readouterr().out
    assert (run_dir / "model.pt").exists() and not (run_dir / "checkpoint.pt").exists()
    model = (run_dir / "model.pt").read_bytes()
    (run_dir / "model.pt").write_bytes(model[: len(model) // 2])
    assert run_cli("vision", "eval", run_dir) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.pt: not a readable zoo-rl model" in err, err


def test_bad_vision_input_is_one_line(image_folder, tmp_path, capsys):
    assert run_cli("vision", "train", "--data", f"imagefolder:{tmp_path}", "--method", "scratch", "--arch",
                   "resnet18", "--out", tmp_path / "out") == 2  # fmt: skip
    assert "needs DIR/train and DIR/val" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown vision method 'zoo-tuning'"):
        VisionConfig(data=f"imagefolder:{image_folder}", method="zoo-tuning")
    assert run_cli("vision", "train", "--data", f"imagefolder:{image_folder}", "--method", "distill",
                   "--method-option", "ramp_updates=5", "--out", tmp_path / "out") == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no option 'ramp_updates' (takes weight, decay_updates)" in err, err
    with pytest.raises(ConfigError, match="option weight of 'distill' must be a number"):
        VisionConfig(data=f"imagefolder:{image_folder}", method="distill", options={"weight": "high"})
    config = VisionConfig(data=f"imagefolder:{image_folder}", method="scratch", arch="resnet18", iters=1)
    (tmp_path / "runs" / config.run_name()).mkdir(parents=True)
    VisionConfig(data=config.data, method="scratch", arch="resnet18", iters=2).save(
        tmp_path / "runs" / config.run_name() / "config.yaml"
    )
    with pytest.raises(ConfigError, match="already holds a different run"):
        train_vision(config, tmp_path / "runs")


def test_vision_run_refuses_a_folder_that_is_not_a_run_and_keeps_it(image_folder, tmp_path, capsys):
    config = VisionConfig(data=f"imagefolder:{image_folder}", method="scratch", arch="resnet18", iters=1)
    mine = tmp_path / config.run_name() / "notes.txt"
    mine.parent.mkdir()
    mine.write_text("mine")
    assert run_cli("vision", "train", "--data", config.data, "--method", "scratch", "--arch", "resnet18",
                   "--iters", 1, "--out", tmp_path) == 2  # fmt: skip
    assert "not a zoo-rl run directory" in capsys.readouterr().err
    assert mine.read_text() == "mine"


def test_vision_config_file_errors_name_the_file_and_key(tmp_path):
    """A vision config.yaml goes through the same validator as the RL run config: a wrong key
    or type is one ConfigError naming the file and key (it used to be a TypeError traceback)."""
    from zoo_rl.vision.train import VisionConfig

    good = {"data": "synthetic:8", "arch": "resnet18", "method": "scratch"}
    for change, message in (({"iterations": 5}, r"unknown key\(s\) \['iterations'\]"),
                            ({"iters": "many"}, "iters must be an integer, got 'many'"),
                            ({"lr_steps": [1, "x"]}, "lr_steps must be a list of integers"),
                            ({"lr": True}, "lr must be a number, got True")):  # fmt: skip
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({**good, **change}))
        with pytest.raises(ConfigError, match=rf"config.yaml: {message}"):
            VisionConfig.load(path)
    path.write_text(yaml.safe_dump({**good, "lr": 1}))  # an integer is a number
    assert VisionConfig.load(path).lr == 1
