"""Store-and-forward queue of MQTT messages in SQLite.

Every state message is written here, in one transaction together with its
sensor's new ``seq``, before :meth:`MqttPublisher.submit_states` returns. The
states of a batch share that transaction (:meth:`Outbox.append_many`), so
they cost one ``fsync`` together instead of one each. The publisher thread
reads the messages in insertion order and deletes each one only after the
broker has acknowledged it, so a broker outage, a restart or a power cut
loses nothing that was stored:

* the database runs in WAL mode with ``synchronous=FULL``, so a committed
  message survives a power cut, and a transaction cut short by a crash is
  rolled back when the file is opened again. Deletions alone are committed
  without an ``fsync``: losing one to a power cut only sends its messages again;
* the queue is bounded in messages and in bytes (topic plus payload). When a
  new message would exceed a bound, the oldest messages are deleted in the same
  transaction and counted, so a subscriber can detect the loss as a gap in ``seq``;
* SQLite reuses the pages of deleted rows and ``journal_size_limit`` truncates
  the WAL file after each checkpoint, so the files stay bounded too.

One connection is shared by the producing thread and the publisher thread,
serialized by a lock: each operation is short and commits before it returns.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgemon.errors import PublishError

__all__ = ["AppendResult", "BatchResult", "Outbox", "Render", "StoredMessage"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sequences (
    stream TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
#: ``render(seq) -> (topic, payload)``: builds a message once its sequence number is known.
Render = Callable[[int], tuple[str, bytes]]

#: Bytes kept of the WAL file after a checkpoint.
_WAL_SIZE_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One queued message, as read back for publishing."""

    id: int
    topic: str
    payload: bytes
    qos: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The outcome of :meth:`Outbox.append`."""

    #: Sequence number given to the new message, from 1, consecutive per stream.
    seq: int
    #: Number of oldest messages deleted to keep the queue within its bounds.
    dropped: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of :meth:`Outbox.append_many`."""

    #: Sequence number given to each message, in the order of the batch.
    seqs: tuple[int, ...]
    #: Number of oldest messages deleted to keep the queue within its bounds,
    #: messages of the batch itself included.
    dropped: int


class Outbox:
    """A bounded, persistent FIFO of MQTT messages.

    Parameters
    ----------
    path : path-like
        SQLite database file; its folder is created if missing.
    max_messages : int
        Maximum number of queued messages.
    max_bytes : int
        Maximum total size of the queued topics and payloads, bytes.
    destination : str, optional
        The broker the messages go to, such as ``mqtt://broker.lan:1883``,
        recorded in the file. Opening a file that still contains messages
        for another broker logs a warning: those messages go to the new one.

    Raises
    ------
    PublishError
        If the file cannot be created or is not an outbox database.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_messages: int,
        max_bytes: int,
        destination: str | None = None,
    ) -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.path = Path(path)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            self._db.executescript(_SCHEMA)
            count, nbytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages"
            ).fetchone()
            previous = self._db.execute(
                "SELECT value FROM settings WHERE name = 'destination'"
            ).fetchone()
            if destination is not None:
                self._db.execute(
                    "INSERT INTO settings (name, value) VALUES ('destination', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (destination,),
                )
        except (OSError, sqlite3.Error) as exc:
            raise PublishError(
                f"cannot open the MQTT outbox {self.path}: {exc}; check that the state directory "
                "is writable, or move the damaged file away"
            ) from exc
        self._count = int(count)
        self._bytes = int(nbytes)
        #: Messages deleted by the overflow policy since this object was created.
        self.dropped = 0
        #: Destination recorded by the previous run, or None.
        self.previous_destination: str | None = None if previous is None else str(previous[0])
        if self._count:
            logger.info(
                "outbox %s contains %d messages from a previous run", self.path, self._count
            )
            if destination is not None and self.previous_destination not in (None, destination):
                logger.warning(
                    "outbox %s contains %d messages queued for %s; they are sent to %s now. "
                    "Give each broker its own state directory to keep them apart",
                    self.path,
                    self._count,
                    self.previous_destination,
                    destination,
                )

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Total size of the queued topics and payloads, bytes."""
        return self._bytes

    def append(self, stream: str, qos: int, render: Render) -> AppendResult:
        """Give the next ``seq`` of ``stream`` to a new message and store it.

        ``render(seq)`` returns the topic and the payload. The new sequence
        number and the message are committed in one transaction, and the
        oldest messages are dropped in it if the queue would exceed a bound.
        :meth:`append_many` stores several messages at the cost of one.

        Raises
        ------
        PublishError
            If the database cannot be written (disk full, read-only file).
        """
        result = self.append_many([(stream, render)], qos)
        return AppendResult(seq=result.seqs[0], dropped=result.dropped)

    def append_many(self, messages: Sequence[tuple[str, Render]], qos: int) -> BatchResult:
        """Store several messages, in order, in one transaction.

        Each message is a ``(stream, render)`` pair, as in :meth:`append`:
        it gets the next ``seq`` of its stream, and ``render(seq)`` returns
        its topic and payload. The new sequence numbers, the messages and the
        deletion of the oldest messages beyond the bounds are committed
        together, with one ``fsync``, so a crash stores either the whole
        batch or none of it. The outcome equals that of one :meth:`append`
        per message: when the batch alone exceeds a bound, its own first
        messages are dropped too (their ``seq`` is used up, so subscribers see
        the gap), and its last message is always kept.

        Parameters
        ----------
        messages : sequence of (str, callable)
            Stream name and ``render(seq) -> (topic, payload)`` of each message.
        qos : int
            MQTT QoS of every message.

        Returns
        -------
        BatchResult
            The ``seq`` of each message, in the order given, and the count of
            messages dropped.

        Raises
        ------
        PublishError
            If the database cannot be written (disk full, read-only file).
            Nothing of the batch is stored then, and no ``seq`` is used up;
            the same holds when a ``render`` raises.
        """
        if not messages:
            return BatchResult(seqs=(), dropped=0)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seqs, rows, last_seqs = self._render_batch(messages, qos)
                kept_from, dropped_old, dropped_old_bytes = self._make_room(rows)
                kept = rows[kept_from:]
                self._db.executemany(
                    "INSERT INTO messages (topic, payload, qos, size) VALUES (?, ?, ?, ?)", kept
                )
                self._db.executemany(
                    "INSERT INTO sequences (stream, last_seq) VALUES (?, ?) "
                    "ON CONFLICT(stream) DO UPDATE SET last_seq = excluded.last_seq",
                    last_seqs.items(),
                )
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise PublishError(
                        f"cannot store {len(messages)} message(s) in the MQTT outbox "
                        f"{self.path}: {exc}"
                    ) from exc
                raise
            dropped = dropped_old + kept_from
            self._count += len(kept) - dropped_old
            self._bytes += sum(row[3] for row in kept) - dropped_old_bytes
            self.dropped += dropped
        return BatchResult(seqs=tuple(seqs), dropped=dropped)

    def _render_batch(
        self, messages: Sequence[tuple[str, Render]], qos: int
    ) -> tuple[list[int], list[tuple[str, bytes, int, int]], dict[str, int]]:
        # Runs inside the write transaction, so the sequence numbers read here stay current.
        last_seqs: dict[str, int] = {}
        seqs = []
        rows = []
        for stream, render in messages:
            seq = last_seqs.get(stream)
            if seq is None:
                row = self._db.execute(
                    "SELECT last_seq FROM sequences WHERE stream = ?", (stream,)
                ).fetchone()
                seq = 0 if row is None else row[0]
            seq += 1
            last_seqs[stream] = seq
            topic, payload = render(seq)
            rows.append((topic, payload, qos, len(topic.encode()) + len(payload)))
            seqs.append(seq)
        return seqs, rows, last_seqs

    def _make_room(self, rows: Sequence[tuple[str, bytes, int, int]]) -> tuple[int, int, int]:
        """Delete the oldest stored messages so that ``rows`` fit; return what was dropped.

        Returns the index of the first row of the batch to store (rows before
        it are dropped before they are stored), and the count and bytes of
        the stored messages deleted. The last row is always stored, even if
        it alone exceeds ``max_bytes``.
        """
        count = self._count + len(rows)
        nbytes = self._bytes + sum(row[3] for row in rows)
        dropped = dropped_bytes = 0
        if count > self.max_messages or nbytes > self.max_bytes:
            last_id = None
            for row_id, size in self._db.execute("SELECT id, size FROM messages ORDER BY id"):
                within_count = count - dropped <= self.max_messages
                if within_count and nbytes - dropped_bytes <= self.max_bytes:
                    break
                dropped += 1
                dropped_bytes += size
                last_id = row_id
            if last_id is not None:
                self._db.execute("DELETE FROM messages WHERE id <= ?", (last_id,))
        count -= dropped
        nbytes -= dropped_bytes
        kept_from = 0
        while kept_from < len(rows) - 1 and (count > self.max_messages or nbytes > self.max_bytes):
            count -= 1
            nbytes -= rows[kept_from][3]
            kept_from += 1
        return kept_from, dropped, dropped_bytes

    def peek(self, after_id: int, limit: int) -> list[StoredMessage]:
        """Return up to ``limit`` messages with an id greater than ``after_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [StoredMessage(row[0], row[1], bytes(row[2]), row[3]) for row in rows]

    def delete(self, ids: Iterable[int]) -> int:
        """Delete the acknowledged messages ``ids`` in one transaction; return how many existed.

        An id that is no longer there (dropped by the overflow policy while it
        was in flight) is ignored. The deletion is committed without an
        ``fsync`` (``synchronous=NORMAL``): the next append's ``fsync`` of
        the WAL file makes it durable. A power cut before that can only bring
        acknowledged messages back, to be sent again as duplicates, which
        at-least-once delivery allows.
        """
        ids = list(ids)
        if not ids:
            return 0
        with self._lock:
            try:
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("BEGIN IMMEDIATE")
                placeholders = ",".join("?" * len(ids))
                count, nbytes = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages "
                    f"WHERE id IN ({placeholders})",
                    ids,
                ).fetchone()
                self._db.execute(f"DELETE FROM messages WHERE id IN ({placeholders})", ids)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise PublishError(
                    f"cannot delete acknowledged messages from {self.path}: {exc}"
                ) from exc
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
            self._count -= count
            self._bytes -= nbytes
        return int(count)

    def last_seq(self, stream: str) -> int:
        """Return the last ``seq`` given in ``stream``, or 0 if none was."""
        with self._lock:
            row = self._db.execute(
                "SELECT last_seq FROM sequences WHERE stream = ?", (stream,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Checkpoint the WAL into the database file and close it."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
