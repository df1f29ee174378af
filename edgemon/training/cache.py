"""A cache of evaluation results, one entry per grid cell, in an SQLite file.

The key of a cell is the sha256 of a JSON document that names everything its
result depends on.  That is the sha256 of every data file, how the files
were read (channels, sample rate), the windows, the feature extractor's
settings, the split, the columns, and the cell's algorithm, k, PCA and seed.
A run with one more setting therefore computes only the new cells.  Bump
:data:`RESULTS_VERSION` when the way a cell is computed or scored changes,
so that old entries are no longer found.

Only the process that owns the cache writes to it; joblib workers return
their results to it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgemon.errors import ConfigError

__all__ = ["RESULTS_VERSION", "ResultCache", "cell_key", "default_cache_dir"]

logger = logging.getLogger(__name__)

#: Version of the cell computation and its scores; part of every key.
RESULTS_VERSION = 1


def default_cache_dir() -> Path:
    """Return ``$XDG_CACHE_HOME/edgemon/evaluate``, by default ``~/.cache/edgemon/evaluate``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgemon" / "evaluate"


def cell_key(context: Mapping[str, Any], cell: Mapping[str, Any]) -> str:
    """Return the hex sha256 that identifies one cell's result.

    Parameters
    ----------
    context : mapping
        What the cell's data depends on (files, reading, features, split,
        columns); plain JSON types.
    cell : mapping
        ``algorithm``, ``k``, ``pca`` and ``seed``.
    """
    document = {"version": RESULTS_VERSION, "context": context, "cell": cell}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultCache:
    """Cell results stored by key in ``<folder>/results.sqlite``.

    Parameters
    ----------
    folder : path-like
        Created if missing.

    Raises
    ------
    ConfigError
        If the folder cannot be created or the file is not a usable SQLite
        database.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "results.sqlite"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path)
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, result TEXT NOT NULL)"
            )
            self._connection.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot use the evaluation cache {self.path}: {exc}; "
                "choose another folder with --cache or run with --no-cache"
            ) from exc
        logger.info("evaluation cache: %s", self.path)

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Return the stored results of those keys that are in the cache."""
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {}
        # SQLite limits the number of parameters of one statement.
        for offset in range(0, len(keys), 500):
            chunk = keys[offset : offset + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._connection.execute(
                f"SELECT key, result FROM cells WHERE key IN ({marks})", chunk
            )
            found.update((key, json.loads(result)) for key, result in rows)
        return found

    def put_many(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Store results by key, replacing older entries, in one transaction."""
        with self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO cells (key, result) VALUES (?, ?)",
                ((key, json.dumps(result, allow_nan=True)) for key, result in items),
            )

    def __len__(self) -> int:
        return self._connection.execute("SELECT COUNT(*) FROM cells").fetchone()[0]

    def close(self) -> None:
        """Close the database file."""
        self._connection.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
