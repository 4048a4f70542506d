"""The RL path: Zoo-Tuning feature extractors for Stable-Baselines3 Atari agents."""

from .extractor import ZooNatureCNN
from .zoo_files import ZooFileError, nature_cnn_weights

__all__ = ["ZooFileError", "ZooNatureCNN", "nature_cnn_weights"]
