"""The ``edgemon`` command: thin sub-commands over the library.

:mod:`edgemon.cli.parser` declares the sub-commands and their options and
:mod:`edgemon.cli.handlers` runs them.  Exit status: 0 on success, 1 when a
run failed or a replay's states were not all acknowledged by the broker, 2
for invalid input (options, configuration, model or recording), 130 after
Ctrl-C, except for ``edgemon run``, which exits 0 after a clean stop on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from edgemon.errors import EdgemonError

__all__ = ["main"]

logger = logging.getLogger("edgemon")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``edgemon`` command line and return its exit status."""
    from edgemon.cli.handlers import EXIT_INTERRUPTED, EXIT_INVALID
    from edgemon.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    _configure_logging(
        args.log_level or os.environ.get("EDGEMON_LOG_LEVEL") or args.default_log_level
    )
    try:
        return args.handler(args)
    except EdgemonError as exc:
        logger.error("%s", exc)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _configure_logging(level: str) -> None:
    # Under systemd the journal adds its own timestamps.
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if os.environ.get("JOURNAL_STREAM")
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=level.upper(), format=fmt, datefmt="%H:%M:%S", stream=sys.stderr)
