"""The UDP framing of sample packets, shared by the ``udp`` source and ``edgemon-sim``.

Every datagram is one packet: a fixed 40-byte little-endian header followed
by the samples, interleaved frame by frame (sample 0 of every channel, then
sample 1 of every channel, ...). ``docs/sources.md`` describes it byte by
byte, for senders written in other languages.

=======  ====  =======  ==============================================================
offset   size  type     field
=======  ====  =======  ==============================================================
0        4     bytes    magic ``b"EDGM"``
4        1     uint8    version, 1
5        1     uint8    flags: :class:`~edgemon.flags.WindowFlag` bits of these samples
6        2     uint16   channel count, at least 1
8        1     uint8    sample format: 1 = int16, 2 = float32
9        1     uint8    reserved, 0
10       2     uint16   samples per channel in this packet, at least 1
12       4     uint32   packet sequence number, +1 per packet, wraps at 2**32
16       8     float64  sample rate, Hz
24       8     uint64   index of the packet's first sample in the stream
32       8     float64  scale: g per count (int16) or per unit (float32)
40       ...   samples  channel count x samples x 2 (int16) or 4 (float32) bytes
=======  ====  =======  ==============================================================

A sample's value in g is its stored value times ``scale``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_DATAGRAM",
    "SAMPLE_FORMATS",
    "VERSION",
    "Packet",
    "PacketError",
    "decode_packet",
    "encode_packet",
    "max_samples_per_packet",
]

MAGIC = b"EDGM"
VERSION = 1
_HEADER = struct.Struct("<4sBBHBBHIdQd")
HEADER_SIZE = _HEADER.size
#: Largest UDP payload over IPv4, in bytes.
MAX_DATAGRAM = 65507

#: Sample format name -> (code in the header, little-endian numpy dtype).
SAMPLE_FORMATS: dict[str, tuple[int, np.dtype]] = {
    "int16": (1, np.dtype("<i2")),
    "float32": (2, np.dtype("<f4")),
}
_FORMAT_BY_CODE = {code: (name, dtype) for name, (code, dtype) in SAMPLE_FORMATS.items()}
_INT16_LIMITS = (-32768, 32767)
_KNOWN_FLAGS = int(
    WindowFlag.GAP
    | WindowFlag.SATURATED
    | WindowFlag.CONSTANT
    | WindowFlag.NONFINITE
    | WindowFlag.BUS_ERROR
)


class PacketError(SourceError):
    """A datagram that is not a valid packet of this framing."""


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded packet.

    Attributes
    ----------
    samples : ndarray of shape (n_samples, n_channels), float64
        Values in g (stored values times ``scale``).
    sequence : int
        Packet sequence number, 0 to 2**32 - 1.
    first_sample : int
        Index of ``samples[0]`` in the sender's stream.
    sample_rate : float
        Hz.
    flags : WindowFlag
        The header's flags, plus ``SATURATED`` when an int16 sample is at
        -32768 or 32767 (the sender clipped it).
    sample_format : str
        ``"int16"`` or ``"float32"``.
    scale : float
        g per stored unit.
    version : int
        Framing version.
    """

    samples: np.ndarray
    sequence: int
    first_sample: int
    sample_rate: float
    flags: WindowFlag = WindowFlag.NONE
    sample_format: str = "float32"
    scale: float = 1.0
    version: int = VERSION

    @property
    def n_samples(self) -> int:
        """Samples per channel."""
        return int(self.samples.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[1])


def max_samples_per_packet(n_channels: int, sample_format: str, datagram_size: int = 1472) -> int:
    """Return how many samples per channel fit in a datagram of ``datagram_size`` bytes.

    The default of 1472 bytes is the largest UDP payload that crosses an
    Ethernet link (MTU 1500) without IP fragmentation.
    """
    itemsize = SAMPLE_FORMATS[sample_format][1].itemsize
    return max(0, (datagram_size - HEADER_SIZE) // (n_channels * itemsize))


def encode_packet(
    samples: np.ndarray,
    *,
    sequence: int,
    first_sample: int,
    sample_rate: float,
    sample_format: str = "float32",
    scale: float = 1.0,
    flags: WindowFlag | int = WindowFlag.NONE,
) -> bytes:
    """Encode samples in g as one datagram.

    Parameters
    ----------
    samples : array-like of shape (n_samples, n_channels) or (n_samples,)
        Values in g. A 1-D array is one channel.
    sequence : int
        Packet sequence number, 0 to 2**32 - 1.
    first_sample : int
        Index of ``samples[0]`` in the stream, 0 or more.
    sample_rate : float
        Hz.
    sample_format : {"float32", "int16"}, default="float32"
        How samples are stored. int16 stores ``round(value / scale)``,
        clipped to -32768..32767.
    scale : float, default=1.0
        g per stored unit; for int16, the value of one count.
    flags : WindowFlag, default=NONE
        Bits to send with the samples. ``SATURATED`` is added when int16
        samples were clipped.

    Returns
    -------
    bytes
        The datagram, at most :data:`MAX_DATAGRAM` bytes.

    Raises
    ------
    PacketError
        If an argument is out of range or the packet does not fit in a datagram.
    """
    if sample_format not in SAMPLE_FORMATS:
        raise PacketError(
            f"sample_format must be one of {', '.join(SAMPLE_FORMATS)}, got {sample_format!r}"
        )
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
        raise PacketError(
            f"samples must have shape (n_samples, n_channels) with at least one of each, "
            f"got {np.shape(samples)}"
        )
    n_samples, n_channels = values.shape
    if n_samples > 0xFFFF or n_channels > 0xFFFF:
        raise PacketError(
            f"a packet holds at most 65535 samples and 65535 channels, got {values.shape}"
        )
    if not 0 <= sequence <= 0xFFFFFFFF:
        raise PacketError(f"sequence must be from 0 to 2**32 - 1, got {sequence}")
    if not 0 <= first_sample <= 0xFFFFFFFFFFFFFFFF:
        raise PacketError(f"first_sample must be from 0 to 2**64 - 1, got {first_sample}")
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise PacketError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if not (math.isfinite(scale) and scale > 0):
        raise PacketError(f"scale must be a positive number of g per unit, got {scale}")

    code, dtype = SAMPLE_FORMATS[sample_format]
    flags = int(flags)
    if sample_format == "int16":
        counts = np.rint(values / scale)
        if np.isnan(counts).any():
            raise PacketError("int16 packets cannot carry NaN samples; send float32 instead")
        counts = np.clip(counts, *_INT16_LIMITS)
        if np.isin(counts, _INT16_LIMITS).any():
            flags |= WindowFlag.SATURATED
        payload = counts.astype(dtype).tobytes()
    else:
        payload = (values / scale).astype(dtype).tobytes()
    if flags & ~_KNOWN_FLAGS:
        raise PacketError(f"flags must be WindowFlag bits (at most {_KNOWN_FLAGS}), got {flags}")

    size = HEADER_SIZE + len(payload)
    if size > MAX_DATAGRAM:
        raise PacketError(
            f"packet of {size} bytes exceeds the UDP maximum of {MAX_DATAGRAM}; "
            f"send at most {max_samples_per_packet(n_channels, sample_format, MAX_DATAGRAM)} "
            f"samples per packet"
        )
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        flags,
        n_channels,
        code,
        0,
        n_samples,
        sequence,
        float(sample_rate),
        first_sample,
        float(scale),
    )
    return header + payload


def decode_packet(data: bytes) -> Packet:
    """Decode one datagram.

    Raises
    ------
    PacketError
        If the datagram is shorter than the header, has the wrong magic or
        an unsupported version, or if its fields are out of range or
        disagree with its length. The message names the field and its value.
    """
    if len(data) < HEADER_SIZE:
        raise PacketError(
            f"datagram of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header"
        )
    (
        magic,
        version,
        flags,
        n_channels,
        code,
        reserved,
        n_samples,
        sequence,
        sample_rate,
        first_sample,
        scale,
    ) = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PacketError(f"bad magic {magic!r}, expected {MAGIC!r}: not an edgemon packet")
    if version != VERSION:
        raise PacketError(f"unsupported version {version}; this edgemon reads version {VERSION}")
    if code not in _FORMAT_BY_CODE:
        raise PacketError(f"unknown sample format code {code}; known: 1 (int16), 2 (float32)")
    if flags & ~_KNOWN_FLAGS:
        raise PacketError(f"unknown flag bits {flags:#04x}")
    if reserved != 0:
        raise PacketError(f"reserved byte must be 0, got {reserved}")
    if n_channels < 1 or n_samples < 1:
        raise PacketError(
            f"packet must carry at least one channel and one sample, "
            f"got {n_channels} channels and {n_samples} samples"
        )
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise PacketError(f"sample rate must be a positive number of Hz, got {sample_rate}")
    if not (math.isfinite(scale) and scale > 0):
        raise PacketError(f"scale must be a positive number, got {scale}")

    name, dtype = _FORMAT_BY_CODE[code]
    expected = HEADER_SIZE + n_channels * n_samples * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise PacketError(
            f"packet {problem}: {len(data)} bytes, but {n_channels} channels x {n_samples} "
            f"{name} samples need {expected}"
        )

    stored = np.frombuffer(data, dtype=dtype, offset=HEADER_SIZE).reshape(n_samples, n_channels)
    packet_flags = WindowFlag(flags)
    # Two reductions instead of np.isin, which costs ten times more on a packet.
    low, high = _INT16_LIMITS
    if name == "int16" and (stored.min() == low or stored.max() == high):
        packet_flags |= WindowFlag.SATURATED
    return Packet(
        samples=stored.astype(np.float64) * scale,
        sequence=sequence,
        first_sample=first_sample,
        sample_rate=sample_rate,
        flags=packet_flags,
        sample_format=name,
        scale=scale,
        version=version,
    )
