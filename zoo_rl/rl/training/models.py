"""The SB3 model and environment of a run config: the method decides the features extractor
and its initialisation; everything checkable is checked before a run directory is made."""

from __future__ import annotations

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv

from zoo_rl.devices import channels_last_on_cpu, check_device, fused
from zoo_rl.envs import make_atari_vec_env
from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import RunConfig, algorithm_class, resolve_schedules
from zoo_rl.rl.methods import Method, get_method
from zoo_rl.rl.zoo.members import ZooFileError, ZooShell, member_file, nature_cnn_weights, sha256


def build_model(config: RunConfig, env: VecEnv, rebuild: bool = False) -> BaseAlgorithm:
    """The SB3 model of ``config``, initialised by its method; with ``rebuild`` only its
    architecture, for a trained run's own weights to be loaded over it: no zoo file is read
    (the members are :class:`ZooShell` s), so a run directory is all that a rebuild needs."""
    method = get_method(config.method)
    hyperparams = resolve_schedules(config.hyperparams)
    zoo = [ZooShell(member) for member in config.zoo] if rebuild else None
    policy_kwargs = {**(hyperparams.pop("policy_kwargs", None) or {}), **method.policy_kwargs(config, zoo)}
    try:
        model = algorithm_class(config.algo)(
            "CnnPolicy", env, seed=config.seed, device=config.device, policy_kwargs=policy_kwargs, **hyperparams
        )
    except (AssertionError, TypeError, ValueError) as err:
        # Everything here comes from the user's hyperparameters and method options; SB3 checks
        # the former with asserts, the zoo layers the latter with ValueErrors.
        raise ConfigError(
            f"cannot build the {config.algo} model from its hyperparameters and method options: {err}"
        ) from err
    channels_last_on_cpu([m for m in model.policy.modules() if isinstance(m, BaseFeaturesExtractor)])
    model.policy.optimizer = fused(model.policy.optimizer)
    if not rebuild:
        method.initialize(model, config, build_model)
    return model


def validate(config: RunConfig, method: Method, read_files: bool = True) -> None:
    """Check everything that can be checked before a run directory is made (the zoo and source
    files too, unless ``read_files`` is false: a resumed run does not read them)."""
    if method.needs_zoo and not config.zoo:
        raise ConfigError(f"method {config.method!r} needs a zoo (--zoo FILE... or --zoo agents)")
    if method.needs_source and not config.source:
        raise ConfigError(f"method {config.method!r} needs --source FILE")
    check_device(config.device)
    if not read_files:
        return
    channels = config.settings.frame_stack
    paths = list(config.zoo) + ([config.source] if config.source else [])
    digests = {}
    for path in paths:
        nature_cnn_weights(path, in_channels=channels)
    for path in config.zoo:
        digest = sha256(member_file(path))
        if digest in digests:
            raise ZooFileError(
                f"{path}: the same agent as {digests[digest]} (sha256 {digest[:12]}) is twice in the zoo"
            )
        digests[digest] = path


def make_env(config: RunConfig) -> VecEnv:
    return make_atari_vec_env(
        config.game, config.n_envs, config.seed, config.settings, backend=config.backend, training=True
    )
