"""zoo-rl benchmark suite: what Zoo-Tuning costs next to a NatureCNN, measured side by side.

Sections (all in one process, medians over repeats, ratios to the NatureCNN / scratch):
  extractor  feature-extractor training step (forward + backward, batch 256, 4x84x84):
             NatureCNN, zoo, lite, ensemble with m sources
  inference  acting without gradients at batch 1 and 8: NatureCNN, zoo, lite unmerged,
             lite merged into one NatureCNN
  ppo        end-to-end SB3 PPO env steps/s (RL Zoo Atari hyperparameters, a fixed number of
             updates) for scratch, zoo and lite on the same game
  envs       environment throughput of the two backends (random actions)
  cost       MACs per observation and parameters per method (torch's flop counter)
  layers     per-layer aggregation strategies (grouped / mix)
  scaling    extractor training step time and peak memory of lite and zoo for 1..10 sources
             (the default recipe adds the fresh member: m = 2..11), one process per point,
             a line fitted to each, and a figure (--figure)
  peer       whole processes, one after another, on the same game and budget: RL Zoo's PPO
             trainer (the rl-zoo extra) and ``zoo-rl transfer`` scratch, lite and zoo with the
             shipped zoo and its start (not in the default sections: minutes per run)
  side-by-side  whole ``zoo-rl transfer`` scratch processes, one alone and two at once, each
             with torch's threads and with one thread: the agent steps/s the machine delivers
             in all, which decides how a study of many runs should share its cores

The zoo is m random NatureCNN agents written as SB3-style zips, so nothing is downloaded; the
peer section uses the shipped zoo (``agents/``), whose start a user's run would make.

    .venv/bin/python scripts/benchmark.py --json bench.json            # CPU, ~3 minutes
    .venv/bin/python scripts/benchmark.py --device cuda --json gpu.json # on a CUDA machine
    .venv/bin/python scripts/benchmark.py --peer --json peer.json       # vs RL Zoo, ~12 minutes
    .venv/bin/python scripts/benchmark.py --side-by-side --json sbs.json  # threads per run, ~10 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from zoo_rl.core import CONV_STRATEGIES, LINEAR_STRATEGIES, ZooConv2d, ZooLinear, ZooOptions
from zoo_rl.devices import channels_last_on_cpu
from zoo_rl.rl.methods.ensemble import EnsembleNatureCNN
from zoo_rl.rl.zoo.extractor import ZooNatureCNN
from zoo_rl.rl.zoo.recipes import recipe

SPACE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
SECTIONS = ("extractor", "inference", "ppo", "envs", "cost", "layers", "scaling")
DEFAULT_SECTIONS = SECTIONS[:-1]  # scaling takes minutes: asked for by name
ROOT = Path(__file__).resolve().parent.parent
PEER_METHODS = ("scratch", "lite", "zoo")


def write_zoo(folder: Path, m: int) -> list[str]:
    """m random NatureCNN agents as SB3-style zips (policy.pth only: all a zoo member needs)."""
    paths = []
    for i in range(m):
        torch.manual_seed(i)
        weights = {f"features_extractor.{k}": v for k, v in NatureCNN(SPACE).state_dict().items()}
        torch.save(weights, folder / "policy.pth")
        path = folder / f"agent{i}.zip"
        with zipfile.ZipFile(path, "w") as z:
            z.write(folder / "policy.pth", "policy.pth")
        paths.append(str(path))
    return paths


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each function, timed in turns (one call of each per round), so that
    a machine whose speed drifts during the run (shared cores) biases no variant."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeats + 2):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if round_ >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def training_step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    module.train()

    def step() -> None:
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()

    return step


def acting(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    module.eval()

    def act() -> None:
        with torch.no_grad():
            module(x)

    return act


def extractors(zoo: list[str], device: torch.device) -> dict[str, nn.Module]:
    """The extractors as a run builds them (channels-last frames on the CPU)."""
    nets = {
        "NatureCNN": NatureCNN(SPACE).to(device),
        "zoo": ZooNatureCNN(SPACE, zoo).to(device),
        "lite": ZooNatureCNN(SPACE, zoo, lite=True).to(device),
        "ensemble": EnsembleNatureCNN(SPACE, zoo).to(device),
        "zoo mix convs": ZooNatureCNN(SPACE, zoo, recipe=recipe(conv_strategy="mix")).to(device),
    }
    channels_last_on_cpu(list(nets.values()))
    return nets


def bench_extractor(zoo, device, repeats, batch) -> dict[str, float]:
    x = torch.rand(batch, *SPACE.shape, device=device)
    steps = {name: training_step(net, x) for name, net in extractors(zoo, device).items()}
    return interleaved_medians(steps, repeats, device)


def bench_inference(zoo, device, repeats) -> dict[str, dict[str, float]]:
    nets = extractors(zoo, device)
    lite = nets["lite"]
    lite.train()
    with torch.no_grad():  # give the EMA something to hold, as after training
        lite(torch.rand(64, *SPACE.shape, device=device))
    models = {"NatureCNN": nets["NatureCNN"], "zoo": nets["zoo"], "lite unmerged": lite,
              "lite merged": lite.as_nature_cnn().to(device)}  # fmt: skip
    result = {}
    for batch in (1, 8):
        x = torch.rand(batch, *SPACE.shape, device=device)
        acts = {name: acting(net, x) for name, net in models.items()}
        result[f"batch {batch}"] = interleaved_medians(acts, repeats * 20, device)
    return result


def bench_ppo(zoo, device, updates) -> dict[str, float]:
    """Env steps/s of whole PPO updates (rollout + training), the methods taking turns."""
    from zoo_rl.rl.config import RunConfig, algo_defaults
    from zoo_rl.rl.training.callbacks import ActingCache
    from zoo_rl.rl.training.models import build_model, make_env

    n_envs, hyperparams = algo_defaults("ppo")
    per_update = n_envs * hyperparams["n_steps"]
    models, envs = {}, []
    try:
        for method in ("scratch", "zoo", "lite"):
            members = zoo if method != "scratch" else []
            config = RunConfig("transfer", "DemonAttack", "ppo", per_update, 0, method=method, n_envs=n_envs,
                               zoo=members, hyperparams=hyperparams, device=str(device))  # fmt: skip
            envs.append(make_env(config))
            models[method] = build_model(config, envs[-1])
            models[method].learn(per_update)  # warm-up update, not timed
        update = {k: (lambda m=m: m.learn(per_update, reset_num_timesteps=False)) for k, m in models.items()}
        # what zoo-rl's training loop adds for lite: its merged weights kept for a whole rollout
        update["lite, acting cache"] = lambda: models["lite"].learn(per_update, reset_num_timesteps=False,
                                                                    callback=ActingCache())  # fmt: skip
        seconds = interleaved_medians(update, updates, device)
    finally:
        for env in envs:
            env.close()
    return {name: per_update / s for name, s in seconds.items()}


def bench_envs(steps: int) -> dict[str, float]:
    """Env steps/s of 8 games on each backend (random actions), the backends taking turns."""
    from zoo_rl.envs import make_atari_vec_env

    envs = {backend: make_atari_vec_env("DemonAttack", 8, 0, backend=backend) for backend in ("ale_vector", "sb3")}
    rng = np.random.default_rng(0)
    n_actions = int(envs["sb3"].action_space.n)

    def run(env) -> None:
        for _ in range(25):
            env.step(rng.integers(n_actions, size=8))

    try:
        for env in envs.values():
            env.reset()
        turns = {k: (lambda e=e: run(e)) for k, e in envs.items()}
        seconds = interleaved_medians(turns, steps // 200, torch.device("cpu"))
    finally:
        for env in envs.values():
            env.close()
    return {name: 200 / s for name, s in seconds.items()}


def bench_cost(zoo) -> dict[str, dict[str, float]]:
    from zoo_rl.rl.config import RunConfig, algo_defaults
    from zoo_rl.rl.training.models import build_model, make_env
    from zoo_rl.rl.training.policy_cost import policy_cost

    _, hyperparams = algo_defaults("ppo")
    hyperparams["batch_size"] = hyperparams["n_steps"]  # one game here: the buffer holds n_steps
    result = {}
    for method in ("scratch", "zoo", "lite", "ensemble", "distill", "kflow"):
        config = RunConfig("transfer", "DemonAttack", "ppo", 1, 0, method=method, n_envs=1,
                           zoo=zoo if method != "scratch" else [], hyperparams=hyperparams)  # fmt: skip
        env = make_env(config)
        try:
            result[method] = policy_cost(build_model(config, env))
        finally:
            env.close()
    return result


def bench_layers(m, device, repeats, batch) -> dict[str, dict[str, float]]:
    layers = {
        "conv1 4->32 8x8/4": (nn.Conv2d(4, 32, 8, 4), (4, 84, 84)),
        "conv2 32->64 4x4/2": (nn.Conv2d(32, 64, 4, 2), (32, 20, 20)),
        "conv3 64->64 3x3/1": (nn.Conv2d(64, 64, 3, 1), (64, 9, 9)),
        "linear 3136->512": (nn.Linear(3136, 512), (3136,)),
    }
    result = {}
    for name, (plain, shape) in layers.items():
        x = torch.randn(batch, *shape, device=device)
        steps = {"plain": training_step(plain.to(device), x)}
        weights = [plain.weight.detach() + 0.01 * torch.randn_like(plain.weight) for _ in range(m)]
        biases = [plain.bias.detach()] * m
        conv = isinstance(plain, nn.Conv2d)

        def options(strategy: str, conv: bool = conv) -> ZooOptions:
            return ZooOptions(conv_strategy=strategy) if conv else ZooOptions(linear_strategy=strategy)

        for strategy in CONV_STRATEGIES if conv else LINEAR_STRATEGIES:
            layer = (ZooConv2d if conv else ZooLinear).from_sources(plain, weights, biases, options(strategy))
            steps[strategy] = training_step(layer.to(device), x)
        result[name] = interleaved_medians(steps, repeats, device)
    return result


def scaling_point(kind: str, sources: int, device: torch.device, repeats: int, batch: int) -> dict[str, float]:
    """One point of the scaling section, in this (fresh) process: the median training step of
    ``kind`` ("NatureCNN", "lite" or "zoo") and the peak memory of the process (CPU: resident set;
    CUDA: torch's allocator)."""
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        zoo = write_zoo(Path(tmp), sources)
        net = NatureCNN(SPACE) if kind == "NatureCNN" else ZooNatureCNN(SPACE, zoo, lite=kind == "lite")
    net = net.to(device)
    channels_last_on_cpu([net])
    x = torch.rand(batch, *SPACE.shape, device=device)
    seconds = interleaved_medians({kind: training_step(net, x)}, repeats, device)[kind]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    members = sources + int(recipe().scratch_member) if kind != "NatureCNN" else 1
    return {"seconds": seconds, "peak_mb": peak, "members": members}


def bench_scaling(device: torch.device, repeats: int, batch: int, max_sources: int) -> dict[str, list[dict]]:
    """:func:`scaling_point` for every kind and zoo size, each in its own process (a process's
    peak memory only grows), and a least-squares line per kind: seconds and MB against m."""
    import subprocess
    import sys

    points: dict[str, list[dict]] = {}
    for kind in ("NatureCNN", "lite", "zoo"):
        for sources in [1] if kind == "NatureCNN" else range(1, max_sources + 1):
            command = [sys.executable, __file__, "--scaling-point", kind, str(sources), "--device", str(device),
                       "--repeats", str(repeats), "--batch", str(batch)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            point = json.loads(done.stdout.strip().splitlines()[-1])
            points.setdefault(kind, []).append({"sources": sources, **point})
            print(f"  {kind:9s} m={point['members']:2d} {point['seconds'] * 1e3:8.1f} ms {point['peak_mb']:7.0f} MB",
                  flush=True)  # fmt: skip
    fits = {}
    for kind in ("lite", "zoo"):
        m = np.array([p["members"] for p in points[kind]], dtype=float)
        fits[kind] = {key: dict(zip(("slope", "intercept"), np.polyfit(m, [p[key] for p in points[kind]], 1).tolist(),
                                    strict=True))
                      for key in ("seconds", "peak_mb")}  # fmt: skip
        # the largest departure from the line, relative to the largest value: what a faster-than-linear term would show
        for key in ("seconds", "peak_mb"):
            values = np.array([p[key] for p in points[kind]])
            line = fits[kind][key]["slope"] * m + fits[kind][key]["intercept"]
            fits[kind][key]["max_residual"] = float(np.max(np.abs(values - line)) / values.max())
    return {"points": points, "fits": fits}


def plot_scaling(result: dict, output: Path, machine: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = result["points"]["NatureCNN"][0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label, scale in ((axes[0], "seconds", "training step (x NatureCNN)", base["seconds"]),
                                  (axes[1], "peak_mb", "peak memory of the process (MB)", 1.0)):  # fmt: skip
        for kind, color in (("lite", "tab:blue"), ("zoo", "tab:orange")):
            m = np.array([p["members"] for p in result["points"][kind]])
            values = np.array([p[key] for p in result["points"][kind]]) / scale
            fit = result["fits"][kind][key]
            ax.plot(m, values, "o", color=color, label=kind)
            line = f"{kind}: {fit['slope'] / scale:.3g} per member + {fit['intercept'] / scale:.3g}"
            ax.plot(m, (fit["slope"] * m + fit["intercept"]) / scale, "-", color=color, alpha=0.6, label=line)
        ax.axhline(base[key] / scale, color="gray", ls="--", lw=1, label="NatureCNN")
        ax.set_xlabel("members m (sources + the fresh member)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Zoo-Tuning extractor, batch 256, default recipe ({machine})", fontsize=9)
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)


def transfer_command(game: str, method: str, steps: int, seed: int, device: str, out: Path) -> list[str]:
    """The ``zoo-rl transfer`` process a benchmark times: no sticky actions (RL Zoo's
    ``NoFrameskip-v4``), one evaluation game, the shipped zoo for the methods that need one."""
    import sys

    zoo = [] if method == "scratch" else ["--zoo", str(ROOT / "agents")]
    return [sys.executable, "-m", "zoo_rl", "transfer", game, "--method", method, "--steps", str(steps),
            "--seed", str(seed), "--env-preset", "no_sticky", "--eval-episodes", "1", "--device", device,
            "--out", str(out), *zoo]  # fmt: skip


def bench_peer(game: str, steps: int, device: str, workdir: Path) -> dict[str, dict[str, float]]:
    """Whole-process agent steps/s of RL Zoo's PPO and of zoo-rl's scratch, lite and zoo, one
    after another on ``game`` without sticky actions (RL Zoo's ``NoFrameskip-v4``), and zoo-rl's
    training-only rate from each run's cost.json.  zoo-rl's processes include what a user's run
    includes (the start, checkpoints, the final evaluation, here of one game)."""
    import subprocess
    import sys

    runs = {"RL Zoo": [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", f"{game}NoFrameskip-v4",
                       "-n", str(steps), "--seed", "0", "--eval-freq", "-1", "--device", device,
                       "-f", str(workdir / "rl_zoo_runs")]}  # fmt: skip
    for method in PEER_METHODS:
        runs[method] = transfer_command(game, method, steps, 0, device, workdir / "zoo_rl_runs")
    result = {}
    for name, command in runs.items():
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
        result[name] = {"seconds": seconds, "whole_process": steps / seconds}
        costs = list((workdir / "zoo_rl_runs").glob(f"{game}_{name}_ppo_s0/cost.json"))
        if costs:
            cost = json.loads(costs[0].read_text())
            result[name].update(training_only=cost["train_env_steps_per_s"], train_mmacs=cost["train_gmacs"] * 1e3)
        print(f"  {name:8s} {seconds:6.1f} s", flush=True)
    return result


def bench_side_by_side(game: str, steps: int, device: str, workdir: Path) -> dict[str, dict[str, float]]:
    """Total agent steps/s of one and of two ``zoo-rl transfer`` scratch processes at once (seeds
    0 and 1), each with torch's default threads and with ``OMP_NUM_THREADS=1``."""
    import subprocess

    result = {}
    for runs, threads in ((1, None), (1, 1), (2, None), (2, 1)):
        name = f"{runs} run{'s' if runs > 1 else ''}, {'1 thread' if threads else 'torch threads'} each"
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        out = workdir / name.replace(" ", "_").replace(",", "")
        start = time.perf_counter()
        procs = [subprocess.Popen(transfer_command(game, "scratch", steps, seed, device, out), env=env, cwd=workdir,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for seed in range(runs)]  # fmt: skip
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed:\n{err[-2000:]}")
        seconds = time.perf_counter() - start
        training = [json.loads(c.read_text())["train_env_steps_per_s"] for c in out.glob("*/cost.json")]
        result[name] = {"seconds": seconds, "total_steps_per_s": runs * steps / seconds,
                        "training_only_per_run": training}  # fmt: skip
        print(f"  {name:28s} {seconds:6.1f} s  {runs * steps / seconds:6.0f} agent steps/s in all", flush=True)
    return result


def report_peer(result: dict[str, dict[str, float]]) -> None:
    anchor = result["RL Zoo"]["whole_process"]
    floor = result["scratch"].get("train_mmacs")
    print(f"{'run':8s} {'steps/s':>8s} {'x RL Zoo':>9s} {'training only':>14s} {'train MMACs':>12s} {'x scratch':>10s}")
    for name, r in result.items():
        training = f"{r['training_only']:14.0f}" if "training_only" in r else f"{'-':>14s}"
        macs = f"{r['train_mmacs']:12.1f} {r['train_mmacs'] / floor:10.2f}" if "train_mmacs" in r else ""
        print(f"{name:8s} {r['whole_process']:8.1f} {r['whole_process'] / anchor:9.2f} {training} {macs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=5, help="zoo size m (default 5)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--ppo-updates", type=int, default=3, help="timed PPO updates of 8x128 steps per method")
    parser.add_argument("--env-steps", type=int, default=16000, help="per backend")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(DEFAULT_SECTIONS))
    parser.add_argument("--max-sources", type=int, default=10, help="scaling: zoo sizes 1..N sources")
    parser.add_argument("--figure", type=Path, default=None, help="scaling: where to draw its figure (PNG)")
    parser.add_argument("--scaling-point", nargs=2, metavar=("KIND", "SOURCES"), help=argparse.SUPPRESS)
    parser.add_argument("--peer", action="store_true", help="only the peer section: RL Zoo's PPO against zoo-rl")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="only the side-by-side section: one and two scratch processes, with and without threads",
    )
    parser.add_argument("--peer-game", default="DemonAttack")
    parser.add_argument("--peer-steps", type=int, default=30_720, help="agent steps per peer (and side-by-side) run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.scaling_point:  # a worker of the scaling section: one point, as JSON on the last line
        kind, sources = args.scaling_point
        print(json.dumps(scaling_point(kind, int(sources), device, args.repeats, args.batch)))
        return
    out: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        },
        "sources": args.sources,
        "batch": args.batch,
    }
    print(json.dumps(out["machine"]))
    if args.peer:
        out["peer"] = {"game": args.peer_game, "steps": args.peer_steps}
        print(f"whole processes on {args.peer_game}, {args.peer_steps} agent steps each, one after another")
        with tempfile.TemporaryDirectory() as tmp:
            out["peer"]["runs"] = bench_peer(args.peer_game, args.peer_steps, args.device, Path(tmp))
        report_peer(out["peer"]["runs"])
        args.only = []
    if args.side_by_side:
        out["side_by_side"] = {"game": args.peer_game, "steps": args.peer_steps, "cores": os.cpu_count()}
        print(f"zoo-rl scratch on {args.peer_game}, {args.peer_steps} agent steps per run, {os.cpu_count()} cores")
        with tempfile.TemporaryDirectory() as tmp:
            settings = bench_side_by_side(args.peer_game, args.peer_steps, args.device, Path(tmp))
        out["side_by_side"]["settings"] = settings
        args.only = []
    with tempfile.TemporaryDirectory() as tmp:
        zoo = write_zoo(Path(tmp), args.sources)
        if "extractor" in args.only:
            t = bench_extractor(zoo, device, args.repeats, args.batch)
            out["extractor_train_step_s"] = t
            report(f"extractor training step, batch {args.batch}, m={args.sources}", t, "NatureCNN", "ms")
        if "inference" in args.only:
            out["inference_s"] = bench_inference(zoo, device, args.repeats)
            for batch, t in out["inference_s"].items():
                report(f"inference, {batch}", t, "NatureCNN", "ms")
        if "ppo" in args.only:
            out["ppo_env_steps_per_s"] = bench_ppo(zoo, device, args.ppo_updates)
            report("end-to-end PPO on DemonAttack (env steps/s)", out["ppo_env_steps_per_s"], "scratch", "/s")
        if "envs" in args.only:
            out["env_steps_per_s"] = bench_envs(args.env_steps)
            report("environment backends, 8 games (env steps/s)", out["env_steps_per_s"], "sb3", "/s")
        if "cost" in args.only:
            out["cost"] = bench_cost(zoo)
            print("cost per observation (MACs from torch's flop counter)")
            for method, c in out["cost"].items():
                train = f"train {c['train_gmacs'] * 1e3:6.1f} MMACs {c['train_params'] / 1e6:5.2f}M params"
                infer = f"inference {c['inference_gmacs'] * 1e3:6.1f} MMACs {c['inference_params'] / 1e6:5.2f}M params"
                print(f"  {method:9s} {train} | {infer}")
        if "scaling" in args.only:
            print(f"scaling: extractor training step and peak memory, batch {args.batch}")
            out["scaling"] = bench_scaling(device, args.repeats, args.batch, args.max_sources)
            for kind, fit in out["scaling"]["fits"].items():
                t, mem = fit["seconds"], fit["peak_mb"]
                print(f"  {kind}: {t['slope'] * 1e3:.1f} ms per member + {t['intercept'] * 1e3:.1f} ms "
                      f"(largest departure {t['max_residual']:.1%}); {mem['slope']:.0f} MB per member + "
                      f"{mem['intercept']:.0f} MB (largest departure {mem['max_residual']:.1%})")  # fmt: skip
            if args.figure:
                plot_scaling(
                    out["scaling"], args.figure, f"{out['machine']['device']}, {out['machine']['threads']} threads"
                )
        if "layers" in args.only:
            out["layers_train_step_s"] = bench_layers(args.sources, device, args.repeats, args.batch)
            for name, t in out["layers_train_step_s"].items():
                report(f"layer {name}", t, "plain", "ms")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def report(title: str, values: dict[str, float], base: str, unit: str) -> None:
    print(title)
    for name, v in values.items():
        shown = f"{v * 1e3:8.2f} ms" if unit == "ms" else f"{v:8.0f} {unit}"
        print(f"  {name:14s} {shown}  {v / values[base]:5.2f}x {base}")


if __name__ == "__main__":
    main()
