"""State logic: turn a window's cluster, novelty score and flags into a named state.

The model assigns every window to a cluster; training gave each cluster the
name of the condition most of its windows came from.  This module applies the
rules that sit on top of that mapping:

* a window whose novelty score is above the model's threshold is ``unknown``,
  because it is unlike everything the model was trained on;
* a window flagged as unfit for classification (clipped, constant, NaN or a
  bus error) is ``invalid``, so that a dead sensor is never reported as a fault;
* an optional debounce holds the reported state until a new state has been
  seen in ``debounce`` consecutive windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from edgemon.errors import ConfigError
from edgemon.flags import UNCLASSIFIABLE, flag_names

__all__ = ["INVALID", "UNKNOWN", "StateEvent", "StateLogic"]

#: State of a window that the model has not seen anything like.
UNKNOWN = "unknown"
#: State of a window whose samples cannot be classified (see ``edgemon.flags.UNCLASSIFIABLE``).
INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class StateEvent:
    """The state of one window of one sensor, ready to be published.

    The publisher assigns the per-sensor ``seq`` when it stores the event.
    """

    device: str
    sensor: str
    #: UTC time of the window's last sample.
    ts: datetime
    #: Cluster assigned by the model, or -1 when the window was not classified.
    cluster: int
    state: str
    #: Novelty score (larger is farther from the training data), or None when not computed.
    score: float | None
    model_id: str
    #: Source sample index of the window's first sample.
    window_start: int
    window_samples: int
    #: Hz.
    sample_rate: float
    flags: tuple[str, ...] = field(default=())


class StateLogic:
    """Map clusters to state names, applying the novelty threshold, flags and debounce.

    Parameters
    ----------
    states : sequence of str
        State name of each cluster, indexed by cluster id.
    threshold : float
        Novelty score above which a window is reported as ``unknown``.
        ``inf`` disables the novelty check.
    debounce : int, default=1
        Number of consecutive windows a new state must be seen in before it is
        reported. 1 reports every window's own state.
    """

    def __init__(self, states: Sequence[str], threshold: float, debounce: int = 1) -> None:
        if len(states) == 0:
            raise ConfigError("states must name at least one cluster, got an empty list")
        if math.isnan(threshold):
            raise ConfigError("novelty threshold must be a number, got NaN")
        if isinstance(debounce, bool) or not isinstance(debounce, int) or debounce < 1:
            raise ConfigError(f"debounce must be an integer >= 1, got {debounce!r}")
        self.states = tuple(states)
        self.threshold = float(threshold)
        self.debounce = debounce
        self._reported: str | None = None
        self._candidate: str | None = None
        self._candidate_count = 0

    def classify(
        self, clusters: np.ndarray, scores: np.ndarray, flags: np.ndarray
    ) -> list[tuple[int, str, float | None, tuple[str, ...]]]:
        """Name the state of each window of a batch, in order.

        Parameters
        ----------
        clusters : ndarray of shape (n_windows,), int
            Cluster of each window; ignored where ``flags`` make it unclassifiable.
        scores : ndarray of shape (n_windows,), float
            Novelty score of each window.
        flags : ndarray of shape (n_windows,), uint8
            ``WindowFlag`` bits of each window.

        Returns
        -------
        list of (cluster, state, score, flag names)
            One tuple per window. Unclassifiable windows get cluster -1 and
            state ``invalid``; their score is kept where it is finite.
        """
        results = []
        for cluster, score, bits in zip(
            clusters.tolist(), scores.tolist(), flags.tolist(), strict=True
        ):
            names = tuple(flag_names(bits))
            finite_score = score if math.isfinite(score) else None
            if bits & UNCLASSIFIABLE or finite_score is None:
                results.append((-1, INVALID, finite_score, names))
                continue
            state = UNKNOWN if score > self.threshold else self.states[cluster]
            results.append((cluster, self._debounced(state), finite_score, names))
        return results

    def _debounced(self, state: str) -> str:
        if self.debounce == 1 or self._reported is None:
            self._reported = state
            return state
        if state == self._reported:
            self._candidate, self._candidate_count = None, 0
        elif state == self._candidate:
            self._candidate_count += 1
            if self._candidate_count >= self.debounce:
                self._reported, self._candidate, self._candidate_count = state, None, 0
        else:
            self._candidate, self._candidate_count = state, 1
        return self._reported
