"""Callbacks shared by every method: the per-game score log and the gate read-out."""

from __future__ import annotations

import csv
import time
import warnings
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from zoo_rl.core import readouts, set_acting_cache
from zoo_rl.rl.zoo.extractor import TransferExtractor

SCORE_FIELDS = ("agent_steps", "frames", "score", "episode_frames", "wall_s", "game")


class ScoreLogger(BaseCallback):
    """Appends every finished game (raw full-game score) to ``scores.csv``, and every
    ``report_every`` agent steps prints one progress line (a background job's log shows
    how far it is, since the progress bar only draws on a terminal).

    The score comes from ``info["episode"]``, which both env backends emit only at game
    over, before episodic life or reward clipping touch anything; the game from
    ``info["game"]`` where a multi-game env sets it, else ``game``.
    """

    def __init__(self, path: Path, frame_skip: int, game: str, wall_offset: float = 0.0, report_every: int = 0):
        super().__init__()
        self.path, self.frame_skip, self.game = path, frame_skip, game  # where and what each finished game is
        self.report_every = report_every
        self._file = None
        self._writer = None
        self._t0 = time.time() - wall_offset
        self._recent: list[float] = []
        self._report = (0, time.time())

    @property
    def wall_s(self) -> float:
        """Seconds since the run started, counting the time before a resume."""
        return round(time.time() - self._t0, 2)

    def _on_training_start(self) -> None:
        self._report = (self.num_timesteps, time.time())
        new = not self.path.exists()
        self._file = open(self.path, "a", newline="")  # noqa: SIM115 (open for the whole run)
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(SCORE_FIELDS)

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            episode = info.get("episode")
            if episode is not None:
                steps = self.num_timesteps
                game = info.get("game", self.game)
                self._writer.writerow([steps, steps * self.frame_skip, episode["r"], episode["l"], self.wall_s, game])
                self.logger.record_mean(f"score/{game}" if "game" in info else "score/game", episode["r"])
                self._recent = [*self._recent[-19:], float(episode["r"])]
        return True

    def _on_rollout_end(self) -> None:
        self._file.flush()
        steps, since = self._report
        if self.report_every and self.num_timesteps - steps >= self.report_every:
            rate = (self.num_timesteps - steps) / max(time.time() - since, 1e-9)
            n = len(self._recent)
            games = f"mean score of the last {n} games {np.mean(self._recent):.1f}" if n else "no game finished yet"
            where = f"step {self.num_timesteps}/{self.model._total_timesteps}"
            print(f"{self.path.parent.name}: {where}, {rate:.0f} steps/s, {games}", flush=True)
            self._report = (self.num_timesteps, time.time())

    def _on_training_end(self) -> None:
        self._file.close()


class ExtractorLogger(BaseCallback):
    """Writes what the policy's transfer extractors learn to TensorBoard at the end of every
    rollout (SB3 writes the recorded values at its next log dump): whatever their core modules
    read out (``zoo_rl.core.readouts``), e.g. ``gate_last/features_extractor/zoo.cnn.0/<member>``."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        for extractor_name, extractor in self.model.policy.named_children():
            if isinstance(extractor, TransferExtractor):
                for tag, value in readouts(extractor, extractor.member_names, extractor_name).items():
                    self.logger.record(tag, value)


class PeriodicEval(BaseCallback):
    """Every ``every_steps`` agent steps, plays full games and appends a row to ``evals.csv``."""

    def __init__(self, path: Path, every_steps: int, evaluate_fn, start_steps: int = 0):
        super().__init__()
        self.path = path
        self.every_steps = every_steps
        self.evaluate_fn = evaluate_fn
        self._next = (start_steps // every_steps + 1) * every_steps

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every_steps
            # SB3 calls this mid-rollout, in eval mode; lite gates act differently in training mode
            was_training = self.model.policy.training
            scores = self.evaluate_fn(self.model)
            new = not self.path.exists()
            with open(self.path, "a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(("agent_steps", "mean", "std", "episodes", "scores"))
                writer.writerow(
                    (
                        self.num_timesteps,
                        float(np.mean(scores)),
                        float(np.std(scores)),
                        len(scores),
                        " ".join(map(str, scores)),
                    )
                )
            self.logger.record("eval/mean_score", float(np.mean(scores)))
            self.model.policy.set_training_mode(was_training)
        return True


class ProgressBar(BaseCallback):
    """The run's progress bar over its whole budget: a resumed run starts at its checkpoint's
    step, and the last rollout, which may run past the budget, fills the bar without
    overshooting it (SB3's own bar counts from 0 on resume and past its total)."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total
        self._bar = None

    def _on_training_start(self) -> None:
        from tqdm import TqdmExperimentalWarning
        from tqdm.rich import tqdm

        with warnings.catch_warnings():  # tqdm marks its rich bar experimental; it is SB3's bar too
            warnings.simplefilter("ignore", TqdmExperimentalWarning)
            self._bar = tqdm(total=self.total, initial=min(self.num_timesteps, self.total))

    def _on_step(self) -> bool:
        self._bar.update(min(self.num_timesteps, self.total) - self._bar.n)
        return True

    def _on_training_end(self) -> None:
        self._bar.refresh()
        self._bar.close()


class ActingCache(BaseCallback):
    """During each rollout, lite (and frozen-gate) zoo layers mix their weights once and act as one
    plain layer; nothing writes the weights while the agent only acts (``zoo_rl.core.set_acting_cache``)."""

    def _on_rollout_start(self) -> None:
        set_acting_cache(self.model.policy, True)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        set_acting_cache(self.model.policy, False)
