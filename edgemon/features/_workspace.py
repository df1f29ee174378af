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
        self._buffers: dict[tuple[str, tuple[int, ...], type], np.ndarray] = {}
        # Views by exact shape, so that a steady batch size costs one lookup.
        self._views: dict[tuple[str, tuple[int, ...], type], np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        """Return a C-contiguous scratch array of ``shape`` whose contents are undefined."""
        view = self._views.get((name, shape, dtype))
        if view is None:
            view = self._new_view(name, shape, dtype)
        return view

    def _new_view(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        key = (name, shape[1:], dtype)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape[0] < shape[0]:
            buffer = np.empty(shape, dtype=dtype)
            self._buffers[key] = buffer
            # Views of the old buffer would keep it alive; forget them.
            for stale in [k for k in self._views if (k[0], k[1][1:], k[2]) == key]:
                del self._views[stale]
        view = buffer[: shape[0]]
        self._views[(name, shape, dtype)] = view
        return view

    @property
    def nbytes(self) -> int:
        """Bytes held by all scratch arrays together."""
        return sum(buffer.nbytes for buffer in self._buffers.values())

    def clear(self) -> None:
        """Release every scratch array."""
        self._buffers.clear()
        self._views.clear()


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
