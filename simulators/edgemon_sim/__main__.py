"""Run ``edgemon-sim`` as ``python -m edgemon_sim``."""

import sys

from edgemon_sim.cli import main

sys.exit(main())
