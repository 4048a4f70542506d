"""``python -m zoo_rl`` runs the CLI, for environments where the ``zoo-rl`` script is not on PATH."""

import sys

from zoo_rl.cli import main

sys.exit(main())
