"""Run the ``edgemon`` command line: ``python -m edgemon.cli``."""

import sys

from edgemon.cli import main

sys.exit(main())
