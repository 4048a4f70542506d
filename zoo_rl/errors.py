"""The errors a user can cause and fix (a bad config, file, option or checkpoint), on the floor
that every layer may import.

The CLI prints a :class:`ZooRlError` as one line naming the file or key; any other exception is
a bug and keeps its traceback.  The concrete classes also derive from the built-in error a
caller would expect (``ValueError``, ``RuntimeError``)."""

from __future__ import annotations


class ZooRlError(Exception):
    """Base of every error zoo-rl reports to a user as one line."""


class ConfigError(ZooRlError, ValueError):
    """A config file, option or value that is not what zoo-rl expects; the message names it."""


class CheckpointError(ZooRlError, ValueError):
    """A checkpoint or model file that cannot be read or used; the message names it."""


class TrainingDiverged(ZooRlError, RuntimeError):
    """The loss or a parameter became NaN or infinite; the message says what and when."""


class ZooWarning(UserWarning):
    """Something a user should know that does not stop the job (the CLI prints it as one line)."""
