"""Reusable scratch arrays, so that a steady stream of batches allocates nothing new.

A :class:`Workspace` hands out named float64 or complex128 arrays whose first
axis can grow: a batch larger than any before reallocates that array once, and
smaller batches get a leading slice of it, which is still C-contiguous.  The
memory held therefore depends on the largest batch seen, never on how many
batches have passed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Workspace"]


class Workspace:
    """Named scratch arrays indexed by ``(name, trailing shape, dtype)``.

    Not thread-safe: each thread that transforms windows needs its own
    extractor, and so its own workspace.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...], np.dtype], np.ndarray] = {}

    def array(
        self, name: str, shape: tuple[int, ...], dtype: type = np.float64
    ) -> np.ndarray:
        """Return a C-contiguous scratch array of ``shape`` whose contents are undefined."""
        key = (name, shape[1:], np.dtype(dtype))
        buffer = self._arrays.get(key)
        if buffer is None or buffer.shape[0] < shape[0]:
            buffer = np.empty(shape, dtype=dtype)
            self._arrays[key] = buffer
        return buffer[: shape[0]]

    @property
    def nbytes(self) -> int:
        """Bytes held by all scratch arrays together."""
        return sum(buffer.nbytes for buffer in self._arrays.values())

    def clear(self) -> None:
        """Release every scratch array."""
        self._arrays.clear()
