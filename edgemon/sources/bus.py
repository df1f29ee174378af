"""Register access over SPI and I2C for the chip drivers.

Drivers talk to a chip through a :class:`RegisterBus` (read N bytes from a
register, write one byte), which wraps a device object with the call style of
``spidev.SpiDev`` or ``smbus2.SMBus``. Tests pass register-level fakes with
the same calls; on a Raspberry Pi, :func:`open_spi` and :func:`open_i2c`
import ``spidev`` and ``smbus2`` only when a driver opens a real bus, so
neither is needed elsewhere.

A failed transfer raises :class:`OSError`, as ``spidev`` and ``smbus2`` do;
drivers catch it and decide whether it is a bus error to flag or a failure
to raise.
"""

from __future__ import annotations

import errno
from typing import Protocol

from edgemon.errors import SourceError

__all__ = [
    "I2cRegisters",
    "RegisterBus",
    "SmbusDevice",
    "SpiDevice",
    "SpiRegisters",
    "open_i2c",
    "open_spi",
]


class SpiDevice(Protocol):
    """The part of ``spidev.SpiDev`` the drivers use."""

    def xfer2(self, values: list[int]) -> list[int]:
        """Clock out ``values`` with chip select held, and return the bytes clocked in."""

    def close(self) -> None:
        """Release the device."""


class SmbusDevice(Protocol):
    """The part of ``smbus2.SMBus`` the drivers use."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        """Read one register."""

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        """Write one register."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read ``length`` (at most 32) consecutive registers."""

    def close(self) -> None:
        """Release the bus."""


class RegisterBus(Protocol):
    """Register reads and writes on one chip, whatever the bus."""

    def read(self, register: int, length: int = 1) -> bytes:
        """Read ``length`` bytes starting at ``register``."""

    def write(self, register: int, value: int) -> None:
        """Write one byte to ``register``."""

    def close(self) -> None:
        """Release the bus."""


class SpiRegisters:
    """Register access over SPI in the common MEMS convention.

    The first byte of a transfer is the register address with bit 7 set for
    a read; a multi-byte read also sets ``multi_byte_bit`` (bit 6 on the
    ADXL345; 0 on chips that increment the address on their own).

    Parameters
    ----------
    device : SpiDevice
        An open ``spidev.SpiDev`` or a stand-in with ``xfer2``.
    multi_byte_bit : int, default=0
        Bit to set in the address byte of a read of more than one byte.
    """

    READ_BIT = 0x80

    def __init__(self, device: SpiDevice, *, multi_byte_bit: int = 0) -> None:
        self.device = device
        self.multi_byte_bit = multi_byte_bit

    def read(self, register: int, length: int = 1) -> bytes:
        command = register | self.READ_BIT | (self.multi_byte_bit if length > 1 else 0)
        reply = self.device.xfer2([command] + [0] * length)
        if len(reply) != length + 1:
            raise OSError(errno.EIO, f"SPI read of {length} bytes returned {len(reply) - 1}")
        return bytes(reply[1:])

    def write(self, register: int, value: int) -> None:
        self.device.xfer2([register & 0x7F, value & 0xFF])

    def close(self) -> None:
        self.device.close()


class I2cRegisters:
    """Register access over I2C (SMBus block reads of at most 32 bytes).

    Parameters
    ----------
    device : SmbusDevice
        An open ``smbus2.SMBus`` or a stand-in with the same methods.
    address : int
        The chip's 7-bit I2C address.
    """

    MAX_BLOCK = 32

    def __init__(self, device: SmbusDevice, address: int) -> None:
        self.device = device
        self.address = address

    def read(self, register: int, length: int = 1) -> bytes:
        if length == 1:
            return bytes([self.device.read_byte_data(self.address, register)])
        data = bytearray()
        while len(data) < length:
            chunk = min(self.MAX_BLOCK, length - len(data))
            data += bytes(
                self.device.read_i2c_block_data(self.address, register + len(data), chunk)
            )
        return bytes(data)

    def write(self, register: int, value: int) -> None:
        self.device.write_byte_data(self.address, register, value & 0xFF)

    def close(self) -> None:
        self.device.close()


def open_spi(bus: int, device: int, max_speed_hz: int, mode: int) -> SpiDevice:
    """Open ``/dev/spidev<bus>.<device>`` with ``spidev``.

    Raises
    ------
    SourceError
        If ``spidev`` is not installed or the device cannot be opened.
    """
    try:
        import spidev
    except ImportError as exc:
        raise SourceError(
            "SPI sensors need the spidev package: pip install spidev "
            "(on Raspberry Pi OS also: apt install python3-spidev)"
        ) from exc
    spi = spidev.SpiDev()
    try:
        spi.open(bus, device)
        spi.max_speed_hz = max_speed_hz
        spi.mode = mode
    except OSError as exc:
        spi.close()
        raise SourceError(
            f"cannot open /dev/spidev{bus}.{device}: {exc.strerror or exc}; enable SPI "
            f"(raspi-config, or dtparam=spi=on) and add the user to the spi group"
        ) from exc
    return spi


def open_i2c(bus: int) -> SmbusDevice:
    """Open ``/dev/i2c-<bus>`` with ``smbus2``.

    Raises
    ------
    SourceError
        If ``smbus2`` is not installed or the bus cannot be opened.
    """
    try:
        from smbus2 import SMBus
    except ImportError as exc:
        raise SourceError("I2C sensors need the smbus2 package: pip install smbus2") from exc
    try:
        return SMBus(bus)
    except OSError as exc:
        raise SourceError(
            f"cannot open /dev/i2c-{bus}: {exc.strerror or exc}; enable I2C "
            f"(raspi-config, or dtparam=i2c_arm=on) and add the user to the i2c group"
        ) from exc
