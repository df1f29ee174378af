"""Quartiles, median and extremes of many rows at once, from int64 sort keys.

The quantile ``q`` of a sorted row ``x`` of ``n`` values is
``x[j] + g * (x[j+1] - x[j])`` with ``j + g = (n - 1) * q``, numpy's default
("linear") method, so each quantile needs at most two order statistics.

Two ideas keep this cheap:

- float64 values are mapped to int64 keys that sort the same way, because
  numpy compares int64 about twice as fast as it compares float64 (whose
  comparison must place NaN);
- with many rows, each row is partitioned at the middle pivot and then each
  side at its own pivot, about two passes in all (numpy's multi-``kth``
  partition is several times slower on 2-D arrays).  The segments
  ``[0, j1]``, ``[j1 + 1, j2]``, ... ``[jP + 1, n)`` then hold consecutive
  order statistics, so one ``minimum.reduceat`` returns ``x[0]`` and every
  ``x[j+1]``.  With few rows the cost is in the number of numpy calls, not
  in the passes, and one sort of every row of every sample set, padded to
  a common length with the largest key, is cheaper.

Several sample sets (the samples, the amplitude spectrum) are handled in the
same calls from the gathering step on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgemon.features._workspace import Workspace

__all__ = ["QUANTILES", "order_statistics"]

#: Quantiles provided, by name, in the order returned.
QUANTILES = (("q25", 0.25), ("median", 0.5), ("q75", 0.75))

#: Up to this many keys in a batch, one sort is cheaper than the partitions
#: and the reductions after them, because each numpy call costs about a
#: microsecond.  Measured with numpy 2.4 on an AMD EPYC (Zen 3).
SORT_MAX_KEYS = 4096

#: All bits of an int64 but the sign.
_MAGNITUDE_BITS = np.int64(0x7FFF_FFFF_FFFF_FFFF)
_LARGEST_KEY = np.iinfo(np.int64).max


def flip_negative(bits: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Map float64 bit patterns (as int64) to int64 keys that sort like the floats, or back.

    A non-negative float's bit pattern already sorts like its value; a
    negative float's magnitude bits are flipped so that larger magnitudes
    sort lower.  The map is its own inverse and leaves non-negative values
    unchanged.  ``out`` must not share memory with ``bits``.
    """
    np.right_shift(bits, 63, out=out)
    np.bitwise_and(out, _MAGNITUDE_BITS, out=out)
    np.bitwise_xor(out, bits, out=out)
    return out


@dataclass(frozen=True)
class _OrderPlan:
    """Pivots and gathering positions for rows of ``n`` values.

    Gathered keys have the columns ``[x[0], x[j1+1] ... x[jP+1], x[j1] ...
    x[jP], x[n-1]]``.
    """

    #: ``(start, stop, kth)``: partition ``keys[:, start:stop]`` at ``kth``, in this order.
    partitions: tuple[tuple[int, int, int], ...]
    #: Sorted distinct pivots ``j``.
    pivots: np.ndarray
    #: Start of each segment for ``minimum.reduceat``: 0, then ``j + 1`` per pivot.
    segments: np.ndarray
    #: Position in a sorted row of every gathered column.
    sorted_columns: np.ndarray
    #: Gathered columns holding each quantile's ``x[j]``, then each one's ``x[j+1]``.
    bounds: np.ndarray
    #: Interpolation weight ``g`` of each quantile.
    weights: np.ndarray


@functools.lru_cache(maxsize=16)
def _order_plan(n: int) -> _OrderPlan:
    positions = []
    for _, q in QUANTILES:
        h = (n - 1) * q
        positions.append((math.floor(h), h - math.floor(h)))
    pivots = sorted({j for j, _ in positions})

    partitions: list[tuple[int, int, int]] = []

    def split(start: int, stop: int, inside: list[int]) -> None:
        if not inside:
            return
        middle = len(inside) // 2
        pivot = inside[middle]
        partitions.append((start, stop, pivot - start))
        split(start, pivot, inside[:middle])
        split(pivot + 1, stop, inside[middle + 1 :])

    split(0, n, pivots)

    n_pivots = len(pivots)
    successor_column = {j: 1 + i for i, j in enumerate(pivots)}
    pivot_column = {j: 1 + n_pivots + i for i, j in enumerate(pivots)}
    lower = [pivot_column[j] for j, _ in positions]
    upper = [successor_column[j] if g > 0 else pivot_column[j] for j, g in positions]
    # Index arrays rather than tuples: numpy converts a tuple index on every use.
    return _OrderPlan(
        partitions=tuple(partitions),
        pivots=np.array(pivots, dtype=np.intp),
        segments=np.array([0, *(j + 1 for j in pivots)], dtype=np.intp),
        sorted_columns=np.array([0, *(j + 1 for j in pivots), *pivots, n - 1], dtype=np.intp),
        bounds=np.array(lower + upper, dtype=np.intp),
        weights=np.array([g for _, g in positions]),
    )


@functools.lru_cache(maxsize=32)
def _row_plans(lengths: tuple[int, ...], n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per-row sorted positions, bounds and weights for sets of ``lengths``, ``n_rows`` each."""
    plans = [_order_plan(n) for n in lengths]
    arrays = []
    for field in ("sorted_columns", "bounds", "weights"):
        array = np.repeat(np.stack([getattr(plan, field) for plan in plans]), n_rows, axis=0)
        array.setflags(write=False)  # shared through the cache
        arrays.append(array)
    return tuple(arrays)


def _fill_keys(values: np.ndarray, keys: np.ndarray, nonnegative: bool) -> None:
    bits = values.view(np.int64)
    if nonnegative:
        np.copyto(keys, bits)
    else:
        flip_negative(bits, keys)


def order_statistics(
    sets: Sequence[tuple[np.ndarray, bool]], workspace: Workspace
) -> dict[str, np.ndarray]:
    """Compute the quartiles, median and extremes of every row of several sample sets.

    Parameters
    ----------
    sets : sequence of (values, nonnegative)
        ``values`` of shape (n_rows, n), float64, C-contiguous, the same
        ``n_rows`` for every set and ``n >= 16``; ``nonnegative`` is True
        when no value is negative or -0.0, so its bit patterns serve as
        keys as they are.
    workspace : Workspace

    Returns
    -------
    dict of str to ndarray of shape (n_sets, n_rows)
        ``"q25"``, ``"median"``, ``"q75"``, ``"min"`` and ``"max"``.
    """
    n_rows = sets[0][0].shape[0]
    lengths = tuple(values.shape[1] for values, _ in sets)
    sorted_columns, bounds, weights = _row_plans(lengths, n_rows)

    width = max(lengths)
    if n_rows * width * len(sets) <= SORT_MAX_KEYS:
        keys = workspace.array("order.sorted", (len(sets) * n_rows, width), np.int64)
        for i, (values, nonnegative) in enumerate(sets):
            block = keys[i * n_rows : (i + 1) * n_rows]
            _fill_keys(values, block[:, : values.shape[1]], nonnegative)
            block[:, values.shape[1] :] = _LARGEST_KEY
        keys.sort(axis=1)
        picked = np.take_along_axis(keys, sorted_columns, axis=1)
    else:
        picked = np.empty((len(sets) * n_rows, sorted_columns.shape[1]), dtype=np.int64)
        for i, (values, nonnegative) in enumerate(sets):
            plan = _order_plan(values.shape[1])
            keys = workspace.array(f"order.partitioned{i}", values.shape, np.int64)
            _fill_keys(values, keys, nonnegative)
            for start, stop, kth in plan.partitions:
                keys[:, start:stop].partition(kth, axis=1)
            rows = picked[i * n_rows : (i + 1) * n_rows]
            n_pivots = len(plan.pivots)
            rows[:, : 1 + n_pivots] = np.minimum.reduceat(keys, plan.segments, axis=1)
            rows[:, 1 + n_pivots : -1] = keys[:, plan.pivots]
            np.maximum.reduce(keys[:, int(plan.pivots[-1]) :], axis=1, out=rows[:, -1])

    floats = flip_negative(picked, np.empty_like(picked)).view(np.float64)
    n_quantiles = len(QUANTILES)
    gathered = np.take_along_axis(floats, bounds, axis=1)
    lower = gathered[:, :n_quantiles]
    quantiles = lower + weights * (gathered[:, n_quantiles:] - lower)

    shape = (len(sets), n_rows)
    result = {name: quantiles[:, i].reshape(shape) for i, (name, _) in enumerate(QUANTILES)}
    result["min"] = floats[:, 0].reshape(shape)
    result["max"] = floats[:, -1].reshape(shape)
    return result
