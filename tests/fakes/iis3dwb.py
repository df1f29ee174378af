"""Register-level fake of an ST IIS3DWB on SPI (``xfer2``).

Modelled from ST's register driver for the part (``iis3dwb_reg.h``):
WHO_AM_I 0x7B, software reset in CTRL3_C, CTRL1_XL XL_EN and FS_XL fields,
FIFO_CTRL3 BDR_XL and FIFO_CTRL4 continuous mode, FIFO_STATUS1/2 with the
10-bit level and the overrun bit, and 7-byte FIFO words (tag, X, Y, Z) read
in bursts from FIFO_DATA_OUT_TAG. A burst of more than one word needs
IF_INC and the CTRL5_C rounding setting that wraps 0x7E back to 0x78.
"""

from __future__ import annotations

import numpy as np

from fakes.fifo_chip import FakeFifoChip, bus_error

(
    FIFO_CTRL3,
    FIFO_CTRL4,
    WHO_AM_I,
    CTRL1_XL,
    CTRL3_C,
    CTRL5_C,
    FIFO_STATUS1,
    FIFO_STATUS2,
    INTERNAL_FREQ_FINE,
    FIFO_DATA_OUT_TAG,
) = (0x09, 0x0A, 0x0F, 0x10, 0x12, 0x14, 0x3A, 0x3B, 0x63, 0x78)
SENSITIVITY_MG = {0b00: 0.061, 0b10: 0.122, 0b11: 0.244, 0b01: 0.488}
WORD = 7


class FakeIis3dwb(FakeFifoChip):
    """An IIS3DWB that serves SPI transfers on a simulated clock.

    Parameters
    ----------
    reset_reads : int
        Reads of CTRL3_C during which SW_RESET stays set after a reset;
        a negative value never finishes the reset.
    freq_fine : int
        INTERNAL_FREQ_FINE; the fake samples at 26667 * (1 + 0.0015 * freq_fine) Hz.
    temperature_every : int
        Put a temperature word (tag 0x03) into the FIFO after every this many
        samples; 0 for none.
    """

    def __init__(
        self, clock, signal, *, device_id=0x7B, reset_reads=2, freq_fine=0, temperature_every=0
    ):
        super().__init__(clock, signal, fifo_depth=512)
        self.registers = bytearray(0x80)
        self.registers[WHO_AM_I] = device_id
        self.registers[CTRL3_C] = 0x04
        self.registers[INTERNAL_FREQ_FINE] = freq_fine & 0xFF
        self.freq_fine = freq_fine
        self.reset_reads = reset_reads
        self.resetting = 0
        self.temperature_every = temperature_every

    # Chip model.

    def measuring(self):
        return (self.registers[CTRL1_XL] >> 5) == 0b101

    def odr(self):
        return 26667.0 * (1 + 0.0015 * self.freq_fine)

    def sensitivity(self):
        return SENSITIVITY_MG[(self.registers[CTRL1_XL] >> 2) & 0b11] / 1000

    def to_counts(self, g):
        return np.clip(np.rint(g / self.sensitivity()), -32768, 32767).astype(np.int16)

    def batching(self):
        return (self.registers[FIFO_CTRL4] & 0b111) == 0b110 and (
            self.registers[FIFO_CTRL3] & 0x0F
        ) == 0b1010

    def update(self):
        if not self.batching():
            self.fifo.clear()
        before = self.produced
        super().update()
        if not self.batching():
            self.fifo.clear()
        if self.temperature_every:
            for n in range(before + 1, self.produced + 1):
                if n % self.temperature_every == 0 and len(self.fifo) < self.fifo_depth:
                    self.fifo.append(None)

    def word(self, entry):
        if entry is None:
            return [0x03 << 3] + [0x10, 0x00] * 3
        return [0x02 << 3, *entry.astype("<i2").tobytes()]

    def read(self, register, length):
        if register == FIFO_DATA_OUT_TAG:
            assert length % WORD == 0, "FIFO reads must be whole 7-byte words"
            if length > WORD:
                assert self.registers[CTRL3_C] & 0x04, "burst without IF_INC"
                assert (self.registers[CTRL5_C] >> 5) & 0b11 == 0b01, "burst without rounding"
            data = []
            for _ in range(length // WORD):
                data += self.word(self.fifo.popleft()) if self.fifo else [0] * WORD
            return data
        values = []
        for offset in range(length):
            values.append(self.read_register(register + offset))
        return values

    def read_register(self, register):
        if register == CTRL3_C and self.resetting:
            self.resetting -= 1
            if self.resetting == 0:
                self.registers[CTRL3_C] &= ~0x01
        if register == FIFO_STATUS1:
            return len(self.fifo) & 0xFF
        if register == FIFO_STATUS2:
            value = (len(self.fifo) >> 8) & 0x03
            if self.overrun:
                value |= 0x40
                self.overrun = False
            return value
        return self.registers[register]

    def write(self, register, value):
        if register == CTRL3_C and value & 0x01:
            keep = (self.registers[WHO_AM_I], self.registers[INTERNAL_FREQ_FINE])
            self.registers[:] = bytes(len(self.registers))
            self.registers[WHO_AM_I], self.registers[INTERNAL_FREQ_FINE] = keep
            self.registers[CTRL3_C] = 0x05
            self.resetting = self.reset_reads if self.reset_reads >= 0 else 10**9
            self.fifo.clear()
            return
        self.registers[register] = value
        self.update()

    # spidev.SpiDev calls.

    def xfer2(self, values):
        command, payload = values[0], values[1:]
        register = command & 0x7F
        reading = bool(command & 0x80)
        data_read = reading and register == FIFO_DATA_OUT_TAG
        if self.begin_transfer(data_read):
            if data_read:
                self.read(register, len(payload))  # the words are consumed all the same
            raise bus_error()
        if reading:
            return [0, *self.read(register, len(payload))]
        assert len(payload) == 1, "the driver writes one register per transfer"
        self.write(register, payload[0])
        return [0, 0]
