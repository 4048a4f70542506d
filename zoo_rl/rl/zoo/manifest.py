"""The zoo manifest (``agents/manifest.json``): one entry per shipped source agent."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from zoo_rl.errors import ZooRlError, ZooWarning
from zoo_rl.io_utils import atomic_write_text
from zoo_rl.rl.zoo.members import is_hub_member, pin_member

MANIFEST_NAME = "manifest.json"
ENTRY_KEYS = ("file", "game", "algorithm", "agent_steps", "seed", "eval", "sha256")
EVAL_KEYS = ("mean", "std", "episodes")


class ManifestError(ZooRlError, ValueError):
    """A manifest that is not what zoo-rl expects; the message names the file and key."""


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """The entries of a manifest, checked; file paths stay relative to the manifest."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise ManifestError(f"{path}: no such manifest") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from err
    except OSError as err:
        raise ManifestError(f"{path}: cannot be read ({err.strerror})") from err
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list):
        raise ManifestError(f"{path}: expected an object with a list under 'agents'")
    for i, entry in enumerate(data["agents"]):
        if not isinstance(entry, dict):
            raise ManifestError(f"{path}: agents[{i}] is not an object")
        missing = [k for k in ENTRY_KEYS if k not in entry]
        if missing:
            raise ManifestError(f"{path}: agents[{i}] lacks key(s) {missing}")
        for key in ("file", "game", "algorithm", "sha256"):
            if not isinstance(entry[key], str) or not entry[key]:
                raise ManifestError(f"{path}: agents[{i}].{key} must be a non-empty string")
        if not isinstance(entry["eval"], dict) or any(k not in entry["eval"] for k in EVAL_KEYS):
            raise ManifestError(f"{path}: agents[{i}].eval must hold {list(EVAL_KEYS)}")
        steps = entry["agent_steps"]
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ManifestError(f"{path}: agents[{i}].agent_steps must be a non-negative integer")
    return data["agents"]


def upsert_entry(manifest: Path, entry: dict[str, Any]) -> None:
    """Add ``entry`` to the manifest, replacing an entry for the same file.

    Several pretraining jobs may finish at once: a lock file serialises the
    read-modify-write, and the write itself is atomic.
    """
    import fcntl

    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.with_name(f".{manifest.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read_manifest(manifest) if manifest.exists() else []
        entries = [e for e in entries if e["file"] != entry["file"]] + [entry]
        entries.sort(key=lambda e: e["file"])
        atomic_write_text(manifest, json.dumps({"agents": entries}, indent=2) + "\n")


def zoo_paths(spec: list[str]) -> list[str]:
    """Expand ``--zoo`` arguments: a directory or manifest stands for every agent it lists (a
    directory without a manifest for every ``.zip`` in it, with a :class:`ZooWarning`, since
    their games are then unknown); a Hub member (``hf://owner/repo``) is fetched and pinned to
    the commit it came from."""

    paths: list[str] = []
    for item in spec:
        if is_hub_member(item):
            paths.append(pin_member(str(item)))
            continue
        p = Path(item)
        if p.is_dir() and not (p / MANIFEST_NAME).exists():
            zips = sorted(p.glob("*.zip"))
            if not zips:
                raise ManifestError(f"{p}: no {MANIFEST_NAME} and no .zip agents in the folder")
            warnings.warn(f"{p}: no {MANIFEST_NAME}, so the games of its {len(zips)} agents are unknown and the "
                          "start chooses its reference by LogME instead of by domain shift; `zoo-rl pretrain GAME "
                          f"--zoo-dir {p}` writes entries, or add {MANIFEST_NAME} by hand (see agents/)",
                          ZooWarning, stacklevel=2)  # fmt: skip
            paths.extend(map(str, zips))
            continue
        manifest = p / MANIFEST_NAME if p.is_dir() else p if p.suffix == ".json" else None
        if manifest is None:
            paths.append(str(p))
            continue
        listed = [manifest.parent / e["file"] for e in read_manifest(manifest)]
        unlisted = sorted(set(manifest.parent.glob("*.zip")) - set(listed))
        if unlisted:
            names = ", ".join(z.name for z in unlisted)
            warnings.warn(f"{manifest}: not listed, so not in the zoo: {names}", ZooWarning, stacklevel=2)
        paths.extend(map(str, listed))
    return paths


def member_game(member: str | Path) -> str | None:
    """The game a zoo member was trained on, from the manifest beside its file; None when
    there is none (a bare zip, a Hub member) or it does not list the file."""
    path = Path(member)
    manifest = path.parent / MANIFEST_NAME
    if not manifest.is_file():
        return None
    entry = next((e for e in read_manifest(manifest) if e["file"] == path.name), None)
    return None if entry is None else entry["game"]
