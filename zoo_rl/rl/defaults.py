"""The defaults of a run's settings, written once: ``RunConfig``'s fields and the command line's
flags read them.  No torch here: the command line is parsed before anything heavy loads."""

from __future__ import annotations

RUN_DEFAULTS: dict[str, object] = dict(backend="ale_vector", eval_episodes=10, eval_freq=0, checkpoint_freq=25_000,
                                       device="auto")  # fmt: skip
