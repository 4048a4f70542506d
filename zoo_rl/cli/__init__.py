"""zoo-rl: transfer from a zoo of pretrained Atari agents (Zoo-Tuning and baselines), one verb per job."""

from __future__ import annotations

import sys
import warnings

from zoo_rl.cli.parser import build_parser
from zoo_rl.errors import TrainingDiverged, ZooRlError, ZooWarning

__all__ = ["build_parser", "main"]

default_showwarning = warnings.showwarning


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """zoo-rl's own warnings as one line on the terminal; everyone else's as Python shows them."""
    if issubclass(category, ZooWarning):
        print(f"zoo-rl: warning: {message}", file=sys.stderr, flush=True)
    else:
        default_showwarning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = show_warning
    try:
        args.func(args)
    except TrainingDiverged as err:
        print(f"zoo-rl {args.command}: training diverged: {err}", file=sys.stderr)
        return 3
    except ZooRlError as err:  # anything else is a bug: its traceback is kept
        print(f"zoo-rl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0
