"""``python -m zoo_rl.cli``, the same as ``python -m zoo_rl`` and the ``zoo-rl`` script."""

import sys

from zoo_rl.cli import main

sys.exit(main())
