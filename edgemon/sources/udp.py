"""The ``udp`` source: sample packets from a networked sensor or ``edgemon-sim``.

Packets use the framing of :mod:`edgemon.sources.wire`. The source checks each
packet against its configuration and its sender's sequence, so the daemon
receives an ordered stream with lost samples visible as jumps in the sample index:

- lost packets (the sequence number jumps ahead) are counted, and their
  samples show up as a jump in ``first_index``, which the ring buffer
  reports as a gap;
- duplicate and late (reordered) packets are counted and dropped, because
  the ring buffer accepts samples only in order;
- packets whose sample rate or channel count differ from the configured ones
  are counted and dropped, never raised, so that one misconfigured sender
  cannot stop the daemon; every one of them is logged (rate-limited);
- malformed datagrams are counted and logged (rate-limited) and dropped;
- the source locks onto the first sender's address. Packets from another
  address are counted and dropped, unless the locked sender has been silent
  for ``sender_timeout`` seconds, in which case the new sender takes over;
- a sender that restarts (its sequence goes back) is followed, and the
  samples missed meanwhile are estimated from the arrival times.
"""

from __future__ import annotations

import collections
import errno
import logging
import math
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag
from edgemon.sources.base import Block, Source
from edgemon.sources.options import Option, channel_names, in_range, positive
from edgemon.sources.ratelimit import RateLimitedLog
from edgemon.sources.wire import Packet, PacketError, decode_packet

__all__ = ["UdpSource", "address_family"]

logger = logging.getLogger(__name__)

#: A packet up to this many sequence numbers behind the expected one is a late
#: or duplicate packet; further back, the sender has restarted.
REORDER_WINDOW = 64
#: This many old packets in a row mean the sender restarted, even within the window.
RESTART_AFTER_OLD = 8

#: The fastest a sender is expected to stream, in multiples of real time.
#: A loss that the sender could not have produced at this speed since its
#: previous packet (plus one second) starts a new stream instead of being
#: counted as lost packets and samples.
MAX_SPEED = 1000.0

#: First-sample indices from this value on are not taken over from the
#: sender: the stream starts again at 0, so that the index stays far from
#: the int64 limit (2**63) of the ring buffer and the sample times.
MAX_FIRST_SAMPLE = 2**53

#: A first-sample index more than this many times the samples of the lost
#: packets (at the largest packet size seen) ahead of the expected one starts a
#: new stream instead of counting the difference as lost samples.  A sender
#: that drops samples itself seldom loses more than a few packets' worth.
INDEX_JUMP_FACTOR = 16
_SEQUENCE_MODULUS = 2**32
_PASSED_FLAGS = WindowFlag.SATURATED | WindowFlag.BUS_ERROR


class UdpSource(Source):
    """Receive sample packets on a UDP port.

    Parameters
    ----------
    sample_rate : float
        Hz. Packets with another rate are dropped and counted as ``mismatched``.
    channels : sequence of str
        Channel names; packets with another channel count are dropped.
    host : str, default="127.0.0.1"
        Address to bind. ``"0.0.0.0"`` receives on every IPv4 interface,
        ``"::"`` on every IPv6 one. The framing has no authentication, so
        bind beyond loopback only on a trusted network.
    port : int, default=9870
        UDP port to bind; 0 picks a free port, shown by :attr:`address`.
    full_scale : float, optional
        g. Samples whose magnitude reaches it make the block ``SATURATED``.
    receive_buffer : int, default=4194304
        Requested socket receive buffer (``SO_RCVBUF``) in bytes. Linux
        caps it at ``net.core.rmem_max``; the granted size is logged.
    sender_timeout : float, default=2.0
        Seconds of silence after which another sender may take over.
    name : str, optional
        Label for logs; default ``"udp HOST:PORT"``.
    """

    kind: ClassVar[str] = "udp"
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "sample_rate",
            (float,),
            check=positive,
            help="the sender's sample rate in Hz, e.g. 12000",
        ),
        Option(
            "channels",
            (list, tuple),
            check=channel_names(max_count=0xFFFF),
            help='the list of channel names the packets carry, e.g. ["DE"]',
        ),
        Option(
            "host",
            (str,),
            "127.0.0.1",
            help="the address to bind; 0.0.0.0 receives from the network",
        ),
        Option(
            "port",
            (int,),
            9870,
            in_range(0, 65535),
            help="the UDP port to bind; 0 picks a free one",
        ),
        Option(
            "full_scale",
            (float,),
            None,
            positive,
            help="the sensor's full scale in g; reaching it flags the block SATURATED",
        ),
        Option(
            "receive_buffer",
            (int,),
            4 * 1024 * 1024,
            in_range(4096, 2**31 - 1),
            help="the requested socket receive buffer in bytes",
        ),
        Option(
            "sender_timeout",
            (float,),
            2.0,
            positive,
            help="seconds of silence after which another sender may take over",
        ),
    )
    live = True

    def __init__(
        self,
        sample_rate: float | None = None,
        channels: Sequence[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 9870,
        full_scale: float | None = None,
        receive_buffer: int = 4 * 1024 * 1024,
        sender_timeout: float = 2.0,
        name: str | None = None,
    ) -> None:
        values = self._validated(
            {
                "sample_rate": sample_rate,
                "channels": channels,
                "host": host,
                "port": port,
                "full_scale": full_scale,
                "receive_buffer": receive_buffer,
                "sender_timeout": sender_timeout,
            }
        )
        self.sample_rate = float(values["sample_rate"])
        self.channels = tuple(values["channels"])
        self.host = values["host"]
        self.port = values["port"]
        self.full_scale = None if full_scale is None else float(full_scale)
        self.receive_buffer = values["receive_buffer"]
        self.sender_timeout = float(values["sender_timeout"])
        self._default_name = name is None
        self.name = name or f"udp {self.host}:{self.port}"

        self._socket: socket.socket | None = None
        self._log = RateLimitedLog(logger)
        self._counts = collections.Counter(
            {
                key: 0
                for key in (
                    "packets",
                    "samples",
                    "lost_packets",
                    "duplicates",
                    "reordered",
                    "malformed",
                    "mismatched",
                    "foreign",
                    "restarts",
                )
            }
        )
        self._sender: Any = None
        self._last_received = 0.0
        self._next_sequence: int | None = None
        self._next_index = 0
        self._offset = 0
        self._largest_packet = 0
        self._recent: collections.deque[int] = collections.deque(maxlen=REORDER_WINDOW)
        self._old_in_a_row = 0

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the port is the real one when 0 was requested."""
        if self._socket is None:
            return (self.host, self.port)
        return self._socket.getsockname()[:2]

    def open(self) -> None:
        sock = socket.socket(address_family(self.host), socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                fix = "stop the process using the port or set another port"
            elif exc.errno in (errno.EACCES, errno.EPERM):
                fix = "use a port above 1023 or grant the service CAP_NET_BIND_SERVICE"
            else:
                fix = (
                    "set host to an address of this machine, 0.0.0.0 for every interface "
                    "or 127.0.0.1 for local senders only"
                )
            reason = exc.strerror or exc
            raise SourceError(
                f"{self.name}: cannot bind UDP {self.host}:{self.port}: {reason}; {fix}"
            ) from exc
        self._socket = sock
        if self._default_name:
            self.name = "udp {}:{}".format(*self.address)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        logger.info(
            "%s: listening on %s:%d for %s at %g Hz (receive buffer %d bytes)",
            self.name,
            *self.address,
            ",".join(self.channels),
            self.sample_rate,
            granted,
        )

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
            logger.info("%s: closed; counters %s", self.name, dict(self._counts))

    def counters(self) -> Mapping[str, int]:
        return dict(self._counts)

    def read(self, timeout: float) -> Block | None:
        if self._socket is None:
            raise SourceError(f"{self.name}: read() before open()")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._socket.settimeout(remaining)
            try:
                data, sender = self._socket.recvfrom(65535)
            except TimeoutError:
                return None
            except OSError as exc:
                raise SourceError(f"{self.name}: receive failed: {exc.strerror or exc}") from exc
            block = self._accept(data, sender, time.monotonic())
            if block is not None:
                return block

    # Packet checks -------------------------------------------------------------------------

    def _accept(self, data: bytes, sender: Any, received: float) -> Block | None:
        """Return the packet's samples as a block, or None (counted, logged) when it is dropped."""
        try:
            packet = decode_packet(data)
        except PacketError as exc:
            self._counts["malformed"] += 1
            self._log.warning(
                "malformed",
                "%s: dropped malformed packet from %s: %s (%d so far)",
                self.name,
                _format_address(sender),
                exc,
                self._counts["malformed"],
            )
            return None
        same_rate = math.isclose(packet.sample_rate, self.sample_rate, rel_tol=1e-9)
        if packet.n_channels != len(self.channels) or not same_rate:
            self._counts["mismatched"] += 1
            self._log.warning(
                "mismatched",
                "%s: dropped packet from %s with %d channels at %g Hz; configured %d channels "
                "(%s) at %g Hz (%d dropped so far)",
                self.name,
                _format_address(sender),
                packet.n_channels,
                packet.sample_rate,
                len(self.channels),
                ",".join(self.channels),
                self.sample_rate,
                self._counts["mismatched"],
            )
            return None
        if not self._accept_sender(sender, received):
            return None
        if not self._accept_sequence(packet, sender, received):
            return None

        first_index = packet.first_sample + self._offset
        self._next_index = first_index + packet.n_samples
        self._last_received = received
        self._counts["packets"] += 1
        self._counts["samples"] += packet.n_samples

        flags = packet.flags & _PASSED_FLAGS
        if self.full_scale is not None and np.any(np.abs(packet.samples) >= self.full_scale):
            flags |= WindowFlag.SATURATED
        return Block(packet.samples, first_index=first_index, received=received, flags=flags)

    def _accept_sender(self, sender: Any, received: float) -> bool:
        if self._sender is None:
            self._sender = sender
            logger.info("%s: receiving from %s", self.name, _format_address(sender))
            return True
        if sender == self._sender:
            return True
        silent = received - self._last_received
        if silent >= self.sender_timeout:
            logger.warning(
                "%s: sender %s silent for %.1f s; now receiving from %s",
                self.name,
                _format_address(self._sender),
                silent,
                _format_address(sender),
            )
            self._sender = sender
            # A new sender starts a new stream: resynchronise on this packet.
            self._old_in_a_row = RESTART_AFTER_OLD
            return True
        self._counts["foreign"] += 1
        self._log.warning(
            "foreign",
            "%s: dropped packet from %s while receiving from %s (%d dropped so far)",
            self.name,
            _format_address(sender),
            _format_address(self._sender),
            self._counts["foreign"],
        )
        return False

    def _accept_sequence(self, packet: Packet, sender: Any, received: float) -> bool:
        """Update the sequence bookkeeping; return False for a duplicate or late packet."""
        if self._next_sequence is None:
            self._start_stream(packet)
            return True

        ahead = (packet.sequence - self._next_sequence) % _SEQUENCE_MODULUS
        if ahead >= _SEQUENCE_MODULUS // 2:
            ahead -= _SEQUENCE_MODULUS
        restart = self._old_in_a_row >= RESTART_AFTER_OLD or ahead < -REORDER_WINDOW
        if not restart and ahead >= 0:
            jump = packet.first_sample + self._offset - self._next_index
            # The sequence moved on but the sample index went back: the sender
            # reset its counter. Or the index jumped further than the lost
            # packets can explain: a corrupt or restarted counter, which would
            # otherwise report that many samples lost.
            largest = max(self._largest_packet, packet.n_samples)
            explained = (ahead + 1) * largest * INDEX_JUMP_FACTOR
            # Nor can a sender have produced more samples than its clock
            # allows since its last packet, even when it streams faster than
            # real time: a larger claimed loss is a corrupt sequence number.
            elapsed = max(0.0, received - self._last_received)
            producible = (elapsed + 1.0) * self.sample_rate * MAX_SPEED
            restart = jump < 0 or jump > explained or ahead * largest > producible

        if restart:
            self._restart_stream(packet, sender, received)
            return True
        if ahead < 0:
            self._old_in_a_row += 1
            if packet.sequence in self._recent:
                self._counts["duplicates"] += 1
                kind = "duplicate"
            else:
                self._counts["reordered"] += 1
                kind = "late"
            self._log.warning(
                kind,
                "%s: dropped %s packet %d (expected %d); %d duplicates, %d late so far",
                self.name,
                kind,
                packet.sequence,
                self._next_sequence,
                self._counts["duplicates"],
                self._counts["reordered"],
            )
            return False

        if ahead > 0:
            self._counts["lost_packets"] += ahead
            self._log.warning(
                "lost",
                "%s: lost %d packets before sequence %d (%d lost so far)",
                self.name,
                ahead,
                packet.sequence,
                self._counts["lost_packets"],
            )
        self._old_in_a_row = 0
        self._advance(packet)
        return True

    def _start_stream(self, packet: Packet) -> None:
        self._offset = 0
        if packet.first_sample >= MAX_FIRST_SAMPLE:
            self._offset = -packet.first_sample
            logger.warning(
                "%s: first sample index %d is too large to keep; counting from 0 instead",
                self.name,
                packet.first_sample,
            )
        self._old_in_a_row = 0
        self._advance(packet)

    def _restart_stream(self, packet: Packet, sender: Any, received: float) -> None:
        """Follow a sender that restarted, keeping the sample index increasing.

        The samples missed between the last packet of the old stream and
        this one are estimated from the time between them, and at least one
        is counted so that the ring buffer flags the discontinuity.
        """
        elapsed = max(0.0, received - self._last_received)
        missed = max(1, round(elapsed * self.sample_rate) - packet.n_samples)
        expected_first = self._next_index - self._offset
        self._offset = self._next_index + missed - packet.first_sample
        self._counts["restarts"] += 1
        logger.warning(
            "%s: sender %s restarted at sequence %d, first sample %d (expected %d and %d); "
            "about %d samples missed",
            self.name,
            _format_address(sender),
            packet.sequence,
            packet.first_sample,
            self._next_sequence,
            expected_first,
            missed,
        )
        self._recent.clear()
        self._old_in_a_row = 0
        self._advance(packet)

    def _advance(self, packet: Packet) -> None:
        self._largest_packet = max(self._largest_packet, packet.n_samples)
        self._next_sequence = (packet.sequence + 1) % _SEQUENCE_MODULUS
        self._recent.append(packet.sequence)


def address_family(host: str) -> socket.AddressFamily:
    """Return the socket family a UDP source binds ``host`` with: IPv6 for a host with a colon."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
