"""The daemon: a reader and a processing thread per sensor, one publisher, health and shutdown.

Threads and what they own::

    reader (per sensor)      source I/O only; a live source drops blocks when the queue is full
    processing (per sensor)  ring buffer, features, model, state logic; hands events to the sink
    publisher                the MQTT client and the outbox (see edgemon.publish)
    main                     signals, health reports, the systemd watchdog, shutdown

Shutdown is one ``threading.Event``, the stop request: setting it makes every
reader stop reading and queue an end marker, and every processing thread
finish the blocks already read.  The main thread waits until every processing
thread has finished, which also happens without a stop request once every
finite source (a replayed file) has reached its end.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from edgemon.errors import SourceError
from edgemon.pipeline import SensorPipeline
from edgemon.sources.base import Block, Source
from edgemon.states import StateEvent
from edgemon.systemd import Notifier

__all__ = ["Daemon", "SensorRunner", "StateSink", "health_counters"]

logger = logging.getLogger(__name__)

#: Seconds a blocking call waits before it checks the stop event again.
POLL_INTERVAL = 0.5
#: Seconds between warnings about dropped blocks of one sensor.
DROP_WARNING_INTERVAL = 10.0
#: Capped, jittered backoff before a failed live source is opened again, in seconds.
REOPEN_DELAY_MIN = 1.0
REOPEN_DELAY_MAX = 30.0
#: Seconds without samples from a live source before a warning, unless the sensor's
#: ``silence_timeout`` sets it; at least two window periods (see SensorRunner).
DEFAULT_SILENCE_TIMEOUT = 10.0
#: Seconds between repeated warnings while a live source stays silent.
SILENCE_WARNING_INTERVAL = 60.0

_END = object()


class StateSink(Protocol):
    """Where state events go: the MQTT publisher, or the console when there is no broker."""

    def start(self) -> None: ...

    def submit_states(self, events: Sequence[StateEvent]) -> list[int]: ...

    def submit_features(
        self, sensor: str, ts: datetime, columns: Sequence[str], values: Sequence[float]
    ) -> bool: ...

    def flush(self, timeout: float) -> bool: ...

    def stop(self, timeout: float) -> None: ...


class SensorRunner:
    """The reader and processing threads of one sensor.

    Parameters
    ----------
    source : Source
        An opened source; the reader thread closes it when it ends.
    pipeline : SensorPipeline
        Owned by the processing thread from :meth:`start` on.
    sink : StateSink
        Receives every event, in window order, in one call per batch of
        blocks that the processing thread found waiting.
    stop : threading.Event
        Shared stop request; the runner sets it itself when one of its threads fails.
    queue_blocks : int
        Bound of the queue between the two threads, in blocks.
    silence_timeout : float, optional
        Seconds without a block from a live source after which the reader
        logs a warning, then again every ``SILENCE_WARNING_INTERVAL`` seconds
        until samples resume. The default is ``DEFAULT_SILENCE_TIMEOUT`` or two
        window periods, whichever is longer, so that a slow sensor whose
        blocks come seldom is not reported as silent.
    """

    def __init__(
        self,
        source: Source,
        pipeline: SensorPipeline,
        sink: StateSink,
        stop: threading.Event,
        *,
        queue_blocks: int = 64,
        silence_timeout: float | None = None,
    ) -> None:
        self.name = pipeline.sensor
        self.source = source
        self.pipeline = pipeline
        self._sink = sink
        self._stop = stop
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_blocks)
        #: Called from the processing thread once it has processed its last block.
        self.on_finished: Callable[[SensorRunner], None] | None = None
        self._threads: list[threading.Thread] = []
        #: Blocks and samples a live source delivered while the processing queue was full.
        self.dropped_blocks = 0
        self.dropped_samples = 0
        self._dropped_since_warning = 0
        self._last_drop_warning = 0.0
        #: Monotonic time the processing thread last completed a loop; the watchdog checks it.
        self.heartbeat = time.monotonic()
        #: The exception that ended this sensor, if any.
        self.error: BaseException | None = None
        self.finished = threading.Event()
        if silence_timeout is None:
            window_period = pipeline.window / pipeline.sample_rate
            silence_timeout = max(DEFAULT_SILENCE_TIMEOUT, 2.0 * window_period)
        self.silence_timeout = silence_timeout
        #: Periods in which a live source delivered no block for ``silence_timeout`` seconds.
        self.silent_periods = 0
        #: True from the silence warning until the next block; read by the main thread.
        self.silent = False
        self._last_block = time.monotonic()
        self._next_silence_warning = 0.0

    def start(self) -> None:
        """Start the reader and processing threads."""
        for target, role in ((self._read_loop, "reader"), (self._process_loop, "processing")):
            thread = threading.Thread(target=target, name=f"{role}-{self.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for both threads; return True if they have ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(thread.is_alive() for thread in self._threads)

    def _read_loop(self) -> None:
        delay = REOPEN_DELAY_MIN
        self._last_block = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    # Blocks until a block arrives or the timeout passes, so the
                    # silence check below runs at least every POLL_INTERVAL.
                    block = self.source.read(POLL_INTERVAL)
                except EOFError:
                    logger.info("sensor %s: end of source %s", self.name, self.source.name)
                    break
                except SourceError as exc:
                    if not self.source.live:
                        raise
                    delay = self._reopen_after(exc, delay)
                    continue
                if block is None:
                    if self.source.live:
                        self._check_silence(time.monotonic())
                    continue
                delay = REOPEN_DELAY_MIN
                self._block_arrived(block.received)
                self._enqueue(block)
        except BaseException as exc:
            self.error = exc
            logger.exception("sensor %s: reader failed; stopping the daemon", self.name)
            self._stop.set()
        finally:
            self._close_source()
            self._put_end()

    def _check_silence(self, now: float) -> None:
        silent_for = now - self._last_block
        if silent_for < self.silence_timeout or now < self._next_silence_warning:
            return
        if not self.silent:
            self.silent = True
            self.silent_periods += 1
        logger.warning(
            "sensor %s: no samples from source %s for %.0f s; check that the sensor or "
            "its sender is running",
            self.name,
            self.source.name,
            silent_for,
        )
        self._next_silence_warning = now + SILENCE_WARNING_INTERVAL

    def _block_arrived(self, received: float) -> None:
        silent_for = received - self._last_block
        self._last_block = received
        if self.silent:
            # Clear the state before logging, so that the log line never precedes it.
            self.silent = False
            self._next_silence_warning = 0.0
            logger.info(
                "sensor %s: samples from source %s resumed after %.0f s without samples",
                self.name,
                self.source.name,
                silent_for,
            )

    def _reopen_after(self, exc: SourceError, delay: float) -> float:
        logger.error(
            "sensor %s: source %s failed: %s; reopening in %.1f s",
            self.name,
            self.source.name,
            exc,
            delay,
        )
        self._close_source()
        if self._stop.wait(delay * random.uniform(0.5, 1.0)):
            return delay
        try:
            self.source.open()
            logger.info("sensor %s: source %s reopened", self.name, self.source.name)
        except SourceError as reopen_exc:
            logger.error(
                "sensor %s: reopening source %s failed: %s", self.name, self.source.name, reopen_exc
            )
        return min(delay * 2.0, REOPEN_DELAY_MAX)

    def _close_source(self) -> None:
        try:
            self.source.close()
        except OSError as exc:
            logger.warning(
                "sensor %s: closing source %s failed: %s", self.name, self.source.name, exc
            )

    def _enqueue(self, block: Block) -> None:
        if not self.source.live:
            # A recording is finite: wait for room instead of dropping, so a replay loses nothing.
            while not self._stop.is_set():
                try:
                    self._queue.put(block, timeout=POLL_INTERVAL)
                    return
                except queue.Full:
                    continue
            return
        try:
            self._queue.put_nowait(block)
        except queue.Full:
            self.dropped_blocks += 1
            self.dropped_samples += len(block.samples)
            self._dropped_since_warning += len(block.samples)
            now = time.monotonic()
            if now - self._last_drop_warning >= DROP_WARNING_INTERVAL:
                logger.warning(
                    "sensor %s: processing is behind; dropped %d samples (%d in total) because "
                    "the block queue is full",
                    self.name,
                    self._dropped_since_warning,
                    self.dropped_samples,
                )
                self._dropped_since_warning = 0
                self._last_drop_warning = now

    def _put_end(self) -> None:
        # The processing thread drains the queue, so this put succeeds within a few polls.
        while True:
            try:
                self._queue.put(_END, timeout=POLL_INTERVAL)
                return
            except queue.Full:
                if not any(
                    t.is_alive() for t in self._threads if t is not threading.current_thread()
                ):
                    return

    def _process_loop(self) -> None:
        # The events of every block already waiting go to the sink in one
        # call, which the outbox commits with one fsync: when a slow disk
        # holds the thread up, more blocks wait, and the next commit takes
        # them all instead of falling further behind.
        try:
            ended = False
            while not ended:
                self.heartbeat = time.monotonic()
                try:
                    item = self._queue.get(timeout=POLL_INTERVAL)
                except queue.Empty:
                    continue
                events: list[StateEvent] = []
                try:
                    ended = self._process_waiting(item, events)
                finally:
                    # Also after a failure: the events of the blocks before it are kept.
                    if events:
                        self._sink.submit_states(events)
                        self._submit_features()
        except BaseException as exc:
            self.error = exc
            logger.exception("sensor %s: processing failed; stopping the daemon", self.name)
            self._stop.set()
        finally:
            self.heartbeat = time.monotonic()
            self.finished.set()
            if self.on_finished is not None:
                self.on_finished(self)

    def _submit_features(self) -> None:
        # The sink rate-limits feature messages, so offering the newest vector is cheap.
        latest = self.pipeline.take_latest_features()
        if latest is not None:
            ts, values = latest
            self._sink.submit_features(
                self.name, ts, self.pipeline.extractor.columns, values.tolist()
            )

    def _process_waiting(self, item: Any, events: list[StateEvent]) -> bool:
        """Process ``item`` and the blocks queued behind it, at most a queue's worth.

        Appends their events to ``events``; returns True at the end marker.
        """
        limit = max(1, self._queue.maxsize)
        for processed in range(1, limit + 1):
            if item is _END:
                return True
            events += self.pipeline.process(item)
            if processed == limit:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return False

    def health(self) -> dict[str, Any]:
        """Return this sensor's counters for the health message."""
        stats = self.pipeline.stats
        buffer = self.pipeline.buffer.stats
        source_counters = {key: int(value) for key, value in self.source.counters().items()}
        if self.source.live:
            source_counters["silent_periods"] = self.silent_periods
        return {
            "source": self.source.name,
            "samples": stats.samples,
            "windows": stats.windows,
            "windows_flagged": stats.windows_flagged,
            "flags": dict(stats.flags),
            "states": dict(stats.states),
            "samples_dropped": self.dropped_samples + buffer.overrun_samples,
            "samples_lost": buffer.gap_samples,
            "gaps": buffer.gaps,
            "queue_blocks": self._queue.qsize(),
            "source_counters": source_counters,
        }


class Daemon:
    """Run sensors until stopped, reporting health and feeding the systemd watchdog.

    The caller starts the sink before :meth:`run` and flushes and stops it
    afterwards, so that one sink can outlive several runs (a replay of
    several files).

    Parameters
    ----------
    device : str
        Device name, used in logs.
    runners : sequence of SensorRunner
        One per sensor, all sharing ``stop``.
    stop : threading.Event
        The stop request shared with the runners: set by a signal handler or
        by a failed thread.
    health_interval : float, default=60
        Seconds between health checks: the daemon logs a warning when
        samples were dropped since the last one.
    """

    def __init__(
        self,
        device: str,
        runners: Sequence[SensorRunner],
        stop: threading.Event,
        *,
        health_interval: float = 60.0,
    ) -> None:
        self.device = device
        self.runners = list(runners)
        self.stop = stop
        self.health_interval = health_interval
        if not self.runners:
            raise ValueError("a daemon needs at least one sensor runner")
        self._notifier = Notifier()
        self._done = threading.Event()
        self._reported_drops = 0
        for runner in self.runners:
            runner.on_finished = self._runner_finished

    def _runner_finished(self, _runner: SensorRunner) -> None:
        if all(r.finished.is_set() for r in self.runners):
            self._done.set()

    def run(self) -> int:
        """Run until stopped; return the process exit status (0, or 1 after a failure)."""
        for runner in self.runners:
            runner.start()
        logger.info("device %s: monitoring %d sensor(s)", self.device, len(self.runners))
        self._notifier.ready(f"monitoring {len(self.runners)} sensor(s)")

        self._loop()

        self._notifier.stopping()
        logger.info("device %s: stopping; processing the samples already read", self.device)
        for runner in self.runners:
            runner.join()
        self._check_drops()
        failed = [runner.name for runner in self.runners if runner.error is not None]
        if failed:
            logger.error(
                "device %s: stopped after a failure in sensor(s) %s", self.device, ", ".join(failed)
            )
            return 1
        logger.info("device %s: stopped", self.device)
        return 0

    def _loop(self) -> None:
        watchdog = self._notifier.watchdog_interval
        tick = min(self.health_interval, watchdog / 2) if watchdog else self.health_interval
        next_health = time.monotonic() + self.health_interval
        while not self._done.wait(tick):
            now = time.monotonic()
            # Ping only while every processing thread is alive and looping.
            if watchdog and all(now - r.heartbeat < watchdog for r in self.runners):
                self._notifier.watchdog()
            if now >= next_health:
                self._check_drops()
                self._notifier.status(self._status_line())
                next_health = now + self.health_interval

    def _check_drops(self) -> None:
        dropped = self.health_counters()["samples_dropped"]
        if dropped > self._reported_drops:
            logger.warning(
                "device %s: %d samples dropped since the last report (%d in total); see the "
                "health message per sensor",
                self.device,
                dropped - self._reported_drops,
                dropped,
            )
            self._reported_drops = dropped

    def _status_line(self) -> str:
        counters = self.health_counters()
        line = (
            f"{counters['windows_processed']} windows, {counters['windows_flagged']} flagged, "
            f"{counters['samples_dropped']} samples dropped"
        )
        silent = [runner.name for runner in self.runners if runner.silent]
        if silent:
            line += f"; no samples from sensor(s) {', '.join(silent)}"
        return line

    def health_counters(self) -> dict[str, Any]:
        """Return the totals over all sensors that the health message reports."""
        return health_counters(self.runners)


def health_counters(runners: Sequence[SensorRunner]) -> dict[str, Any]:
    """Return the totals over ``runners``, and each sensor's counters, for the health message."""
    sensors = {runner.name: runner.health() for runner in runners}
    by_flag: Counter[str] = Counter()
    for counters in sensors.values():
        by_flag.update(counters["flags"])
    return {
        "windows_processed": sum(s["windows"] for s in sensors.values()),
        "windows_flagged": sum(s["windows_flagged"] for s in sensors.values()),
        "samples_dropped": sum(s["samples_dropped"] for s in sensors.values()),
        "samples_lost": sum(s["samples_lost"] for s in sensors.values()),
        "windows_by_flag": dict(by_flag),
        "sensors": sensors,
    }
