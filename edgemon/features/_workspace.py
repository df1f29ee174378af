"""Reusable scratch arrays and cached attributes, so that no work or allocation is repeated.

A :class:`Workspace` hands out named float64 or complex128 arrays whose first
axis can grow: a batch larger than any before reallocates that array once, and
smaller batches get a leading slice of it, which is still C-contiguous.  The
memory held therefore depends on the largest batch seen, never on how many
batches have passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["Workspace", "cached_attribute"]

T = TypeVar("T")


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


class cached_attribute(Generic[T]):  # noqa: N801 - named like functools.cached_property
    """Compute an attribute on first access and store it in the instance's ``__dict__``.

    ``functools.cached_property`` does the same, but before Python 3.12 it
    takes a lock on every first access, which costs more than many of the
    array operations cached here.
    """

    def __init__(self, function: Callable[[Any], T]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = self.function(instance)
        instance.__dict__[self.name] = value
        return value
