"""Register-level fake of an ADXL345 on SPI (``xfer2``) or I2C (``smbus2`` calls).

Modelled from the ADXL345 data sheet (Rev. G): DEVID 0xE5, BW_RATE rate
codes, DATA_FORMAT full resolution (256 counts per g), FIFO_CTL stream mode
with a 32-entry FIFO, FIFO_STATUS entries, INT_SOURCE overrun bit, and one
FIFO entry popped per 6-byte read of DATAX0..DATAZ1. Reading INT_SOURCE
clears the overrun bit here; the chip's exact clearing rule is not modelled.
"""

from __future__ import annotations

import numpy as np

from fakes.fifo_chip import FakeFifoChip, bus_error

DEVID, BW_RATE, POWER_CTL, INT_SOURCE, DATA_FORMAT, DATAX0, FIFO_CTL, FIFO_STATUS = (
    0x00,
    0x2C,
    0x2D,
    0x30,
    0x31,
    0x32,
    0x38,
    0x39,
)


class FakeAdxl345(FakeFifoChip):
    """An ADXL345 that serves register reads and writes on a simulated clock."""

    def __init__(self, clock, signal, *, device_id=0xE5, i2c_address=0x53):
        super().__init__(clock, signal, fifo_depth=32)
        self.registers = bytearray(0x40)
        self.registers[DEVID] = device_id
        self.registers[BW_RATE] = 0x0A
        self.i2c_address = i2c_address
        self.writes: list[tuple[int, int]] = []

    # Chip model.

    def measuring(self):
        return bool(self.registers[POWER_CTL] & 0x08)

    def odr(self):
        return 3200.0 / 2 ** (0x0F - (self.registers[BW_RATE] & 0x0F))

    def range_g(self):
        return 2 ** ((self.registers[DATA_FORMAT] & 0x03) + 1)

    def to_counts(self, g):
        assert self.registers[DATA_FORMAT] & 0x08, "the fake models full resolution only"
        limit = 256 * self.range_g()
        return np.clip(np.rint(g * 256), -limit, limit - 1).astype(np.int16)

    def stream_mode(self):
        return (self.registers[FIFO_CTL] >> 6) == 0b10

    def update(self):
        self.fifo_depth = 32 if self.stream_mode() else 1
        super().update()

    def read_register(self, register):
        if register == FIFO_STATUS:
            return len(self.fifo)
        if register == INT_SOURCE:
            value = 0
            if self.fifo:
                value |= 0x80
            if len(self.fifo) >= (self.registers[FIFO_CTL] & 0x1F):
                value |= 0x02
            if self.overrun:
                value |= 0x01
            self.overrun = False
            return value
        return self.registers[register]

    def read(self, register, length):
        if register == DATAX0 and length == 6:
            entry = self.fifo.popleft() if self.fifo else np.zeros(3, np.int16)
            return list(entry.astype("<i2").tobytes())
        return [self.read_register(register + i) for i in range(length)]

    def write(self, register, value):
        self.writes.append((register, value))
        self.registers[register] = value
        if register == FIFO_CTL and not self.stream_mode():
            self.fifo.clear()
        if register == POWER_CTL:
            self.update()

    def fail(self, register, length):
        """Fail a transfer; a data read still pops its entry, the worst case for the driver."""
        if register == DATAX0 and length == 6:
            self.read(register, length)
        raise bus_error()

    # spidev.SpiDev calls.

    def xfer2(self, values):
        command, payload = values[0], values[1:]
        register = command & 0x3F
        reading = bool(command & 0x80)
        if len(payload) > 1:
            assert command & 0x40, "multi-byte SPI transfer without the MB bit"
        data_read = reading and register == DATAX0 and len(payload) == 6
        if self.begin_transfer(data_read):
            self.fail(register, len(payload) if reading else 0)
        if reading:
            return [0, *self.read(register, len(payload))]
        for offset, value in enumerate(payload):
            self.write(register + offset, value)
        return [0] * len(values)

    # smbus2.SMBus calls.

    def _check_address(self, address):
        if address != self.i2c_address:
            raise OSError(6, f"No such device or address (nothing at {address:#04x})")

    def read_byte_data(self, address, register):
        self._check_address(address)
        if self.begin_transfer():
            self.fail(register, 1)
        return self.read(register, 1)[0]

    def read_i2c_block_data(self, address, register, length):
        self._check_address(address)
        assert length <= 32
        if self.begin_transfer(register == DATAX0 and length == 6):
            self.fail(register, length)
        return self.read(register, length)

    def write_byte_data(self, address, register, value):
        self._check_address(address)
        if self.begin_transfer():
            self.fail(register, 0)
        self.write(register, value)
