"""Packetise a recording and send it over UDP at its sample rate.

Pacing is drift-free: packet ``k`` is sent when the stream clock reaches the
end of its samples, ``start + (first_sample + n_samples) / (rate * speed)``,
computed from the start time, so a late wake-up delays one packet but never
the ones after it. Optional loss injection skips packets while still
advancing the sequence number and sample index, exactly as a lossy network
would, so the receiver's gap detection can be tested.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgemon.errors import ConfigError
from edgemon.sources.wire import encode_packet

__all__ = ["StreamStats", "Streamer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamStats:
    """Counts and timing of one :meth:`Streamer.run` call.

    Attributes
    ----------
    packets_sent, packets_dropped : int
        Packets sent, and packets skipped by loss injection.
    samples_streamed : int
        Samples per channel covered by all packets, sent or skipped.
    elapsed : float
        Seconds from the first to the last packet's deadline check.
    target_rate : float
        Samples per second the pacing aims at: sample rate times speed.
    """

    packets_sent: int
    packets_dropped: int
    samples_streamed: int
    elapsed: float
    target_rate: float

    @property
    def achieved_rate(self) -> float:
        """Samples per second actually streamed; 0.0 before any time has passed."""
        if self.elapsed <= 0:
            return 0.0
        return self.samples_streamed / self.elapsed


class Streamer:
    """Send samples as packets in the :mod:`edgemon.sources.wire` framing.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_channels)
        Values in g.
    sample_rate : float
        Hz, written into every packet and used for pacing.
    address : tuple
        Destination ``(host, port)`` for ``sendto``.
    packet_samples : int, default=256
        Samples per channel in each packet.
    speed : float, default=1.0
        1 streams in real time, 10 ten times faster.
    loop : bool, default=False
        Start again from the first sample at the end, with the sample
        index and sequence number continuing.
    sample_format : {"float32", "int16"}, default="float32"
    scale : float, default=1.0
        g per stored unit; for int16 the value of one count.
    drop_every : int, default=0
        Skip every ``drop_every``-th packet (loss injection); 0 sends all.
    max_seconds : float, optional
        Stop after this much stream time (samples / sample_rate).
    sock : socket.socket, optional
        The UDP socket to send from; created for ``address`` when absent.
    clock, sleep : callable, optional
        ``time.monotonic`` and ``time.sleep``, replaceable for tests.
    """

    def __init__(
        self,
        samples: np.ndarray,
        sample_rate: float,
        address: tuple,
        *,
        packet_samples: int = 256,
        speed: float = 1.0,
        loop: bool = False,
        sample_format: str = "float32",
        scale: float = 1.0,
        drop_every: int = 0,
        max_seconds: float | None = None,
        sock: socket.socket | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[0] == 0:
            raise ConfigError(
                f"samples must be a non-empty (n_samples, n_channels) array, "
                f"got shape {samples.shape}"
            )
        if not speed > 0:
            raise ConfigError(f"speed must be a positive number, got {speed}")
        if packet_samples < 1:
            raise ConfigError(f"packet_samples must be at least 1, got {packet_samples}")
        if drop_every < 0 or drop_every == 1:
            raise ConfigError(f"drop_every must be 0 (no loss) or at least 2, got {drop_every}")
        self.samples = samples
        self.sample_rate = float(sample_rate)
        self.address = address
        self.packet_samples = int(packet_samples)
        self.speed = float(speed)
        self.loop = loop
        self.sample_format = sample_format
        self.scale = float(scale)
        self.drop_every = int(drop_every)
        self.max_samples = None if max_seconds is None else round(max_seconds * self.sample_rate)
        self._sock = sock
        self._clock = clock
        self._sleep = sleep
        # Fail early on a packet size or format that the framing rejects.
        self._encode(0, 0, samples[: self.packet_samples])

    def run(
        self,
        stop: threading.Event | None = None,
        progress: Callable[[StreamStats], None] | None = None,
        progress_interval: float = 5.0,
    ) -> StreamStats:
        """Stream until the recording ends (or forever with ``loop``), ``max_seconds`` or ``stop``.

        ``progress`` is called about every ``progress_interval`` seconds.
        """
        sock = self._sock or _udp_socket(self.address)
        try:
            return self._run(sock, stop, progress, progress_interval)
        finally:
            if self._sock is None:
                sock.close()

    def _run(self, sock, stop, progress, progress_interval) -> StreamStats:
        n_total = self.samples.shape[0]
        rate = self.sample_rate * self.speed
        sent = dropped = 0
        first_sample = 0
        sequence = 0
        start = self._clock()
        next_report = start + progress_interval

        while stop is None or not stop.is_set():
            if self.max_samples is not None and first_sample >= self.max_samples:
                break
            offset = first_sample % n_total
            if offset == 0 and first_sample > 0 and not self.loop:
                break
            count = min(self.packet_samples, n_total - offset)
            if self.max_samples is not None:
                count = min(count, self.max_samples - first_sample)

            due = start + (first_sample + count) / rate
            wait = due - self._clock()
            if wait > 0:
                self._sleep(wait)

            if self.drop_every and sequence % self.drop_every == self.drop_every - 1:
                dropped += 1
            else:
                data = self._encode(sequence, first_sample, self.samples[offset : offset + count])
                sock.sendto(data, self.address)
                sent += 1
            first_sample += count
            sequence = (sequence + 1) % 2**32

            now = self._clock()
            if progress is not None and now >= next_report:
                progress(StreamStats(sent, dropped, first_sample, now - start, rate))
                next_report += progress_interval

        return StreamStats(sent, dropped, first_sample, self._clock() - start, rate)

    def _encode(self, sequence: int, first_sample: int, samples: np.ndarray) -> bytes:
        return encode_packet(
            samples,
            sequence=sequence,
            first_sample=first_sample,
            sample_rate=self.sample_rate,
            sample_format=self.sample_format,
            scale=self.scale,
        )


def _udp_socket(address: tuple) -> socket.socket:
    family = socket.AF_INET6 if ":" in str(address[0]) else socket.AF_INET
    return socket.socket(family, socket.SOCK_DGRAM)
