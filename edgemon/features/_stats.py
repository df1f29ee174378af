"""Row-wise statistics of a 2-D float64 array, computed once and shared by every feature.

Each row is one sample set: the samples of one channel of one window, or the
amplitude spectrum of one.  :class:`SampleStatistics` computes each quantity
only when a feature first asks for it, and derives related quantities from
the same pass: one set of centred powers gives the standard deviation,
skewness and kurtosis, and one partition of a scratch copy gives the median,
both quartiles and the extremes.

Definitions (``n`` values per row, ``d = x - mean``): central moments
``m_k = sum(d**k) / n`` (ddof 0), ``skewness = m3 / m2**1.5``, Fisher
``kurtosis = m4 / m2**2 - 3`` (biased), and quantiles with numpy's default
linear interpolation between order statistics.  Rows whose variance is zero get
skewness and kurtosis 0 instead of 0/0.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from edgemon.features._workspace import Workspace

__all__ = ["SampleStatistics", "safe_ratio"]

#: Quantiles that the order statistics provide, by name.
_QUANTILES = (("q25", 0.25), ("median", 0.5), ("q75", 0.75))


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Divide element-wise, giving 0 where the denominator is 0 (a constant window)."""
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


class SampleStatistics:
    """Lazily computed statistics of each row of ``values``.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_values), float64, C-contiguous
        The sample sets, at least 4 values per row.  Read, never written.
    workspace : Workspace
        Supplies scratch arrays.
    prefix : str
        Distinguishes this object's scratch arrays from those of another
        :class:`SampleStatistics` alive at the same time.
    extremes_from_partition : bool, default=False
        Take the minimum and maximum from the partition that the median
        and quartiles need anyway.  Set it when those are requested too;
        otherwise two plain reductions are cheaper than a partition.
    """

    def __init__(
        self,
        values: np.ndarray,
        workspace: Workspace,
        prefix: str,
        *,
        extremes_from_partition: bool = False,
    ) -> None:
        self.values = values
        self._workspace = workspace
        self._prefix = prefix
        self._n = values.shape[1]
        self._extremes_from_partition = extremes_from_partition

    def _scratch(self, name: str) -> np.ndarray:
        return self._workspace.array(self._prefix + name, self.values.shape)

    # -- moments ------------------------------------------------------------

    @cached_property
    def mean(self) -> np.ndarray:
        """Arithmetic mean, shape (n_rows,)."""
        return np.add.reduce(self.values, axis=1) / self._n

    @cached_property
    def deviations(self) -> np.ndarray:
        """``values - mean``, shape (n_rows, n_values)."""
        out = self._scratch("deviations")
        np.subtract(self.values, self.mean[:, np.newaxis], out=out)
        return out

    @cached_property
    def _squared_deviations(self) -> np.ndarray:
        out = self._scratch("squared")
        np.multiply(self.deviations, self.deviations, out=out)
        return out

    @cached_property
    def variance(self) -> np.ndarray:
        """Second central moment ``m2`` (ddof 0), shape (n_rows,)."""
        return np.add.reduce(self._squared_deviations, axis=1) / self._n

    @cached_property
    def std(self) -> np.ndarray:
        """Standard deviation ``sqrt(m2)`` (ddof 0), shape (n_rows,)."""
        return np.sqrt(self.variance)

    @cached_property
    def skewness(self) -> np.ndarray:
        """``m3 / m2**1.5``, 0 where ``m2`` is 0; shape (n_rows,)."""
        m3 = np.vecdot(self._squared_deviations, self.deviations) / self._n
        return safe_ratio(m3, self.variance * self.std)

    @cached_property
    def kurtosis(self) -> np.ndarray:
        """Fisher (excess) kurtosis ``m4 / m2**2 - 3``, 0 where ``m2`` is 0; shape (n_rows,)."""
        squared = self._squared_deviations
        m4 = np.vecdot(squared, squared) / self._n
        variance = self.variance
        excess = safe_ratio(m4, variance * variance) - 3.0
        excess[variance == 0] = 0.0
        return excess

    @cached_property
    def rms(self) -> np.ndarray:
        """Root mean square of the values themselves, ``sqrt(mean**2 + m2)``; shape (n_rows,)."""
        return np.sqrt(self.mean * self.mean + self.variance)

    @cached_property
    def mean_abs_deviation(self) -> np.ndarray:
        """``mean(|values - mean|)``, shape (n_rows,)."""
        out = self._scratch("absolute")
        np.abs(self.deviations, out=out)
        return np.add.reduce(out, axis=1) / self._n

    @cached_property
    def mean_sqrt_abs_deviation(self) -> np.ndarray:
        """``mean(sqrt(|values - mean|))``, shape (n_rows,)."""
        out = self._scratch("absolute")
        np.abs(self.deviations, out=out)
        np.sqrt(out, out=out)
        return np.add.reduce(out, axis=1) / self._n

    # -- order statistics ---------------------------------------------------

    @cached_property
    def _order_statistics(self) -> dict[str, np.ndarray]:
        return _order_statistics(self.values, self._scratch("sorted"))

    @property
    def median(self) -> np.ndarray:
        """Median, shape (n_rows,)."""
        return self._order_statistics["median"]

    @property
    def iqr(self) -> np.ndarray:
        """Interquartile range ``q75 - q25``, shape (n_rows,)."""
        return self._order_statistics["q75"] - self._order_statistics["q25"]

    @cached_property
    def minimum(self) -> np.ndarray:
        """Smallest value, shape (n_rows,)."""
        if self._extremes_from_partition:
            return self._order_statistics["min"]
        return np.minimum.reduce(self.values, axis=1)

    @cached_property
    def maximum(self) -> np.ndarray:
        """Largest value, shape (n_rows,)."""
        if self._extremes_from_partition:
            return self._order_statistics["max"]
        return np.maximum.reduce(self.values, axis=1)


def _quantile_positions(n: int) -> list[tuple[str, int, float]]:
    """Return ``(name, j, g)`` per quantile: its value is ``x[j] + g * (x[j+1] - x[j])``.

    ``x`` is the sorted row and ``j + g = (n - 1) * q``, which is numpy's
    default ("linear") quantile method.
    """
    positions = []
    for name, q in _QUANTILES:
        h = (n - 1) * q
        j = math.floor(h)
        positions.append((name, j, h - j))
    return positions


def _partition(scratch: np.ndarray, start: int, stop: int, pivots: list[int]) -> None:
    """Partition ``scratch[:, start:stop]`` in place so that every pivot holds its order statistic.

    Partitioning at the middle pivot first and then each side separately
    costs about two passes; numpy's multi-``kth`` partition is several
    times slower on 2-D arrays.
    """
    if not pivots:
        return
    middle = len(pivots) // 2
    pivot = pivots[middle]
    scratch[:, start:stop].partition(pivot - start, axis=1)
    _partition(scratch, start, pivot, pivots[:middle])
    _partition(scratch, pivot + 1, stop, pivots[middle + 1 :])


def _order_statistics(values: np.ndarray, scratch: np.ndarray) -> dict[str, np.ndarray]:
    """Compute the quartiles, median and extremes of each row with one partition of a copy.

    After partitioning at the pivots ``j``, ``x[j+1]`` is the minimum of the
    segment between pivot ``j`` and the next pivot (inclusive), so the
    neighbours needed for interpolation cost one more pass over part of the
    row, and the extremes come from the outer segments.
    """
    n = values.shape[1]
    np.copyto(scratch, values)
    positions = _quantile_positions(n)
    pivots = sorted({j for _, j, _ in positions})
    _partition(scratch, 0, n, pivots)

    result = {
        "min": np.minimum.reduce(scratch[:, : pivots[0] + 1], axis=1),
        "max": np.maximum.reduce(scratch[:, pivots[-1] :], axis=1),
    }
    for name, j, g in positions:
        value = scratch[:, j].copy()
        if g > 0:
            following = [p for p in pivots if p > j]
            stop = following[0] + 1 if following else n
            successor = np.minimum.reduce(scratch[:, j + 1 : stop], axis=1)
            value += g * (successor - value)
        result[name] = value
    return result
