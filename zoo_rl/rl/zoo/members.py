"""Read the NatureCNN weights of a zoo member: an SB3 ``.zip`` from any algorithm, a local
file or an agent on the Hugging Face Hub (``hf://sb3/ppo-SpaceInvadersNoFrameskip-v4``).

A zoo file is untrusted input.  Only the zip's ``policy.pth`` is read, with
``torch.load(..., weights_only=True)``; the other entries (``data`` holds
cloudpickled objects) are never deserialised.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from zoo_rl.errors import ConfigError, ZooRlError

NATURE_CNN_KEYS: tuple[str, ...] = (
    "cnn.0.weight",
    "cnn.0.bias",
    "cnn.2.weight",
    "cnn.2.bias",
    "cnn.4.weight",
    "cnn.4.bias",
    "linear.0.weight",
    "linear.0.bias",
)
# Where each SB3 algorithm keeps the (online) feature extractor, most preferred first.
# Target networks (q_net_target, quantile_net_target) and the value branch of an
# unshared actor-critic are deliberately not used.
EXTRACTOR_PREFIXES: tuple[str, ...] = (
    "features_extractor.",  # PPO / A2C, shared extractor
    "pi_features_extractor.",  # PPO / A2C, separate actor and critic extractors
    "q_net.features_extractor.",  # DQN
    "quantile_net.features_extractor.",  # QR-DQN
    "actor.features_extractor.",  # SAC-style actor-critics with a NatureCNN
)


class ZooFileError(ZooRlError, ValueError):
    """A zoo member that cannot be used; the message names the file and the problem."""


# hf://<owner>/<repo>[@<revision>]: a Hub model repository holding <repo>.zip, the layout of the
# RL Zoo's agents (sb3/<algo>-<EnvId>).  Path() folds "//" into "/", so both spellings are read.
HUB_MEMBER = re.compile(r"^hf:/{1,2}(?P<repo>[\w.-]+/(?P<name>[\w.-]+))(?:@(?P<revision>[\w.-]+))?$")


def is_hub_member(member: str | Path) -> bool:
    return str(member).startswith("hf:/")


def hub_download(member: str | Path) -> tuple[Path, str]:
    """The local file of a Hub member (downloaded into, or read from, the Hugging Face cache)
    and the commit it came from."""
    match = HUB_MEMBER.match(str(member))
    if match is None:
        raise ZooFileError(f"{member}: expected hf://<owner>/<repo>[@<revision>], e.g. hf://sb3/ppo-PongNoFrameskip-v4")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as err:
        hint = "pip install 'zoo-rl[hub]'"
        raise ZooFileError(f"{member}: zoo members from the Hub need the hub extra ({hint})") from err
    filename = match["name"] + ".zip"
    try:
        path = Path(hf_hub_download(match["repo"], filename, revision=match["revision"]))
    except Exception as err:  # offline without a cached copy, no such repo or file, network errors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ZooFileError(f"{member}: cannot get {filename} from the Hub ({reason[:200]})") from err
    return path, path.parent.name  # the cache keeps each file under snapshots/<commit>/


def pin_member(member: str) -> str:
    """``member`` as it is recorded in a run's config: Hub members with the commit used."""
    if not is_hub_member(member):
        return member
    _, commit = hub_download(member)
    return f"hf://{HUB_MEMBER.match(str(member))['repo']}@{commit}"


def member_file(member: str | Path) -> Path:
    """The local file of a zoo member."""
    return hub_download(member)[0] if is_hub_member(member) else Path(member)


def member_name(member: str | Path) -> str:
    """A short name for logs and gate figures: the file stem, or the Hub repository's name."""
    match = HUB_MEMBER.match(str(member))
    return match["name"] if match else Path(member).stem


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_policy_state_dict(member: str | Path) -> dict[str, torch.Tensor]:
    """The ``policy.pth`` state dict of an SB3 zip (a path or a Hub member), loaded as weights only."""
    path = member_file(member)
    if not path.is_file():
        raise ZooFileError(f"{member}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            if "policy.pth" not in archive.namelist():
                raise ZooFileError(f"{member}: no policy.pth in the zip; not a Stable-Baselines3 model")
            raw = archive.read("policy.pth")
    except zipfile.BadZipFile as err:
        raise ZooFileError(f"{member}: not a zip file (expected a Stable-Baselines3 model .zip)") from err
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # truncated data or a pickle payload that weights_only refuses
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ZooFileError(f"{member}: policy.pth is not a plain weights file ({reason[:200]})") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ZooFileError(f"{member}: policy.pth does not hold a state dict of tensors")
    return dict(state)


def extractor_prefix(state: Mapping[str, torch.Tensor]) -> str | None:
    """The key prefix of the policy's NatureCNN, or None if it has none."""
    for prefix in EXTRACTOR_PREFIXES:
        if all(prefix + k in state for k in NATURE_CNN_KEYS):
            return prefix
    return None


class ZooShell(str):
    """A zoo member's spec whose file is not read.  A trained run's model is rebuilt with
    shells in place of its members (a layer of the right shape, weights left at their
    initialisation) and its own weights are loaded over them, so evaluating, exporting or
    resuming a run needs no zoo file.  A ``str``: SB3 saves it in ``policy_kwargs`` as the plain
    spec it stands for."""


def nature_cnn_weights(path: str | Path, in_channels: int | None = None) -> dict[str, torch.Tensor]:
    """The NatureCNN state dict (keys as in SB3's ``NatureCNN``) of a zoo member.

    ``in_channels``, when given, is the frame stack the caller's environment uses.
    """
    state = read_policy_state_dict(path)
    prefix = extractor_prefix(state)
    if prefix is None:
        found = sorted({re.sub(r"\.\d+\..*|\.(weight|bias)$", "", k) for k in state})[:6]
        raise ZooFileError(
            f"{path}: not a NatureCNN policy (no cnn.0..linear.0 feature extractor; found modules {found})"
        )
    weights = {k: state[prefix + k] for k in NATURE_CNN_KEYS}
    channels = weights["cnn.0.weight"].shape[1]
    if in_channels is not None and channels != in_channels:
        raise ZooFileError(
            f"{path}: the agent takes {channels} input channels (frame stack), the environment gives {in_channels}"
        )
    return weights


def action_head(state: Mapping[str, torch.Tensor]) -> tuple[str, torch.Tensor, torch.Tensor]:
    """``(algorithm family, weight, bias)`` of the policy's final layer on top of the features.

    DQN and QR-DQN keep it in a one-layer ``nn.Sequential`` (key ``...0.weight``).
    """
    heads = (
        ("actor_critic", "action_net."),
        ("q", "q_net.q_net.0."),
        ("q", "q_net.q_net."),
        ("quantile", "quantile_net.quantile_net.0."),
        ("quantile", "quantile_net.quantile_net."),
    )
    for family, prefix in heads:
        if prefix + "weight" in state:
            return family, state[prefix + "weight"], state[prefix + "bias"]
    raise ConfigError("no action head (action_net, q_net.q_net or quantile_net.quantile_net) in the policy")


def source_nature_cnns(observation_space, zoo, features_dim: int = 512, trainable: bool = True) -> torch.nn.ModuleList:
    """One SB3 NatureCNN per zoo member, initialised from its weights (frozen unless ``trainable``)."""
    from stable_baselines3.common.torch_layers import NatureCNN

    cnns = torch.nn.ModuleList()
    for path in zoo:
        cnn = NatureCNN(observation_space, features_dim=features_dim)
        if not isinstance(path, ZooShell):
            cnn.load_state_dict(nature_cnn_weights(path, in_channels=observation_space.shape[0]))
        cnn.requires_grad_(trainable)
        cnns.append(cnn)
    return cnns
