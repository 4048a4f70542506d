"""Benchmark the per-sample aggregation strategies of the Zoo-Tuning core.

Forward + backward at batch 256 on NatureCNN-sized layers (4x84x84 input; convs
32x8x8/4, 64x4x4/2, 64x3x3/1; linear 3136->512) with m sources, then whole models:
NatureCNN, full Zoo-Tuning with the chosen strategies, and lite.  Prints medians and
ratios to the plain layer / model, and writes JSON.

    .venv/bin/python scripts/bench_core.py --sources 5 --repeats 10 --json bench_core.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn

from zoo_rl.core import CONV_STRATEGIES, LINEAR_STRATEGIES, ZooConv2d, ZooLinear, zooify

LAYERS = {
    # name: (plain layer, input shape without batch)
    "conv1 4->32 8x8/4": (lambda: nn.Conv2d(4, 32, 8, 4), (4, 84, 84)),
    "conv2 32->64 4x4/2": (lambda: nn.Conv2d(32, 64, 4, 2), (32, 20, 20)),
    "conv3 64->64 3x3/1": (lambda: nn.Conv2d(64, 64, 3, 1), (64, 9, 9)),
    "linear 3136->512": (lambda: nn.Linear(3136, 512), (3136,)),
}


def nature_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(4, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(),
    )  # fmt: skip


def time_step(module: nn.Module, x: torch.Tensor, repeats: int, warmup: int = 2) -> float:
    """Median seconds of one forward + backward pass."""
    module.train()
    times = []
    for i in range(warmup + repeats):
        module.zero_grad(set_to_none=True)
        start = time.perf_counter()
        module(x).sum().backward()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def zoo_layer(plain: nn.Module, m: int, strategy: str) -> nn.Module:
    weights = [plain.weight.detach() + 0.01 * torch.randn_like(plain.weight) for _ in range(m)]
    biases = [plain.bias.detach() for _ in range(m)]
    if isinstance(plain, nn.Conv2d):
        return ZooConv2d.from_sources(plain, weights, biases, strategy=strategy)
    return ZooLinear.from_sources(plain, weights, biases, strategy=strategy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m, b = args.sources, args.batch
    results: dict = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "sources": m,
        "batch": b,
        "layers": {},
        "models": {},
    }

    print(f"per layer, forward+backward, batch {b}, m={m}, {torch.get_num_threads()} threads (median ms, x plain)")
    for name, (make, shape) in LAYERS.items():
        plain = make()
        x = torch.randn(b, *shape)
        base = time_step(plain, x, args.repeats)
        row = {"plain": base}
        strategies = CONV_STRATEGIES if isinstance(plain, nn.Conv2d) else LINEAR_STRATEGIES
        for strategy in strategies:
            row[strategy] = time_step(zoo_layer(plain, m, strategy), x, args.repeats)
        results["layers"][name] = row
        cells = "  ".join(f"{k} {v * 1e3:7.1f} ms ({v / base:4.2f}x)" for k, v in row.items())
        print(f"  {name:20s} {cells}")

    template = nature_cnn()
    sources = [{k: v + 0.01 * torch.randn_like(v) for k, v in template.state_dict().items()} for _ in range(m)]
    x = torch.rand(b, 4, 84, 84)
    models = {"NatureCNN": template}
    for conv in CONV_STRATEGIES:
        for lin in LINEAR_STRATEGIES:
            models[f"zoo conv={conv} linear={lin}"] = zooify(template, sources, conv_strategy=conv, linear_strategy=lin)
    models["lite"] = zooify(template, sources, lite=True)
    base = time_step(template, x, args.repeats)
    print("whole model, forward+backward (median ms, x NatureCNN)")
    for name, model in models.items():
        t = base if model is template else time_step(model, x, args.repeats)
        results["models"][name] = t
        print(f"  {name:34s} {t * 1e3:7.1f} ms  {t / base:4.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
