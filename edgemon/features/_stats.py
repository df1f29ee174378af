"""Row-wise statistics of sample sets, computed once and shared by every feature.

A sample set is a 2-D float64 array with one row per channel and window: the
samples themselves, or their amplitude spectrum.  :class:`SampleStatistics`
computes each quantity of one set when a feature first needs it.  The
sets of a batch belong to one :class:`StatisticsGroup`, which computes their
moments and order statistics together, so that the per-call cost of numpy,
which dominates for a single window, is paid once for all of them.

Definitions (``n`` values per row, ``d = x - mean``): central moments
``m_k = sum(d**k) / n`` (ddof 0), ``skewness = m3 / m2**1.5``, Fisher
``kurtosis = m4 / m2**2 - 3`` (biased), and quantiles with numpy's default
linear interpolation between order statistics.  Rows whose variance is zero
get skewness and kurtosis 0 instead of 0/0.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from edgemon.features._order import order_statistics
from edgemon.features._workspace import Workspace, cached_attribute

__all__ = ["SampleStatistics", "StatisticsGroup", "ratio"]

#: Smallest positive normal float64; denominators are clamped to it.
_TINY = np.finfo(np.float64).tiny


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Divide element-wise, with the denominator clamped to the smallest normal float64.

    Every ratio in the catalogue has a numerator that is exactly 0 when its
    non-negative denominator is (a constant window, a zero spectrum), so
    such rows give 0 instead of 0/0.
    """
    return numerator / np.maximum(denominator, _TINY)


@functools.lru_cache(maxsize=16)
def _counts(lengths: tuple[int, ...]) -> np.ndarray:
    """Return the values per row of each set as a read-only column, shape (n_sets, 1)."""
    counts = np.array(lengths, dtype=np.float64)[:, np.newaxis]
    counts.setflags(write=False)
    return counts


class SampleStatistics:
    """Lazily computed statistics of each row of one sample set.

    Parameters
    ----------
    source : ndarray or callable
        The values, shape (n_rows, n_values), float64, C-contiguous; or a
        function returning them, called on first use.  Read, never written.
    n_values : int
        Values per row, at least 16.
    workspace : Workspace
        Supplies scratch arrays.
    prefix : str
        Distinguishes this set's scratch arrays from those of other sets.
    nonnegative : bool, default=False
        Promise that no value is negative or -0.0 (amplitudes), which saves
        a pass in the order statistics.  NaN is allowed either way.

    Notes
    -----
    Moments and order statistics are computed by the :class:`StatisticsGroup`
    that the set joins.  A set that joins none forms a group of its own on
    first use.
    """

    # Until a group sets them on the instance.
    _moment_group: StatisticsGroup | None = None
    _moment_slot = 0
    _order_group: StatisticsGroup | None = None
    _order_slot = 0

    def __init__(
        self,
        source: np.ndarray | Callable[[], np.ndarray],
        n_values: int,
        workspace: Workspace,
        prefix: str,
        *,
        nonnegative: bool = False,
    ) -> None:
        self._source = source
        self.n_values = n_values
        self._workspace = workspace
        self._prefix = prefix
        self.nonnegative = nonnegative

    @cached_attribute
    def values(self) -> np.ndarray:
        """The sample set, shape (n_rows, n_values)."""
        return self._source() if callable(self._source) else self._source

    def _scratch(self, name: str) -> np.ndarray:
        return self._workspace.array(self._prefix + name, self.values.shape)

    # -- per set --------------------------------------------------------------

    @cached_attribute
    def mean(self) -> np.ndarray:
        """Arithmetic mean, shape (n_rows,)."""
        return np.add.reduce(self.values, axis=1) / self.n_values

    @cached_attribute
    def deviations(self) -> np.ndarray:
        """``values - mean``, shape (n_rows, n_values)."""
        out = self._scratch("deviations")
        np.subtract(self.values, self.mean[:, np.newaxis], out=out)
        return out

    @cached_attribute
    def squared_deviations(self) -> np.ndarray:
        """``(values - mean)**2``, shape (n_rows, n_values)."""
        out = self._scratch("squared")
        np.multiply(self.deviations, self.deviations, out=out)
        return out

    @cached_attribute
    def rms(self) -> np.ndarray:
        """Root mean square of the values themselves, ``sqrt(mean**2 + m2)``; shape (n_rows,)."""
        return np.sqrt(self.mean * self.mean + self.variance)

    @cached_attribute
    def mean_abs_deviation(self) -> np.ndarray:
        """``mean(|values - mean|)``, shape (n_rows,)."""
        out = self._scratch("absolute")
        np.abs(self.deviations, out=out)
        return np.add.reduce(out, axis=1) / self.n_values

    @cached_attribute
    def mean_sqrt_abs_deviation(self) -> np.ndarray:
        """``mean(sqrt(|values - mean|))``, shape (n_rows,)."""
        out = self._scratch("absolute")
        np.abs(self.deviations, out=out)
        np.sqrt(out, out=out)
        return np.add.reduce(out, axis=1) / self.n_values

    @cached_attribute
    def minimum(self) -> np.ndarray:
        """Smallest value, shape (n_rows,)."""
        if self._order_group is not None:
            return self._order_group.order_statistics["min"][self._order_slot]
        return np.minimum.reduce(self.values, axis=1)

    @cached_attribute
    def maximum(self) -> np.ndarray:
        """Largest value, shape (n_rows,)."""
        if self._order_group is not None:
            return self._order_group.order_statistics["max"][self._order_slot]
        return np.maximum.reduce(self.values, axis=1)

    # -- from the group -------------------------------------------------------
    # Plain properties with the group's cached results: a single window pays
    # for every Python-level call.

    def _moments(self) -> StatisticsGroup:
        if self._moment_group is None:
            StatisticsGroup(moments=[self])
        return self._moment_group

    def _order(self) -> StatisticsGroup:
        if self._order_group is None:
            StatisticsGroup(order=[self])
        return self._order_group

    @property
    def variance(self) -> np.ndarray:
        """Second central moment ``m2`` (ddof 0), shape (n_rows,)."""
        return (self._moment_group or self._moments()).second_moments["variance"][self._moment_slot]

    @property
    def std(self) -> np.ndarray:
        """Standard deviation ``sqrt(m2)`` (ddof 0), shape (n_rows,)."""
        return (self._moment_group or self._moments()).second_moments["std"][self._moment_slot]

    @property
    def skewness(self) -> np.ndarray:
        """``m3 / m2**1.5``, 0 where ``m2`` is 0; shape (n_rows,)."""
        return (self._moment_group or self._moments()).higher_moments["skewness"][self._moment_slot]

    @property
    def kurtosis(self) -> np.ndarray:
        """Fisher (excess) kurtosis ``m4 / m2**2 - 3``, 0 where ``m2`` is 0; shape (n_rows,)."""
        return (self._moment_group or self._moments()).higher_moments["kurtosis"][self._moment_slot]

    @property
    def median(self) -> np.ndarray:
        """Median, shape (n_rows,)."""
        return (self._order_group or self._order()).order_statistics["median"][self._order_slot]

    @property
    def iqr(self) -> np.ndarray:
        """Interquartile range ``q75 - q25``, shape (n_rows,)."""
        statistics = (self._order_group or self._order()).order_statistics
        return statistics["q75"][self._order_slot] - statistics["q25"][self._order_slot]


class StatisticsGroup:
    """Moments and order statistics of several sample sets with the same rows, computed together.

    Parameters
    ----------
    moments : sequence of SampleStatistics, default=()
        Sets whose moments this group computes.
    order : sequence of SampleStatistics, default=()
        Sets whose quartiles, median and extremes this group computes;
        their minimum and maximum then come from the same work.
    workspace : Workspace, optional
        Scratch arrays for the order statistics; by default the first set's.
    """

    def __init__(
        self,
        moments: Sequence[SampleStatistics] = (),
        order: Sequence[SampleStatistics] = (),
        workspace: Workspace | None = None,
    ) -> None:
        # The sets hold the group and the group holds weak references to
        # them, so that a batch is freed by reference counting as soon as it
        # is done, without waiting for the cycle collector.
        self._moment_sets = [weakref.proxy(member) for member in moments]
        self._order_sets = [weakref.proxy(member) for member in order]
        for slot, member in enumerate(moments):
            member._moment_group = self
            member._moment_slot = slot
        for slot, member in enumerate(order):
            member._order_group = self
            member._order_slot = slot
        if workspace is None:
            workspace = [*moments, *order][0]._workspace
        self._workspace = workspace
        self._counts = _counts(tuple(member.n_values for member in moments))

    @cached_attribute
    def second_moments(self) -> dict[str, np.ndarray]:
        """``"variance"`` and ``"std"`` of every set, each of shape (n_sets, n_rows)."""
        sets = self._moment_sets
        # Rows: standard deviation, then variance, so that higher_moments
        # scales both of its sums with one multiplication.
        moments = np.empty((2, len(sets), sets[0].values.shape[0]))
        for i, member in enumerate(sets):
            np.add.reduce(member.squared_deviations, axis=1, out=moments[1, i])
        moments[1] /= self._counts
        np.sqrt(moments[1], out=moments[0])
        return {"std": moments[0], "variance": moments[1], "std_and_variance": moments}

    @cached_attribute
    def higher_moments(self) -> dict[str, np.ndarray]:
        """``"skewness"`` and ``"kurtosis"`` of every set, each of shape (n_sets, n_rows)."""
        sets = self._moment_sets
        sums = np.empty((2, len(sets), sets[0].values.shape[0]))
        for i, member in enumerate(sets):
            squared = member.squared_deviations
            np.vecdot(squared, member.deviations, out=sums[0, i])
            np.vecdot(squared, squared, out=sums[1, i])
        sums /= self._counts
        second = self.second_moments
        # scales = [m2**1.5, m2**2].  Kurtosis is (m4 - 3 m2**2) / m2**2 rather
        # than m4 / m2**2 - 3, so that m2 = 0 (and so m4 = 0) gives 0.
        scales = second["variance"] * second["std_and_variance"]
        sums[1] -= 3.0 * scales[1]
        standardized = ratio(sums, scales)
        return {"skewness": standardized[0], "kurtosis": standardized[1]}

    @cached_attribute
    def order_statistics(self) -> dict[str, np.ndarray]:
        """Quartiles, median and extremes of every set, each of shape (n_sets, n_rows)."""
        return order_statistics(
            [(member.values, member.nonnegative) for member in self._order_sets], self._workspace
        )
