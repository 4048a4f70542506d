"""zoo-rl: transfer learning from a zoo of pretrained models (Zoo-Tuning, ICML 2021)."""

__version__ = "0.1.0"
