"""The ``adxl345`` source: an Analog Devices ADXL345 3-axis accelerometer on SPI or I2C.

Register map, bit fields and scaling are from the ADXL345 data sheet, Rev. G
(Analog Devices): register map (Table 19), BW_RATE codes (Table 7),
DATA_FORMAT, FIFO_CTL, FIFO_STATUS and INT_SOURCE register descriptions, and
"Retrieving Data from FIFO".

The driver runs the chip in full-resolution mode, so one count is 3.9 mg
(256 counts per g, the typical sensitivity) in every range. The FIFO runs in
stream mode, keeping the latest 32 samples, and the driver drains it with
one 6-byte read of DATAX0..DATAZ1 per entry. Each entry is read in its
own transfer, because the chip pops an entry only once chip select goes high
(SPI) or the read ends (I2C). At 3200 Hz the 32-entry FIFO fills in 10 ms,
so the reader thread must poll at least that often. Over I2C at 400 kHz the
driver accepts at most 800 Hz.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from edgemon.errors import SourceError
from edgemon.sources.bus import (
    I2cRegisters,
    RegisterBus,
    SmbusDevice,
    SpiDevice,
    SpiRegisters,
    open_i2c,
    open_spi,
)
from edgemon.sources.chip import AXES, FifoChipSource, FifoReadError
from edgemon.sources.options import Option, channel_names, in_range, one_of

__all__ = ["Adxl345Source"]

logger = logging.getLogger(__name__)

# Registers (data sheet Table 19).
DEVID = 0x00
BW_RATE = 0x2C
POWER_CTL = 0x2D
INT_ENABLE = 0x2E
INT_SOURCE = 0x30
DATA_FORMAT = 0x31
DATAX0 = 0x32
FIFO_CTL = 0x38
FIFO_STATUS = 0x39

DEVICE_ID = 0xE5
#: BW_RATE rate codes (Table 7), normal power.
RATE_CODES = {
    3200: 0x0F,
    1600: 0x0E,
    800: 0x0D,
    400: 0x0C,
    200: 0x0B,
    100: 0x0A,
    50: 0x09,
    25: 0x08,
}
#: DATA_FORMAT range bits D1:D0.
RANGE_BITS = {2: 0b00, 4: 0b01, 8: 0b10, 16: 0b11}
FULL_RES = 0x08  # DATA_FORMAT D3
MEASURE = 0x08  # POWER_CTL D3
FIFO_MODE_STREAM = 0x80  # FIFO_CTL D7:D6 = 10
FIFO_ENTRIES = 0x3F  # FIFO_STATUS D5:D0
INT_OVERRUN = 0x01  # INT_SOURCE D0
SPI_MULTI_BYTE = 0x40  # MB bit of the SPI address byte
#: g per count in full-resolution mode (256 LSB/g typical, data sheet Table 1).
G_PER_COUNT = 1 / 256
WATERMARK = 16
I2C_MAX_RATE = 800
I2C_ADDRESSES = (0x53, 0x1D)


class Adxl345Source(FifoChipSource):
    """Read an ADXL345 through its FIFO.

    Parameters
    ----------
    interface : {"spi", "i2c"}, default="spi"
        The bus the chip is wired to.
    sample_rate : int, default=3200
        Output data rate in Hz: 3200, 1600, 800, 400, 200, 100, 50 or 25.
    range_g : int, default=16
        Measurement range +-2, 4, 8 or 16 g.
    channels : sequence of str, default=("x", "y", "z")
        Axes to deliver, in this order.
    spi_bus, spi_device : int, default=0
        ``/dev/spidev<bus>.<device>``.
    spi_speed_hz : int, default=2000000
        SPI clock; the chip allows at most 5 MHz.
    i2c_bus : int, default=1
        ``/dev/i2c-<bus>``.
    i2c_address : int, default=0x53
        0x53 with ALT ADDRESS low, 0x1D with it high.
    block_size : int, default=256
        Samples per block.
    max_bus_errors : int, default=10
        Failed transfers in a row after which reading raises SourceError.
    name : str, optional
        Label for logs; default ``"adxl345 spi0.0"`` or ``"adxl345 i2c1@0x53"``.
    device : SpiDevice or SmbusDevice, optional
        An open device with the calls of ``spidev.SpiDev`` (for ``"spi"``)
        or ``smbus2.SMBus`` (for ``"i2c"``) to use instead of opening the
        bus; tests pass a register-level fake.
    clock, sleep : callable, optional
        ``time.monotonic`` and ``time.sleep``, replaceable for tests.
    """

    kind: ClassVar[str] = "adxl345"
    chip: ClassVar[str] = "ADXL345"
    fifo_depth: ClassVar[int] = 32
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("interface", (str,), "spi", one_of(("spi", "i2c")), help='"spi" or "i2c"'),
        Option(
            "sample_rate",
            (int,),
            3200,
            one_of(sorted(RATE_CODES, reverse=True)),
            help="the output data rate in Hz",
        ),
        Option("range_g", (int,), 16, one_of(RANGE_BITS), help="the range in g: 2, 4, 8 or 16"),
        Option(
            "channels",
            (list, tuple),
            AXES,
            channel_names(AXES),
            help='the axes to deliver, e.g. ["x", "z"]',
        ),
        Option("spi_bus", (int,), 0, in_range(0, 255), help="the SPI bus number"),
        Option("spi_device", (int,), 0, in_range(0, 255), help="the SPI chip select"),
        Option(
            "spi_speed_hz",
            (int,),
            2_000_000,
            in_range(100_000, 5_000_000),
            help="the SPI clock in Hz",
        ),
        Option("i2c_bus", (int,), 1, in_range(0, 255), help="the I2C bus number"),
        Option(
            "i2c_address",
            (int,),
            0x53,
            one_of(I2C_ADDRESSES),
            help="the I2C address, 0x53 (83) or 0x1D (29)",
        ),
        Option("block_size", (int,), 256, in_range(1, 100_000), help="samples per block"),
        Option(
            "max_bus_errors",
            (int,),
            10,
            in_range(1, 1_000_000),
            help="failed transfers in a row before the source gives up",
        ),
    )

    def __init__(
        self,
        *,
        interface: str = "spi",
        sample_rate: int = 3200,
        range_g: int = 16,
        channels: Sequence[str] = AXES,
        spi_bus: int = 0,
        spi_device: int = 0,
        spi_speed_hz: int = 2_000_000,
        i2c_bus: int = 1,
        i2c_address: int = 0x53,
        block_size: int = 256,
        max_bus_errors: int = 10,
        name: str | None = None,
        device: SpiDevice | SmbusDevice | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        values = self._validated(
            {
                "interface": interface,
                "sample_rate": sample_rate,
                "range_g": range_g,
                "channels": channels,
                "spi_bus": spi_bus,
                "spi_device": spi_device,
                "spi_speed_hz": spi_speed_hz,
                "i2c_bus": i2c_bus,
                "i2c_address": i2c_address,
                "block_size": block_size,
                "max_bus_errors": max_bus_errors,
            }
        )
        self.interface = interface
        self.range_g = range_g
        self.spi_bus, self.spi_device, self.spi_speed_hz = spi_bus, spi_device, spi_speed_hz
        self.i2c_bus, self.i2c_address = i2c_bus, i2c_address
        if interface == "spi":
            default_name = f"adxl345 spi{spi_bus}.{spi_device}"
        else:
            default_name = f"adxl345 i2c{i2c_bus}@{i2c_address:#04x}"
        # Full resolution keeps 256 counts per g, so +-range_g spans these two's complement codes.
        # NOTE: the data sheet states that data below the +-16 g range is clipped to avoid
        # rollover. The driver takes the extreme codes as saturation, not checked on hardware.
        self._count_limits = (-256 * range_g, 256 * range_g - 1)
        super().__init__(
            sample_rate=values["sample_rate"],
            channels=values["channels"],
            full_scale=range_g,
            block_size=block_size,
            max_bus_errors=max_bus_errors,
            name=name or default_name,
            device=device,
            clock=clock,
            sleep=sleep,
        )

    @classmethod
    def _related_problems(cls, values: dict[str, Any]) -> list[str]:
        if values["interface"] == "i2c" and values["sample_rate"] > I2C_MAX_RATE:
            return [
                f"adxl345 source: option 'sample_rate' must be at most {I2C_MAX_RATE} Hz over "
                f"I2C, got {values['sample_rate']}; wire the chip to SPI for 1600 or 3200 Hz"
            ]
        return []

    def _connect(self, device: SpiDevice | SmbusDevice | None) -> RegisterBus:
        if self.interface == "spi":
            if device is None:
                # SPI mode 3: clock idles high, data sampled on the rising edge.
                device = open_spi(self.spi_bus, self.spi_device, self.spi_speed_hz, mode=0b11)
            return SpiRegisters(device, multi_byte_bit=SPI_MULTI_BYTE)
        if device is None:
            device = open_i2c(self.i2c_bus)
        return I2cRegisters(device, self.i2c_address)

    def _configure(self, registers: RegisterBus) -> None:
        device_id = registers.read(DEVID)[0]
        if device_id != DEVICE_ID:
            raise SourceError(
                f"{self.name}: no ADXL345 found: register DEVID (0x00) read {device_id:#04x}, "
                f"expected {DEVICE_ID:#04x}; check the wiring, the chip select or I2C address, "
                f"and that the part is an ADXL345"
            )
        registers.write(POWER_CTL, 0)  # standby while configuring
        registers.write(INT_ENABLE, 0)
        registers.write(BW_RATE, RATE_CODES[int(self.sample_rate)])
        registers.write(DATA_FORMAT, FULL_RES | RANGE_BITS[self.range_g])
        registers.write(FIFO_CTL, 0)  # bypass mode empties the FIFO
        registers.write(FIFO_CTL, FIFO_MODE_STREAM | WATERMARK)
        for register, expected in (
            (BW_RATE, RATE_CODES[int(self.sample_rate)]),
            (DATA_FORMAT, FULL_RES | RANGE_BITS[self.range_g]),
            (FIFO_CTL, FIFO_MODE_STREAM | WATERMARK),
        ):
            value = registers.read(register)[0]
            if value != expected:
                raise SourceError(
                    f"{self.name}: register {register:#04x} reads back {value:#04x} after "
                    f"writing {expected:#04x}; the bus corrupts transfers, lower spi_speed_hz "
                    f"or check the wiring"
                )
        registers.read(INT_SOURCE)  # clears the latched overrun bit
        registers.write(POWER_CTL, MEASURE)

    def _fifo_status(self, registers: RegisterBus) -> tuple[int, bool]:
        # NOTE: the data sheet sets the overrun bit in stream mode once the FIFO is
        # full. The driver counts that as at least one lost sample, so a FIFO that
        # has just filled without losing data is reported as a 1-sample gap.
        overrun = bool(registers.read(INT_SOURCE)[0] & INT_OVERRUN)
        level = registers.read(FIFO_STATUS)[0] & FIFO_ENTRIES
        return level, overrun

    def _read_fifo(self, registers: RegisterBus, count: int) -> np.ndarray:
        entries = bytearray()
        for _ in range(count):
            try:
                entries += registers.read(DATAX0, 6)
            except OSError as exc:
                # Only the entry being read may have been popped; the rest wait in the FIFO.
                raise FifoReadError(_counts(entries), lost=1, cause=exc) from exc
        return _counts(entries)

    def _standby(self, registers: RegisterBus) -> None:
        registers.write(POWER_CTL, 0)

    def _to_g(self, counts: np.ndarray) -> tuple[np.ndarray, bool]:
        saturated = bool(np.isin(counts, self._count_limits).any())
        return counts.astype(np.float64) * G_PER_COUNT, saturated


def _counts(entries: bytes | bytearray) -> np.ndarray:
    """Decode FIFO entries (6 bytes each: X, Y, Z little-endian int16) into shape (n, 3)."""
    return np.frombuffer(bytes(entries), dtype="<i2").reshape(-1, 3).astype(np.int32)
