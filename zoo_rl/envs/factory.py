"""Build the Atari vector environments used for training and evaluation.

Both backends give the same observations, ``(n_envs, 4, 84, 84)`` uint8 frames with
the standard DQN preprocessing, and the same bookkeeping: ``info["episode"]["r"]`` is
the raw score of a full game, whatever the training-only settings (episodic life,
reward clipping) do to what the agent sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecTransposeImage

from zoo_rl.errors import ConfigError

from .ale_vector import AleVecEnv
from .games import game_list, gym_id, rom_id
from .multi_game import MultiGameVecEnv

BACKENDS: tuple[str, ...] = ("ale_vector", "sb3")


@dataclass(frozen=True)
class AtariSettings:
    """Preprocessing settings; the defaults follow Mnih et al. (2015) and Machado et al. (2018).

    ``sticky_actions`` defaults to 0.25, the ALE v5 default recommended by Machado et al.:
    a deterministic emulator otherwise lets an agent memorise action sequences, which
    inflates scores and says little about transfer.
    """

    frame_stack: int = 4
    frame_skip: int = 4
    screen_size: int = 84
    noop_max: int = 30
    sticky_actions: float = 0.25
    max_episode_frames: int = 108_000
    terminal_on_life_loss: bool = True  # training only
    clip_reward: bool = True  # training only
    # ALE's full set of 18 actions instead of the game's own: one action head serves every game
    # of a multi-game agent (each game maps the actions it lacks onto ones it has).
    full_action_space: bool = False

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            expected = {"int": (int,), "float": (int, float), "bool": (bool,)}[f.type]
            if not isinstance(value, expected) or (isinstance(value, bool) and f.type != "bool"):
                raise ConfigError(f"env setting {f.name} must be of type {f.type}, got {value!r:.40}")
        for name in ("frame_stack", "frame_skip", "screen_size", "max_episode_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"env setting {name} must be >= 1, got {getattr(self, name)}")
        if self.noop_max < 0:
            raise ConfigError(f"env setting noop_max must be >= 0, got {self.noop_max}")
        if not 0.0 <= self.sticky_actions < 1.0:
            raise ConfigError(f"env setting sticky_actions must be in [0, 1), got {self.sticky_actions}")

    def to_dict(self) -> dict:
        return asdict(self)


def make_atari_vec_env(
    game: str,
    n_envs: int,
    seed: int,
    settings: AtariSettings | None = None,
    *,
    backend: str = "ale_vector",
    training: bool = True,
    render: bool = False,
) -> VecEnv:
    """An SB3 VecEnv of ``n_envs`` copies of ``game``, channels first.

    ``game`` may join several games with ``+`` (``Pong+Breakout``): the envs are shared out
    equally, in that order, and every step's ``info["game"]`` says which game an env plays.
    ``training=False`` turns off episodic life and reward clipping, as evaluation needs.
    ``render=True`` makes ``env.get_images()`` return each game's RGB screen (sb3 backend
    only: the C++ vector environment keeps no screens).
    """
    settings = settings or AtariSettings()
    if n_envs < 1:
        raise ConfigError(f"n_envs must be >= 1, got {n_envs}")
    games = game_list(game)
    if len(games) > 1:
        if n_envs % len(games):
            raise ConfigError(f"n_envs must be a multiple of the {len(games)} games of {game!r}, got {n_envs}")
        if not settings.full_action_space:
            raise ConfigError(f"{game!r}: several games need full_action_space (one action set for all)")
        share = n_envs // len(games)
        parts = [make_atari_vec_env(g, share, seed + i * share, settings, backend=backend, training=training,
                                    render=render) for i, g in enumerate(games)]  # fmt: skip
        return MultiGameVecEnv(games, parts)
    life_loss = settings.terminal_on_life_loss and training
    clip = settings.clip_reward and training
    if render and backend != "sb3":
        raise ConfigError(f"rendering needs the sb3 env backend, got {backend!r}")
    if backend == "ale_vector":
        env: VecEnv = AleVecEnv(
            rom_id(game),
            n_envs,
            frame_stack=settings.frame_stack,
            frame_skip=settings.frame_skip,
            screen_size=settings.screen_size,
            noop_max=settings.noop_max,
            sticky_actions=settings.sticky_actions,
            terminal_on_life_loss=life_loss,
            clip_reward=clip,
            max_episode_frames=settings.max_episode_frames,
            full_action_space=settings.full_action_space,
        )
    elif backend == "sb3":
        env = _sb3_env(game, n_envs, settings, life_loss, clip, render)
    else:
        raise ConfigError(f"unknown env backend {backend!r}; expected one of {BACKENDS}")
    env.seed(seed)
    return env


def _sb3_env(game: str, n_envs: int, settings: AtariSettings, life_loss: bool, clip: bool, render: bool) -> VecEnv:
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env

    gym.register_envs(ale_py)
    env = make_atari_env(
        gym_id(game),
        n_envs=n_envs,
        env_kwargs=dict(
            frameskip=1,  # AtariWrapper skips frames itself, with max-pooling
            repeat_action_probability=settings.sticky_actions,
            max_num_frames_per_episode=settings.max_episode_frames,
            full_action_space=settings.full_action_space,
            **({"render_mode": "rgb_array"} if render else {}),
        ),
        wrapper_kwargs=dict(
            noop_max=settings.noop_max,
            frame_skip=settings.frame_skip,
            screen_size=settings.screen_size,
            terminal_on_life_loss=life_loss,
            clip_reward=clip,
        ),
    )
    return VecTransposeImage(VecFrameStack(env, n_stack=settings.frame_stack))
