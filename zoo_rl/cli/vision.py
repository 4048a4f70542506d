"""``zoo-rl vision``: train, evaluate, export and cost torchvision ResNet zoos (each verb imports
what it needs when it runs, as :mod:`zoo_rl.cli.commands` does)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from zoo_rl.rl.training.command_line import DEVICE_HELP, parse_option
from zoo_rl.vision.defaults import VISION_DEFAULTS


def cmd_vision_train(args: argparse.Namespace) -> None:
    from zoo_rl.vision.train import VisionConfig, train_vision

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(VisionConfig) if hasattr(args, f.name)}
    given.update(zoo=[str(p) for p in args.zoo], options=dict(parse_option(o) for o in args.method_option))
    config = VisionConfig(**given)
    run_dir = train_vision(config, args.out)
    scores = json.loads((run_dir / "eval.json").read_text())
    print(f"{run_dir}: {_vision_scores(scores)}")


def _vision_scores(scores: dict[str, float]) -> str:
    if "nme" in scores:
        return f"NME {scores['nme']:.4f}, failure rate {scores['failure_rate']:.4f}"
    return f"top-1 {scores['top1']:.4f}"


def cmd_vision_eval(args: argparse.Namespace) -> None:
    from zoo_rl.vision.train import evaluate, load_trained

    config, model, test_set = load_trained(args.rundir, ten_crop=args.ten_crop or None)
    crops = "face crops" if config.landmarks else "ten crops" if config.ten_crop else "centre crop"
    scores = _vision_scores(evaluate(model, test_set, config))
    print(f"{args.rundir}: {scores} ({crops}, {len(test_set)} images)")


def cmd_vision_export(args: argparse.Namespace) -> None:
    import torch

    from zoo_rl.io_utils import atomic_write
    from zoo_rl.vision.models import plain_state_dict, to_torchvision
    from zoo_rl.vision.train import load_trained

    config, model, _ = load_trained(args.rundir)
    model = model.cpu()
    if config.landmarks:
        state = plain_state_dict(model)
        points = model.head.out.out_channels
        built = f"zoo_rl.vision.models.model_from_sources({config.arch!r}, 'scratch', [], {points}, landmarks=True)"
    else:
        state = to_torchvision(model)
        built = f"torchvision.models.{config.arch}(num_classes={model.head.out_features})"
    atomic_write(args.output, lambda tmp: torch.save(state, tmp))
    print(f"{args.output}: weights of {built}")


def cmd_vision_cost(args: argparse.Namespace) -> None:
    from zoo_rl.vision.cost import PAPER, method_costs, model_cost
    from zoo_rl.vision.train import load_trained

    if args.rundirs:
        rows = [{"method": str(run), **model_cost(load_trained(run)[1], args.crop, args.train_batch)}
                for run in args.rundirs]  # fmt: skip
    elif args.landmarks:
        rows = method_costs(args.arch, args.sources, args.landmarks, args.crop, args.train_batch, landmarks=True)
    else:
        rows = method_costs(args.arch, args.sources, args.num_classes, args.crop, args.train_batch)
    print(f"per image at {args.crop}x{args.crop}, training batches of {args.train_batch}; MACs (= the paper's FLOPs)")
    print(f"{'method':<28} {'train GMACs':>12} {'train params':>13} {'infer GMACs':>12} {'infer params':>13}")
    for r in rows:
        print(f"{r['method']:<28} {r['train_gmacs']:>12.2f} {r['train_params'] / 1e6:>12.2f}M "
              f"{r['inference_gmacs']:>12.2f} {r['inference_params'] / 1e6:>12.2f}M")  # fmt: skip
    for name, (gflops, params) in PAPER.items():
        print(f"{'paper: ' + name:<28} {gflops:>12.2f} {params / 1e6:>12.2f}M")


def add_vision_parser(sub) -> None:
    vision = sub.add_parser(
        "vision", help="image classification and facial landmarks on torchvision ResNets (train, eval, export, cost)"
    )
    verbs = vision.add_subparsers(dest="vision_command", required=True)
    D = VISION_DEFAULTS
    p = verbs.add_parser("train", help="train a classifier or landmark model with a transfer method from a zoo")
    p.add_argument("--data", required=True, help="classification: imagefolder:DIR (DIR/train, DIR/val) or "
                   "cifar100:DIR; landmarks: 300w:DIR, wflw:DIR, cofw:DIR or synthetic:N")  # fmt: skip
    p.add_argument("--zoo", nargs="+", type=Path, default=[], help="checkpoint files (torchvision, MoCo, "
                   "Mask/Keypoint R-CNN, DeepLabV3)")  # fmt: skip
    p.add_argument("--method", default=D["method"],
                   help=f"zoo, lite, finetune, scratch, ensemble, distill or kflow "
                   f"(default: {D['method']})")  # fmt: skip
    p.add_argument("--method-option", action="append", default=[], help="KEY=VALUE option of the method "
                   "(distill: weight, decay_updates; kflow: dependency_weight, ramp_updates)")  # fmt: skip
    p.add_argument(
        "--arch", default=D["arch"], help=f"resnet18, resnet34, resnet50 or resnet101 (default: {D['arch']})"
    )
    p.add_argument(
        "--iters", type=int, default=D["iters"], help=f"training iterations (batches; default: {D['iters']})"
    )
    p.add_argument(
        "--batch-size", type=int, default=D["batch_size"], help=f"images per batch (default: {D['batch_size']})"
    )
    p.add_argument("--lr", type=float, default=D["lr"], help=f"initial learning rate (default: {D['lr']})")
    p.add_argument("--optimizer", default=D["optimizer"], help=f"sgd (Nesterov momentum {D['momentum']}) or adam "
                   f"(default: {D['optimizer']})")  # fmt: skip
    p.add_argument("--weight-decay", type=float, default=D["weight_decay"],
                   help=f"L2 penalty of the optimizer (default: {D['weight_decay']})")  # fmt: skip
    p.add_argument("--lr-steps", type=int, nargs="*", default=list(D["lr_steps"]),
                   help=f"iterations where lr drops x0.1 (default: {' '.join(map(str, D['lr_steps']))})")  # fmt: skip
    p.add_argument("--crop", type=int, default=D["crop"],
                   help=f"input size (landmarks: the face crop, a multiple of 32; default: {D['crop']})")  # fmt: skip
    p.add_argument("--resize", type=int, default=D["resize"],
                   help=f"classification: shorter side before cropping (default: {D['resize']})")  # fmt: skip
    p.add_argument("--ten-crop", action="store_true", help="evaluate on ten crops (as the paper) instead of the centre")
    p.add_argument(
        "--seed", type=int, default=D["seed"], help="seed of the initialisation, data order and augmentation"
    )
    p.add_argument("--workers", type=int, default=D["workers"], help="data-loading processes")
    p.add_argument("--checkpoint-freq", type=int, default=D["checkpoint_freq"],
                   help=f"checkpoint every N iterations (0: never; default: {D['checkpoint_freq']})")  # fmt: skip
    p.add_argument("--device", default=D["device"], help=DEVICE_HELP)
    p.add_argument("--out", type=Path, default=Path("runs/vision"), help="where the run directory is created")
    p.set_defaults(func=cmd_vision_train)
    p = verbs.add_parser("eval", help="top-1 accuracy (or landmark NME) of a finished run on its test split")
    p.add_argument("rundir", type=Path)
    p.add_argument("--ten-crop", action="store_true", help="average the predictions of ten crops per image")
    p.set_defaults(func=cmd_vision_eval)
    p = verbs.add_parser("cost", help="Table 1's cost columns: MACs and parameters of every method, or of runs")
    p.add_argument("rundirs", nargs="*", type=Path, help="finished runs (default: every method on random trunks)")
    p.add_argument("--arch", default=D["arch"], help="ResNet depth of every method")
    p.add_argument("--sources", type=int, default=5, help="zoo size m")
    p.add_argument("--num-classes", type=int, default=100, help="classes of the head")
    p.add_argument("--landmarks", type=int, default=0, help="K > 0: landmark models with K heatmaps instead")
    p.add_argument("--crop", type=int, default=D["crop"], help="input side in pixels")
    p.add_argument("--train-batch", type=int, default=D["batch_size"],
                   help="per-batch work (weight aggregation) is shared by it (default: vision train's)")  # fmt: skip
    p.set_defaults(func=cmd_vision_cost)
    p = verbs.add_parser("export", help="a run as one plain ResNet (+ head) state dict (all but zoo and ensemble)")
    p.add_argument("rundir", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(func=cmd_vision_export)
