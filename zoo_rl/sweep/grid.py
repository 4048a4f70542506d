"""A sweep config (YAML) expanded into single ``zoo-rl transfer`` runs.

    out: runs/study               # where every run directory goes
    common: {algo: ppo, steps: 200000, zoo: agents, eval_episodes: 10}
    targets: [DemonAttack, Atlantis]
    runs:                         # one entry per method; any common key can be overridden
      - {method: scratch, seeds: [0, 1, 2]}
      - {method: finetune, source: all, seeds: [0]}
      - {method: zoo, seeds: [0, 1, 2], options: {recipe: paper}}
    resources: {cpus: 1, gpus: 0} # per run, for the Ray backend

Each run is a command line, so a run of a sweep is exactly a run a user could type,
and its directory is the one that command would make.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zoo_rl.errors import ConfigError
from zoo_rl.io_utils import read_yaml
from zoo_rl.rl.training.command_line import add_training_arguments, transfer_configs, transfer_parser


def _run_options() -> tuple[str, ...]:
    """Keys of `common` (and of each entry): the training flags of `zoo-rl transfer` (``--eval-freq``
    is ``eval_freq``) and the zoo, read from the parser itself so that a new flag is a sweep key
    too; the grid sets the seed and the output directory, the entry the method and its options."""
    parser = argparse.ArgumentParser(add_help=False)
    add_training_arguments(parser)
    return (*(a.dest for a in parser._actions if a.dest not in ("seed", "out")), "zoo")


RUN_OPTIONS = _run_options()
ENTRY_KEYS = frozenset({"method", "seeds", "source", "options", "targets", *RUN_OPTIONS})
TOP_KEYS = frozenset({"out", "common", "targets", "runs", "resources"})


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: its command line (after ``zoo-rl``) and its run directory."""

    argv: tuple[str, ...]
    run_dir: Path

    @property
    def name(self) -> str:
        return self.run_dir.name


@dataclass(frozen=True)
class Sweep:
    out: Path
    runs: tuple[RunSpec, ...]
    cpus: float
    gpus: float


def load_sweep(path: Path, device: str | None = None, out: Path | None = None) -> Sweep:
    """Read and expand a sweep config; every problem is a :class:`ConfigError` naming the key.

    ``device`` overrides the config's: where a run trains is not part of its identity, so one
    study can be advanced on a GPU machine and finished on a CPU (or the other way round).
    ``out`` overrides the config's output directory, e.g. to repeat a study whose results
    are already in the config's.
    """
    data = read_yaml(path)
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; expected some of {sorted(TOP_KEYS)}")
    for key in ("out", "runs"):
        if key not in data:
            raise ConfigError(f"{path}: missing key {key!r}")
    out = Path(data["out"] if out is None else out)
    if not out.is_absolute():
        out = (Path.cwd() / out).resolve()
    common = _mapping(data.get("common") or {}, f"{path}: common")
    _check_keys(common, RUN_OPTIONS, f"{path}: common")
    if not isinstance(data["runs"], list) or not data["runs"]:
        raise ConfigError(f"{path}: runs must be a non-empty list of entries")
    resources = _mapping(data.get("resources") or {}, f"{path}: resources")
    _check_keys(resources, ("cpus", "gpus"), f"{path}: resources")
    specs: dict[Path, RunSpec] = {}
    for i, entry in enumerate(data["runs"]):
        where = f"{path}: runs[{i}]"
        entry = _mapping(entry, where)
        _check_keys(entry, ENTRY_KEYS, where)
        if "method" not in entry:
            raise ConfigError(f"{where}: missing key 'method'")
        targets = entry.get("targets", data.get("targets"))
        if not isinstance(targets, list) or not targets:
            raise ConfigError(f"{where}: no targets (a list at the top level or in the entry)")
        seeds = entry.get("seeds", [0])
        if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ConfigError(f"{where}: seeds must be a list of integers, got {seeds!r}")
        options = {**common, **{k: v for k, v in entry.items() if k in RUN_OPTIONS}}
        if device is not None:
            options["device"] = device
        options = _absolute_paths(options)
        for target in targets:
            for seed in seeds:
                for source in _sources(entry.get("source"), options, where):
                    spec = _spec(str(target), entry, seed, source, options, out, where)
                    if specs.setdefault(spec.run_dir, spec).argv != spec.argv:  # the same run twice is fine
                        raise ConfigError(f"{where}: run {spec.name} is already in the grid with other options; "
                                          "one run directory holds one run (use another out or seed)")  # fmt: skip
    cpus, gpus = (_number(resources.get(key, default), f"{path}: resources: {key}") for key, default in
                  (("cpus", 1), ("gpus", 0)))  # fmt: skip
    return Sweep(out, tuple(specs.values()), cpus, gpus)


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: expected a number >= 0, got {value!r}")
    return float(value)


def _spec(target: str, entry: dict, seed: int, source, options: dict, out: Path, where: str) -> RunSpec:
    argv = ["transfer", target, "--method", str(entry["method"]), "--seed", str(seed), "--out", str(out)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    if source is not None:
        argv += ["--source", str(source)]
    for key, value in _mapping(entry.get("options") or {}, f"{where}: options").items():
        argv += ["--method-option", f"{key}={_yaml_text(value)}"]
    try:
        args = transfer_parser().parse_args(argv)
        (config,) = transfer_configs(args)
    except SystemExit as err:  # argparse already printed what it did not understand
        raise ConfigError(f"{where}: not a valid run ({' '.join(argv)})") from err
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from err
    return RunSpec(tuple(argv), out / config.run_name())


def _yaml_text(value: Any) -> str:
    """``value`` as ``--method-option`` reads it back (YAML): ``null``, not Python's ``None``."""
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf")).rstrip("\n")
    return text.removesuffix("\n...")


def _sources(source, options: dict, where: str) -> list:
    """``source: all`` becomes one run per zoo member, as ``--source all`` does."""
    if source != "all":
        sources = source if isinstance(source, list) else [source]
        return [None if s is None else str(Path(s).resolve()) for s in sources]
    from zoo_rl.rl.zoo.manifest import zoo_paths

    zoo = options.get("zoo")
    if not zoo:
        raise ConfigError(f"{where}: source: all needs a zoo (in common or in the entry)")
    return zoo_paths(zoo if isinstance(zoo, list) else [zoo])


def _absolute_paths(options: dict) -> dict:
    """Files as absolute paths: a run may start in another directory (a Ray worker's)."""
    resolved = dict(options)
    for key in ("zoo", "hyperparams"):
        if key in resolved:
            value = resolved[key]
            absolute = [str(Path(v).resolve()) for v in (value if isinstance(value, list) else [value])]
            resolved[key] = absolute if isinstance(value, list) else absolute[0]
    return resolved


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(mapping: dict, allowed, where: str) -> None:
    unknown = sorted(set(mapping) - set(allowed), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")
