"""Quartiles, median and extremes of many rows at once, from int64 sort keys.

The quantile ``q`` of a sorted row ``x`` of ``n`` values is
``x[j] + g * (x[j+1] - x[j])`` with ``j + g = (n - 1) * q``, numpy's default
("linear") method, so each quantile needs at most two order statistics.

Two ideas keep this cheap:

- with many rows, float64 values are mapped to int64 keys that sort the
  same way, because numpy's ``partition`` compares int64 about twice as
  fast as float64 (whose comparison must place NaN).  Each row is
  partitioned at the middle pivot and then each side at its own pivot,
  about two passes in all (numpy's multi-``kth`` partition is several
  times slower on 2-D arrays).  The segments ``[0, j1]``, ``[j1 + 1, j2]``,
  ... ``[jP + 1, n)`` then hold consecutive order statistics, so one
  ``minimum.reduceat`` returns ``x[0]`` and every ``x[j+1]``;
- with few rows the cost is in the number of numpy calls, not in the
  passes, and sorting the values of each set is cheaper.

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

#: Up to this many values in a batch, one sort is cheaper than the
#: partitions and the reductions after them, because each numpy call costs
#: about a microsecond.  Measured with numpy 2.4 on an AMD EPYC (Zen 3).
SORT_MAX_VALUES = 4096

#: All bits of an int64 but the sign.
_MAGNITUDE_BITS = np.int64(0x7FFF_FFFF_FFFF_FFFF)


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

    Both paths end with the same gathered columns: each quantile's ``x[j]``,
    then each one's ``x[j+1]`` (``x[j]`` again where ``g = 0``), then
    ``x[0]`` and ``x[n-1]``.
    """

    #: ``(start, stop, kth)``: partition ``keys[:, start:stop]`` at ``kth``, in this order.
    partitions: tuple[tuple[int, int, int], ...]
    #: Sorted distinct pivots ``j``.
    pivots: np.ndarray
    #: Start of each segment for ``minimum.reduceat``: 0, then ``j + 1`` per pivot.
    segments: np.ndarray
    #: Position in a sorted row of each gathered column.
    sorted_positions: np.ndarray
    #: Column of each gathered column in the partition path's keys
    #: ``[x[0], x[j1+1] ... x[jP+1], x[j1] ... x[jP], x[n-1]]``.
    picked_columns: np.ndarray
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
    upper = [j + 1 if g > 0 else j for j, g in positions]
    picked_upper = [successor_column[j] if g > 0 else pivot_column[j] for j, g in positions]
    # Index arrays rather than tuples: numpy converts a tuple index on every use.
    return _OrderPlan(
        partitions=tuple(partitions),
        pivots=np.array(pivots, dtype=np.intp),
        segments=np.array([0, *(j + 1 for j in pivots)], dtype=np.intp),
        sorted_positions=np.array([*(j for j, _ in positions), *upper, 0, n - 1], dtype=np.intp),
        picked_columns=np.array(
            [*(pivot_column[j] for j, _ in positions), *picked_upper, 0, 1 + 2 * n_pivots],
            dtype=np.intp,
        ),
        weights=np.array([g for _, g in positions]),
    )


@dataclass(frozen=True)
class _BatchPlan:
    """Flat gathering indices for ``n_sets`` sets of ``n_rows`` rows (see :func:`_batch_plan`)."""

    #: Flat indices into sorted values of shape (n_sets * n_rows, width).
    sorted_flat: np.ndarray
    #: Flat indices into the partition path's keys of shape (n_sets * n_rows, 2 + 2 n_pivots).
    picked_flat: np.ndarray
    #: Interpolation weight of each quantile, shape (n_sets * n_rows, n_quantiles).
    weights: np.ndarray


@functools.lru_cache(maxsize=32)
def _batch_plan(lengths: tuple[int, ...], n_rows: int) -> _BatchPlan:
    """Precompute, per row of a batch, where its order statistics are.

    ``ndarray.take`` with flat indices is one C call, where ``take_along_axis``
    costs several Python-level steps per call.
    """
    plans = [_order_plan(n) for n in lengths]

    def per_row(field: str) -> np.ndarray:
        return np.repeat(np.stack([getattr(plan, field) for plan in plans]), n_rows, axis=0)

    rows = np.arange(len(plans) * n_rows)[:, np.newaxis]
    n_picked = 2 + 2 * len(plans[0].pivots)
    arrays = _BatchPlan(
        sorted_flat=rows * max(lengths) + per_row("sorted_positions"),
        picked_flat=rows * n_picked + per_row("picked_columns"),
        weights=per_row("weights"),
    )
    for array in (arrays.sorted_flat, arrays.picked_flat, arrays.weights):
        array.setflags(write=False)  # shared through the cache
    return arrays


def copy_values(source: np.ndarray, out: np.ndarray) -> None:
    """Copy ``source`` into ``out`` through a ufunc loop rather than ``memcpy``.

    On AMD Zen 3 with glibc, ``np.copyto`` of a few tens of KiB runs about
    eight times slower when the two buffers sit at nearly the same offset
    within a 4 KiB page.  Measured with numpy 2.4: 13 us instead of 1.5 us
    for 32 KiB.  Scratch arrays of equal size often sit like that.  ``np.positive`` copies
    int64 and float64 values exactly, NaN and -0.0 included.
    """
    np.positive(source, out=out)


def _fill_keys(values: np.ndarray, keys: np.ndarray, nonnegative: bool) -> None:
    bits = values.view(np.int64)
    if nonnegative:
        copy_values(bits, keys)
    else:
        flip_negative(bits, keys)


def order_statistics(
    sets: Sequence[tuple[np.ndarray, bool]], workspace: Workspace
) -> dict[str, np.ndarray]:
    """Compute the quartiles, median and extremes of every row of several sample sets.

    Parameters
    ----------
    sets : sequence of (values, nonnegative)
        ``values`` has shape (n_rows, n), float64, C-contiguous, with the
        same ``n_rows`` for every set and ``n >= 16``.  ``nonnegative`` is
        True when no value is negative or -0.0, so that the bit patterns
        serve as keys as they are.
    workspace : Workspace

    Returns
    -------
    dict of str to ndarray of shape (n_sets, n_rows)
        ``"q25"``, ``"median"``, ``"q75"``, ``"min"`` and ``"max"``.
    """
    n_rows = sets[0][0].shape[0]
    lengths = tuple(values.shape[1] for values, _ in sets)
    batch_plan = _batch_plan(lengths, n_rows)

    width = max(lengths)
    if n_rows * width * len(sets) <= SORT_MAX_VALUES:
        # Few values: the number of numpy calls matters more than the speed
        # of comparisons, so sort the floats themselves.  Each set fills the
        # leading columns of its rows; the columns after it are never read.
        ordered = workspace.array("order.sorted", (len(sets) * n_rows, width))
        for i, (values, _) in enumerate(sets):
            block = ordered[i * n_rows : (i + 1) * n_rows, : values.shape[1]]
            copy_values(values, block)
            block.sort(axis=1)
        floats = ordered.take(batch_plan.sorted_flat)
    else:
        n_picked = batch_plan.picked_flat.shape[1]
        picked_keys = np.empty((len(sets) * n_rows, n_picked), dtype=np.int64)
        for i, (values, nonnegative) in enumerate(sets):
            plan = _order_plan(values.shape[1])
            keys = workspace.array(f"order.partitioned{i}", values.shape, np.int64)
            _fill_keys(values, keys, nonnegative)
            for start, stop, kth in plan.partitions:
                keys[:, start:stop].partition(kth, axis=1)
            rows = picked_keys[i * n_rows : (i + 1) * n_rows]
            n_pivots = len(plan.pivots)
            rows[:, : 1 + n_pivots] = np.minimum.reduceat(keys, plan.segments, axis=1)
            rows[:, 1 + n_pivots : -1] = keys[:, plan.pivots]
            np.maximum.reduce(keys[:, int(plan.pivots[-1]) :], axis=1, out=rows[:, -1])
        picked = flip_negative(picked_keys, np.empty_like(picked_keys)).view(np.float64)
        floats = picked.take(batch_plan.picked_flat)

    n_quantiles = len(QUANTILES)
    lower = floats[:, :n_quantiles]
    quantiles = lower + batch_plan.weights * (floats[:, n_quantiles : 2 * n_quantiles] - lower)
    quantiles = quantiles.reshape(len(sets), n_rows, n_quantiles)
    extremes = floats[:, 2 * n_quantiles :].reshape(len(sets), n_rows, 2)
    return {
        "q25": quantiles[:, :, 0],
        "median": quantiles[:, :, 1],
        "q75": quantiles[:, :, 2],
        "min": extremes[:, :, 0],
        "max": extremes[:, :, 1],
    }
