"""The ``iis3dwb`` source: an ST IIS3DWB wide-band vibration sensor on SPI.

The IIS3DWB samples three axes at a fixed 26.667 kHz with a flat response
to about 6 kHz, which suits bearing diagnostics better than general-purpose
accelerometers. Register addresses, bit fields and sensitivities are from
ST's register driver for the part, ``iis3dwb_reg.h`` and ``iis3dwb_reg.c``
(STMicroelectronics/iis3dwb-pid, 2021 release), which encodes the data sheet:
WHO_AM_I 0x0F = 0x7B; CTRL1_XL 0x10 (XL_EN bits 7:5 = 101 for 26.667 kHz,
FS_XL bits 3:2: 00 = 2 g, 01 = 16 g, 10 = 4 g, 11 = 8 g); CTRL3_C 0x12
(BOOT, BDU, IF_INC, SW_RESET); FIFO_CTRL3 0x09 (BDR_XL = 1010 for 26.667 kHz);
FIFO_CTRL4 0x0A (FIFO_MODE = 110, continuous); FIFO_STATUS1/2 0x3A/0x3B
(DIFF_FIFO[9:0], FIFO_OVR_IA bit 6, FIFO_OVR_LATCHED bit 3); FIFO words
of 7 bytes from FIFO_DATA_OUT_TAG 0x78 (tag sensor bits 7:3, 0x02 =
accelerometer, then X, Y, Z little-endian int16); INTERNAL_FREQ_FINE 0x63;
0.061, 0.122, 0.244 and 0.488 mg per count at 2, 4, 8 and 16 g.

The driver drains the FIFO in bursts of up to 256 words, each one SPI
transfer of 1 + 7 x n bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np

from edgemon.errors import SourceError
from edgemon.sources.bus import RegisterBus, SpiDevice, SpiRegisters, open_spi
from edgemon.sources.chip import AXES, FifoChipSource, FifoReadError
from edgemon.sources.options import Option, channel_names, in_range, one_of

__all__ = ["Iis3dwbSource"]

logger = logging.getLogger(__name__)

FIFO_CTRL3 = 0x09
FIFO_CTRL4 = 0x0A
WHO_AM_I = 0x0F
CTRL1_XL = 0x10
CTRL3_C = 0x12
CTRL5_C = 0x14
FIFO_STATUS1 = 0x3A
INTERNAL_FREQ_FINE = 0x63
FIFO_DATA_OUT_TAG = 0x78

DEVICE_ID = 0x7B
XL_EN_26K7 = 0b101 << 5
#: FS_XL bits 3:2 of CTRL1_XL; the codes are not in range order.
FS_BITS = {2: 0b00 << 2, 16: 0b01 << 2, 4: 0b10 << 2, 8: 0b11 << 2}
#: mg per count.
SENSITIVITY_MG = {2: 0.061, 4: 0.122, 8: 0.244, 16: 0.488}
SW_RESET = 0x01
IF_INC = 0x04
BDU = 0x40
BDR_XL_26K7 = 0b1010
FIFO_MODE_CONTINUOUS = 0b110
FIFO_OVR_IA = 0x40
FIFO_OVR_LATCHED = 0x08
DIFF_FIFO_HIGH = 0x03
TAG_ACCELEROMETER = 0x02
#: CTRL5_C ROUNDING bits 6:5 = 01: a burst read from FIFO_DATA_OUT_TAG wraps from
#: 0x7E back to 0x78, so one transfer returns consecutive FIFO words.
# NOTE: taken from a working Linux reader (iis3dwb-247), not from the data sheet text.
# Without the wrap-around, every burst after the first word would read other registers.
ROUNDING_ACCELEROMETER = 0b01 << 5
#: Hz, nominal output data rate.
ODR = 26667.0
WORD_SIZE = 7
MAX_BURST_WORDS = 256


class Iis3dwbSource(FifoChipSource):
    """Read an IIS3DWB through its FIFO at 26.667 kHz.

    Parameters
    ----------
    range_g : int, default=16
        Measurement range +-2, 4, 8 or 16 g.
    channels : sequence of str, default=("x", "y", "z")
        Axes to deliver, in this order.
    spi_bus, spi_device : int, default=0
        ``/dev/spidev<bus>.<device>``.
    spi_speed_hz : int, default=8000000
        SPI clock; the chip allows at most 10 MHz. At 26.667 kHz the FIFO
        produces 1.5 Mbit/s, so the clock must stay well above 2 MHz.
    block_size : int, default=2048
        Samples per block.
    max_bus_errors : int, default=10
        Failed transfers in a row after which reading raises SourceError.
    name : str, optional
        Label for logs; default ``"iis3dwb spi0.0"``.
    device : SpiDevice, optional
        An open device with the calls of ``spidev.SpiDev`` to use instead
        of opening the bus; tests pass a register-level fake.
    clock, sleep : callable, optional
        ``time.monotonic`` and ``time.sleep``, replaceable for tests.
    """

    kind: ClassVar[str] = "iis3dwb"
    chip: ClassVar[str] = "IIS3DWB"
    # NOTE: ST gives the FIFO as 3 kbyte, room for 512 samples of 6 bytes. This depth
    # only sets the polling interval; the FIFO level is always read from the chip.
    fifo_depth: ClassVar[int] = 512
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("range_g", (int,), 16, one_of((2, 4, 8, 16)), help="the range in g: 2, 4, 8 or 16"),
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
            8_000_000,
            in_range(2_500_000, 10_000_000),
            help="the SPI clock in Hz",
        ),
        Option("block_size", (int,), 2048, in_range(1, 1_000_000), help="samples per block"),
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
        range_g: int = 16,
        channels: Sequence[str] = AXES,
        spi_bus: int = 0,
        spi_device: int = 0,
        spi_speed_hz: int = 8_000_000,
        block_size: int = 2048,
        max_bus_errors: int = 10,
        name: str | None = None,
        device: SpiDevice | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        values = self._validated(
            {
                "range_g": range_g,
                "channels": channels,
                "spi_bus": spi_bus,
                "spi_device": spi_device,
                "spi_speed_hz": spi_speed_hz,
                "block_size": block_size,
                "max_bus_errors": max_bus_errors,
            }
        )
        self.range_g = range_g
        self.spi_bus, self.spi_device, self.spi_speed_hz = spi_bus, spi_device, spi_speed_hz
        self._g_per_count = SENSITIVITY_MG[range_g] / 1000
        self.actual_rate: float | None = None
        super().__init__(
            sample_rate=ODR,
            channels=values["channels"],
            full_scale=range_g,
            block_size=block_size,
            max_bus_errors=max_bus_errors,
            name=name or f"iis3dwb spi{spi_bus}.{spi_device}",
            device=device,
            clock=clock,
            sleep=sleep,
        )
        self._counts["unexpected_tags"] = 0

    def _connect(self, device: SpiDevice | None) -> RegisterBus:
        if device is None:
            device = open_spi(self.spi_bus, self.spi_device, self.spi_speed_hz, mode=0b00)
        return SpiRegisters(device)

    def _configure(self, registers: RegisterBus) -> None:
        device_id = registers.read(WHO_AM_I)[0]
        if device_id != DEVICE_ID:
            raise SourceError(
                f"{self.name}: no IIS3DWB found: register WHO_AM_I (0x0F) read "
                f"{device_id:#04x}, expected {DEVICE_ID:#04x}; check the wiring and the chip "
                f"select, and that the part is an IIS3DWB"
            )
        registers.write(CTRL3_C, SW_RESET)
        for _ in range(100):
            if not registers.read(CTRL3_C)[0] & SW_RESET:
                break
            self._sleep(0.001)
        else:
            raise SourceError(f"{self.name}: the IIS3DWB did not finish its software reset")

        registers.write(CTRL3_C, BDU | IF_INC)
        registers.write(CTRL5_C, ROUNDING_ACCELEROMETER)
        registers.write(FIFO_CTRL4, 0)  # bypass mode empties the FIFO
        registers.write(FIFO_CTRL3, BDR_XL_26K7)
        registers.write(FIFO_CTRL4, FIFO_MODE_CONTINUOUS)
        registers.write(CTRL1_XL, XL_EN_26K7 | FS_BITS[self.range_g])
        value = registers.read(CTRL1_XL)[0]
        if value != XL_EN_26K7 | FS_BITS[self.range_g]:
            raise SourceError(
                f"{self.name}: CTRL1_XL reads back {value:#04x} after writing "
                f"{XL_EN_26K7 | FS_BITS[self.range_g]:#04x}; the bus corrupts transfers, "
                f"lower spi_speed_hz or check the wiring"
            )

        # Actual rate = ODR * (1 + 0.0015 * INTERNAL_FREQ_FINE), a signed byte; the formula
        # is the data sheet's, as applied by the iis3dwb-247 Linux reader.
        raw = registers.read(INTERNAL_FREQ_FINE)[0]
        freq_fine = raw - 256 if raw >= 128 else raw
        self.actual_rate = ODR * (1 + 0.0015 * freq_fine)
        self._estimate_rate = self.actual_rate
        logger.info(
            "%s: actual output data rate %.1f Hz (INTERNAL_FREQ_FINE %d)",
            self.name,
            self.actual_rate,
            freq_fine,
        )

    def _fifo_status(self, registers: RegisterBus) -> tuple[int, bool]:
        status1, status2 = registers.read(FIFO_STATUS1, 2)
        level = ((status2 & DIFF_FIFO_HIGH) << 8) | status1
        return level, bool(status2 & (FIFO_OVR_IA | FIFO_OVR_LATCHED))

    def _read_fifo(self, registers: RegisterBus, count: int) -> np.ndarray:
        parts = []
        done = 0
        while done < count:
            words = min(MAX_BURST_WORDS, count - done)
            try:
                data = registers.read(FIFO_DATA_OUT_TAG, WORD_SIZE * words)
            except OSError as exc:
                # A failed burst may have popped every word it asked for.
                raise FifoReadError(_join(parts), lost=words, cause=exc) from exc
            parts.append(self._decode_words(data))
            done += words
        return _join(parts)

    def _decode_words(self, data: bytes) -> np.ndarray:
        words = np.frombuffer(data, dtype=np.uint8).reshape(-1, WORD_SIZE)
        accelerometer = (words[:, 0] >> 3) == TAG_ACCELEROMETER
        if not accelerometer.all():
            self._counts["unexpected_tags"] += int((~accelerometer).sum())
            self._log.warning(
                "tags",
                "%s: skipped FIFO words that are not accelerometer data (%d so far)",
                self.name,
                self._counts["unexpected_tags"],
            )
        payload = np.ascontiguousarray(words[accelerometer, 1:])
        return payload.view("<i2").reshape(-1, 3).astype(np.int32)

    def _standby(self, registers: RegisterBus) -> None:
        registers.write(CTRL1_XL, 0)

    def _to_g(self, counts: np.ndarray) -> tuple[np.ndarray, bool]:
        saturated = bool(np.isin(counts, (-32768, 32767)).any())
        return counts.astype(np.float64) * self._g_per_count, saturated


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty((0, 3), dtype=np.int32)
    return np.concatenate(parts)
