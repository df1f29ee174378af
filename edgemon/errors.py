"""Exception hierarchy shared by every edgemon module.

Catch :class:`EdgemonError` to handle anything edgemon raises on purpose.
Each subclass names the stage whose input was wrong, and every message says
which value was rejected and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EdgemonError",
    "ModelError",
    "PublishError",
    "RecordingError",
    "SourceError",
]


class EdgemonError(Exception):
    """Base class of all errors raised by edgemon."""


class ConfigError(EdgemonError, ValueError):
    """An invalid setting: a config file entry, a command-line option or an argument.

    Subclasses :class:`ValueError` so that numeric entry points such as
    ``edgemon.features.extract`` raise what numpy and scikit-learn users expect.
    """


class RecordingError(EdgemonError):
    """A recorded file or data set that cannot be read or does not match its description."""


class SourceError(EdgemonError):
    """A sensor source that failed to open, or failed in a way it cannot recover from."""


class ModelError(EdgemonError):
    """A model file that is invalid, does not match its source, or failed its export check."""


class PublishError(EdgemonError):
    """A broker connection that cannot succeed as configured (TLS, credentials, URL)."""
