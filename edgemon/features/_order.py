"""Quartiles, median and extremes of many rows at once.

The quantile ``q`` of a sorted row ``x`` of ``n`` values is
``x[j] + g * (x[j+1] - x[j])`` with ``j + g = (n - 1) * q``, numpy's default
("linear") method, so each quantile needs at most two order statistics.
Four methods find them, each exact.  :func:`order_statistics` uses the
compiled one when it was built, and otherwise the cheapest numpy method for
the batch size:

- ``"sort"``: with few values the cost is in the number of numpy calls, not
  in the comparisons, so the values of each set are simply sorted;
- ``"partition"``: float64 values are mapped to int64 keys that sort the same
  way, because numpy's ``partition`` compares int64 faster than float64
  (whose comparison must place NaN), and one partition puts every needed
  position, the extremes included, in its sorted place;
- ``"histogram"``: a selection by counting, whose passes over the data are
  branch-free numpy loops (see :func:`_histogram_order`).  On large batches
  it costs less than a partition, whose comparisons the CPU cannot predict.
- ``"compiled"``: the same selection by counting, one row at a time in C
  (``_select.c``), which costs less than any of the above at every batch
  size.  It is the default whenever the extension was built, which needs a
  C compiler when edgemon is installed; :data:`COMPILED` is True when it was.

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

__all__ = ["COMPILED", "METHODS", "QUANTILES", "order_statistics"]

#: Quantiles provided, by name, in the order returned.
QUANTILES = (("q25", 0.25), ("median", 0.5), ("q75", 0.75))

#: Methods of :func:`order_statistics`.
METHODS = ("sort", "partition", "histogram", "compiled")

try:
    from edgemon.features import _select
except ImportError:  # installed without a C compiler; the numpy methods give the same results
    _select = None

#: True when the C kernel of the ``"compiled"`` method is available.
COMPILED = _select is not None

#: Up to this many values in a batch, one sort is cheaper than the
#: partitions and the reductions after them, because each numpy call costs
#: about a microsecond.  Measured with numpy 2.4 on AMD EPYC (Zen 3 and Zen 4).
SORT_MAX_VALUES = 4096

#: From this many rows (sets times windows) on, the histogram selection is
#: cheaper than a partition: 38 against 46 us per window at 8 rows, 25
#: against 50 at 32 rows.  Measured with numpy 2.4 on AMD EPYC (Zen 4) with
#: windows of 2048 samples and their spectra.
HISTOGRAM_MIN_ROWS = 8

#: Buckets per row of the histogram selection.  More buckets leave fewer
#: candidates to sort but make the counts longer to scan.
HISTOGRAM_BUCKETS = 1024

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
    """Positions of the order statistics needed from rows of ``n`` values.

    Every method ends with the same gathered columns: each quantile's
    ``x[j]``, then each one's ``x[j+1]`` (``x[j]`` again where ``g = 0``),
    then ``x[0]`` and ``x[n-1]``.
    """

    #: Position in a sorted row of each gathered column.
    sorted_positions: np.ndarray
    #: The distinct sorted positions, ascending: where the partition method
    #: puts each row's values in their sorted place.
    partition_positions: np.ndarray
    #: The same as int64, as the compiled method reads them.
    compiled_positions: np.ndarray
    #: Index in :attr:`partition_positions` of each gathered column.
    distinct_index: np.ndarray
    #: Interpolation weight ``g`` of each quantile.
    weights: np.ndarray


@functools.lru_cache(maxsize=16)
def _order_plan(n: int) -> _OrderPlan:
    lower = []
    weights = []
    for _, q in QUANTILES:
        h = (n - 1) * q
        lower.append(math.floor(h))
        weights.append(h - math.floor(h))
    upper = [j + 1 if g > 0 else j for j, g in zip(lower, weights, strict=True)]
    # Index arrays rather than tuples: numpy converts a tuple index on every use.
    sorted_positions = np.array([*lower, *upper, 0, n - 1], dtype=np.intp)
    distinct = np.unique(sorted_positions)
    return _OrderPlan(
        sorted_positions=sorted_positions,
        partition_positions=distinct,
        compiled_positions=distinct.astype(np.int64),
        distinct_index=np.searchsorted(distinct, sorted_positions),
        weights=np.array(weights),
    )


@dataclass(frozen=True)
class _BatchPlan:
    """Flat gathering indices for ``n_sets`` sets of ``n_rows`` rows (see :func:`_batch_plan`)."""

    #: Flat indices into sorted values of shape (n_sets * n_rows, width).
    sorted_flat: np.ndarray
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
    arrays = _BatchPlan(
        sorted_flat=rows * max(lengths) + per_row("sorted_positions"),
        weights=per_row("weights"),
    )
    for array in (arrays.sorted_flat, arrays.weights):
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
    sets: Sequence[tuple[np.ndarray, bool]], workspace: Workspace, method: str | None = None
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
    method : {"sort", "partition", "histogram", "compiled"}, optional
        By default ``"compiled"`` if it was built, else the cheapest numpy
        method for the batch size.  All give the same results for rows
        without NaN or Inf.

    Returns
    -------
    dict of str to ndarray of shape (n_sets, n_rows)
        ``"q25"``, ``"median"``, ``"q75"``, ``"min"`` and ``"max"``.  Only
        ``"min"`` and ``"max"`` are defined for a row holding NaN or Inf:
        NaN when the row contains NaN, both of them under ``"histogram"``
        and ``"compiled"`` and at least one of the two otherwise.
    """
    n_rows = sets[0][0].shape[0]
    lengths = tuple(values.shape[1] for values, _ in sets)
    width = max(lengths)
    if method is None:
        if COMPILED:
            method = "compiled"
        elif n_rows * width * len(sets) <= SORT_MAX_VALUES:
            method = "sort"
        elif n_rows * len(sets) >= HISTOGRAM_MIN_ROWS:
            method = "histogram"
        else:
            method = "partition"

    if method == "sort":
        floats = _sorted_order(sets, workspace, lengths)
    elif method == "partition":
        floats = _partitioned_order(sets, workspace, lengths)
    elif method == "histogram":
        floats = _histogram_order(sets, workspace, lengths)
    elif method == "compiled" and COMPILED:
        floats = _compiled_order(sets, lengths)
    elif method == "compiled":
        raise ValueError(
            "method 'compiled' needs the C extension edgemon.features._select, which was not "
            "built; reinstall edgemon with a C compiler and the Python headers "
            "(apt-get install gcc python3-dev)"
        )
    else:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")

    batch_plan = _batch_plan(lengths, n_rows)
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


def _sorted_order(
    sets: Sequence[tuple[np.ndarray, bool]], workspace: Workspace, lengths: tuple[int, ...]
) -> np.ndarray:
    """Sort each row and gather its order statistics.

    Returns an array of shape (n_sets * n_rows, 2 n_quantiles + 2) whose
    columns are those described in :class:`_OrderPlan`.
    """
    n_rows = sets[0][0].shape[0]
    # Each set fills the leading columns of its rows; the columns after it
    # are never read.
    ordered = workspace.array("order.sorted", (len(sets) * n_rows, max(lengths)))
    for i, (values, _) in enumerate(sets):
        block = ordered[i * n_rows : (i + 1) * n_rows, : values.shape[1]]
        copy_values(values, block)
        block.sort(axis=1)
    return ordered.take(_batch_plan(lengths, n_rows).sorted_flat)


def _partitioned_order(
    sets: Sequence[tuple[np.ndarray, bool]], workspace: Workspace, lengths: tuple[int, ...]
) -> np.ndarray:
    """Partition int64 keys of each row and gather as :func:`_sorted_order` does."""
    n_rows = sets[0][0].shape[0]
    n_quantiles = len(QUANTILES)
    picked_keys = np.empty((len(sets) * n_rows, 2 * n_quantiles + 2), dtype=np.int64)
    for i, (values, nonnegative) in enumerate(sets):
        plan = _order_plan(values.shape[1])
        keys = workspace.array(f"order.partitioned{i}", values.shape, np.int64)
        _fill_keys(values, keys, nonnegative)
        keys.partition(plan.partition_positions, axis=1)
        keys.take(plan.sorted_positions, axis=1, out=picked_keys[i * n_rows : (i + 1) * n_rows])
    return flip_negative(picked_keys, np.empty_like(picked_keys)).view(np.float64)


def _compiled_order(
    sets: Sequence[tuple[np.ndarray, bool]], lengths: tuple[int, ...]
) -> np.ndarray:
    """Select each row's order statistics in C and gather them as :func:`_sorted_order` does."""
    n_rows = sets[0][0].shape[0]
    n_quantiles = len(QUANTILES)
    floats = np.empty((len(sets) * n_rows, 2 * n_quantiles + 2))
    for i, (values, _) in enumerate(sets):
        plan = _order_plan(lengths[i])
        selected = np.empty((n_rows, len(plan.compiled_positions)))
        _select.select_rows(values, plan.compiled_positions, selected)
        selected.take(plan.distinct_index, axis=1, out=floats[i * n_rows : (i + 1) * n_rows])
    return floats


@dataclass(frozen=True)
class _HistogramPlan:
    """Constant arrays of the histogram selection for one batch shape.

    The rows of all sets are laid end to end: set ``s`` starts at
    ``starts[s]`` and row ``i`` of all the rows is number ``i`` in its set's
    order.
    """

    #: Start of each set in the flat layout.
    starts: tuple[int, ...]
    #: Position of each target in the flat layout, ascending within each
    #: row; shape (n_sets * n_rows * 2 n_quantiles,).
    targets: np.ndarray
    #: First and last bucket of each row, as floats; shape (n_sets * n_rows, 1).
    first_buckets: np.ndarray
    last_buckets: np.ndarray
    #: Gathered column of each target, in the ascending target order.
    columns: np.ndarray


@functools.lru_cache(maxsize=32)
def _histogram_plan(lengths: tuple[int, ...], n_rows: int) -> _HistogramPlan:
    n_quantiles = len(QUANTILES)
    # j and the upper neighbour of each quantile, in ascending order:
    # j_q25 <= upper_q25 <= j_median <= ...
    columns = np.array([c for q in range(n_quantiles) for c in (q, n_quantiles + q)])
    starts = np.cumsum([0, *(n * n_rows for n in lengths)])
    targets = [
        start + np.arange(n_rows)[:, np.newaxis] * n + _order_plan(n).sorted_positions[columns]
        for start, n in zip(starts, lengths, strict=False)
    ]
    first = np.arange(len(lengths) * n_rows, dtype=np.float64)[:, np.newaxis] * HISTOGRAM_BUCKETS
    plan = _HistogramPlan(
        starts=tuple(int(start) for start in starts[:-1]),
        targets=np.concatenate(targets).reshape(-1),
        first_buckets=first,
        last_buckets=first + (HISTOGRAM_BUCKETS - 1),
        columns=columns,
    )
    for array in (plan.targets, plan.first_buckets, plan.last_buckets, plan.columns):
        array.setflags(write=False)  # shared through the cache
    return plan


def _histogram_order(
    sets: Sequence[tuple[np.ndarray, bool]], workspace: Workspace, lengths: tuple[int, ...]
) -> np.ndarray:
    """Select each row's order statistics by counting, and gather them as :func:`_sorted_order`.

    Each row's range ``[min, max]`` is cut into ``B = HISTOGRAM_BUCKETS``
    equal buckets, the values of each bucket are counted, and the cumulative
    counts tell which bucket contains each needed rank ``j``.  Only the values
    in those buckets, usually a few dozen per row, are then sorted.  The
    bucket of a value is ``floor((x - min) * scale)``, computed with rounding
    that never decreases as ``x`` grows, so every value of a bucket is at
    least every value of the buckets below it and the counts give exact
    ranks.  Row ``i`` of all the rows uses buckets ``i * B`` to
    ``i * B + B - 1``, so one ``bincount`` serves the batch.  A row whose
    values crowd into one bucket (a constant row, one huge outlier, NaN)
    costs a sort of that row, nothing worse.
    """
    n_rows = sets[0][0].shape[0]
    n_all = len(sets) * n_rows
    plan = _histogram_plan(lengths, n_rows)
    n_values = n_rows * sum(lengths)

    extremes = np.empty((n_all, 2))
    scaled = workspace.array("order.scaled", (n_values,))
    with np.errstate(all="ignore"):
        for i, (values, _) in enumerate(sets):
            rows = slice(i * n_rows, (i + 1) * n_rows)
            block = scaled[plan.starts[i] : plan.starts[i] + values.size].reshape(values.shape)
            lowest = np.minimum.reduce(values, axis=1, out=extremes[rows, 0])
            highest = np.maximum.reduce(values, axis=1, out=extremes[rows, 1])
            # A zero or subnormal span gives an infinite scale and so NaN or
            # Inf below.  fmin sends those to the row's last bucket, as it
            # does the values of a row containing NaN.
            scale = HISTOGRAM_BUCKETS / (highest - lowest)
            np.subtract(values, lowest[:, np.newaxis], out=block)
            np.multiply(block, scale[:, np.newaxis], out=block)
            np.add(block, plan.first_buckets[rows], out=block)
            np.fmin(block, plan.last_buckets[rows], out=block)
    buckets = workspace.array("order.buckets", (n_values,), np.intp)
    # Truncation is floor here: no value is below its row's first bucket.
    np.copyto(buckets, scaled, casting="unsafe")

    counts = np.bincount(buckets, minlength=n_all * HISTOGRAM_BUCKETS)
    ends = np.cumsum(counts)
    target_buckets = np.searchsorted(ends, plan.targets, side="right")
    rank_in_bucket = plan.targets - (ends[target_buckets] - counts[target_buckets])

    # A target's place among its row's candidates, the values of the row's
    # distinct target buckets in order: the candidates of the target buckets
    # below its own, plus its rank in its bucket.  Targets ascend within a
    # row, so equal buckets are neighbours.
    target_buckets = target_buckets.reshape(n_all, -1)
    sizes = counts.take(target_buckets)
    distinct_sizes = sizes.copy()
    distinct_sizes[:, 1:][target_buckets[:, 1:] == target_buckets[:, :-1]] = 0
    places = np.cumsum(distinct_sizes, axis=1) - sizes + rank_in_bucket.reshape(n_all, -1)

    # The candidates, one row each, sorted.  flatnonzero lists them row by row.
    chosen = np.zeros(counts.size, dtype=bool)
    chosen[target_buckets] = True
    candidates = np.flatnonzero(chosen.take(buckets))
    per_row = np.add.reduce(distinct_sizes, axis=1)
    row_starts = np.cumsum(per_row) - per_row
    candidate_rows = np.repeat(np.arange(n_all), per_row)
    within_row = np.arange(candidates.size) - np.repeat(row_starts, per_row)
    sorted_candidates = np.full((n_all, int(per_row.max())), np.inf)
    ends_of_sets = np.searchsorted(candidates, [*plan.starts[1:], n_values])
    first = 0
    for i, (values, _) in enumerate(sets):
        in_set = slice(first, ends_of_sets[i])
        sorted_candidates[candidate_rows[in_set], within_row[in_set]] = values.reshape(-1).take(
            candidates[in_set] - plan.starts[i]
        )
        first = ends_of_sets[i]
    sorted_candidates.sort(axis=1)

    n_quantiles = len(QUANTILES)
    floats = np.empty((n_all, 2 * n_quantiles + 2))
    floats[:, plan.columns] = np.take_along_axis(sorted_candidates, places, axis=1)
    floats[:, 2 * n_quantiles :] = extremes
    return floats
