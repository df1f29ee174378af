"""The processing stage of one sensor: ring buffer, features, model and state logic.

A :class:`SensorPipeline` takes the blocks a source delivers and returns the
state events of every window those blocks complete.  It is owned by exactly
one thread (the daemon's processing thread, or the caller of a replay), so it
holds no locks.  Training computes features through the same
:class:`~edgemon.features.FeatureExtractor`, so a window gets the same numbers
on the workstation and on the device.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from edgemon.errors import ConfigError, ModelError
from edgemon.features import FeatureExtractor
from edgemon.flags import UNCLASSIFIABLE
from edgemon.model import Model
from edgemon.ringbuffer import RingBuffer
from edgemon.sources.base import Block, Source
from edgemon.states import StateEvent, StateLogic

__all__ = ["PipelineStats", "SensorPipeline", "check_model_for_source"]

logger = logging.getLogger(__name__)


def check_model_for_source(
    model: Model,
    *,
    sample_rate: float,
    channels: Sequence[str],
    source: str,
    window: int | None = None,
    hop: int | None = None,
) -> FeatureExtractor:
    """Check that ``model`` can judge the windows of a source, and build its feature extractor.

    ``edgemon run`` and ``edgemon run --check`` call this before a source is
    opened where its format is known from the configuration, and
    :class:`SensorPipeline` calls it for every source, so the check and the
    daemon reject the same configurations.

    Parameters
    ----------
    model : Model
        Loaded model.
    sample_rate : float
        Hz the source delivers.
    channels : sequence of str
        Channel names the source delivers, in order.
    source : str
        Name of the source, used in the messages.
    window, hop : int, optional
        Configured samples per window and between window starts; None takes the model's.

    Returns
    -------
    FeatureExtractor
        Built from the model's feature specification.

    Raises
    ------
    ModelError
        If the model was trained for another sample rate, channel set or
        window, or if its feature specification does not produce the columns
        that it scores.
    ConfigError
        If ``hop`` is not a positive integer.
    """
    meta = model.metadata
    model.check_compatible(
        sample_rate=sample_rate,
        channels=channels,
        window=meta.window if window is None else window,
        source=source,
    )
    if hop is not None and (isinstance(hop, bool) or not isinstance(hop, int) or hop < 1):
        raise ConfigError(f"hop must be a positive number of samples, got {hop!r}")

    problems = []
    try:
        extractor = FeatureExtractor.from_dict(meta.features)
    except ConfigError as exc:
        raise ModelError(
            f"model {meta.model_id}: invalid feature specification: {exc}; retrain the model"
        ) from exc
    if extractor.window != meta.window:
        problems.append(
            f"its features are computed on windows of {extractor.window} samples "
            f"but it scores windows of {meta.window}"
        )
    if not math.isclose(extractor.sample_rate, meta.sample_rate, rel_tol=1e-9):
        problems.append(
            f"its features assume {extractor.sample_rate:g} Hz but it was trained "
            f"at {meta.sample_rate:g} Hz"
        )
    if extractor.columns != meta.columns:
        problems.append(
            f"its features produce the columns {list(extractor.columns)} but it scores "
            f"{list(meta.columns)}"
        )
    if problems:
        raise ModelError(
            f"model {meta.model_id} is inconsistent: "
            + "; ".join(problems)
            + "; retrain it with 'edgemon train'"
        )
    return extractor


@dataclass
class PipelineStats:
    """Counters of one sensor's processing stage, reported in the health message."""

    blocks: int = 0
    samples: int = 0
    windows: int = 0
    #: Windows with any flag set.
    windows_flagged: int = 0
    #: Windows per flag name, for example ``{"gap": 3}``.
    flags: dict[str, int] = field(default_factory=dict)
    #: Windows per reported state.
    states: dict[str, int] = field(default_factory=dict)


class SensorPipeline:
    """Turn one source's blocks into state events.

    Parameters
    ----------
    device, sensor : str
        Names used in the events (and so in MQTT topics).
    source : Source
        The source whose blocks this pipeline will receive; its sample rate,
        channels and full scale are checked against the model.
    model : Model
        Loaded model; its metadata defines the features and the window.
    window : int, optional
        Configured samples per window; it must equal the model's window.
    hop : int, optional
        Samples between window starts. Defaults to the model's hop.
    debounce : int, default=1
        See :class:`~edgemon.states.StateLogic`.

    Raises
    ------
    ModelError, ConfigError
        See :func:`check_model_for_source`.
    """

    def __init__(
        self,
        device: str,
        sensor: str,
        source: Source,
        model: Model,
        *,
        window: int | None = None,
        hop: int | None = None,
        debounce: int = 1,
    ) -> None:
        meta = model.metadata
        self.extractor = check_model_for_source(
            model,
            sample_rate=source.sample_rate,
            channels=source.channels,
            source=source.name,
            window=window,
            hop=hop,
        )
        self.device = device
        self.sensor = sensor
        self.model = model
        self.window = self.extractor.window
        self.hop = meta.hop if hop is None else hop
        self.sample_rate = float(source.sample_rate)
        self.full_scale = source.full_scale
        self._live = source.live
        self._states = StateLogic(meta.states, meta.novelty.threshold, debounce=debounce)
        capacity = 4 * max(self.window, self.hop)
        self.buffer = RingBuffer(capacity, len(source.channels), self.window, self.hop)
        # After the windows are taken out, fewer than max(window, hop) samples stay pending.
        self._chunk = capacity - max(self.window, self.hop)
        self.stats = PipelineStats()
        # A sample index and its wall-clock time. A live source moves it to
        # each new block. A replay keeps its first block's, so it counts
        # recording time from its start.
        self._anchor: tuple[int, datetime] | None = None
        # Time and feature vector of the newest classified window, for feature messages.
        self._latest_features: tuple[datetime, np.ndarray] | None = None

    def process(self, block: Block) -> list[StateEvent]:
        """Push one block and return the events of the windows it completed, in order."""
        self.stats.blocks += 1
        self.stats.samples += len(block.samples)
        self._update_anchor(block)
        events: list[StateEvent] = []
        # Push a large block in parts, taking the windows out after each, so
        # the ring buffer never overwrites samples this pipeline has not seen.
        step = self._chunk
        for offset in range(0, len(block.samples), step):
            part = (
                block
                if len(block.samples) <= step
                else Block(
                    block.samples[offset : offset + step],
                    block.first_index + offset,
                    block.received,
                    block.flags,
                )
            )
            self.buffer.push(part)
            batch = self.buffer.pop_windows()
            if len(batch.starts):
                events += self._classify(batch.samples, batch.starts, batch.flags)
        return events

    def take_latest_features(self) -> tuple[datetime, np.ndarray] | None:
        """Return the time and feature vector of the newest classified window, once.

        Returns None when no window was classified since the previous call.
        The vector has shape (n_features,) in the order of ``extractor.columns``.
        """
        latest, self._latest_features = self._latest_features, None
        return latest

    def _update_anchor(self, block: Block) -> None:
        if self._anchor is not None and not self._live:
            return
        # The block's last sample was read at `block.received` (monotonic); map it to UTC.
        # Times are kept relative to that sample, not to sample index 0, so that
        # an index of any size (a sender's counter can start anywhere) gives a
        # valid time.
        age = time.monotonic() - block.received
        last_index = block.first_index + len(block.samples) - 1
        self._anchor = (last_index, datetime.now(UTC) - timedelta(seconds=age))

    def _time_of(self, index: int) -> datetime:
        """Return the UTC time of sample ``index`` from the anchor sample and the sample rate."""
        anchor_index, anchor_time = self._anchor
        return anchor_time + timedelta(seconds=(index - anchor_index) / self.sample_rate)

    def _classify(
        self, samples: np.ndarray, starts: np.ndarray, flags: np.ndarray
    ) -> list[StateEvent]:
        features, sample_flags = self.extractor.transform_with_flags(
            samples, full_scale=self.full_scale
        )
        flags = flags | sample_flags
        clusters = np.full(len(starts), -1, dtype=np.int64)
        scores = np.full(len(starts), np.nan)
        usable = ((flags & UNCLASSIFIABLE) == 0) & np.isfinite(features).all(axis=1)
        if usable.any():
            clusters[usable], scores[usable] = self.model.score(features[usable])
        results = self._states.classify(clusters, scores, flags)
        if usable.any():
            newest = int(np.flatnonzero(usable)[-1])
            self._latest_features = (
                self._time_of(int(starts[newest]) + self.window - 1),
                features[newest].copy(),
            )

        events = []
        meta = self.model.metadata
        for start, (cluster, state, score, names) in zip(starts.tolist(), results, strict=True):
            events.append(
                StateEvent(
                    device=self.device,
                    sensor=self.sensor,
                    ts=self._time_of(start + self.window - 1),
                    cluster=cluster,
                    state=state,
                    score=score,
                    model_id=meta.model_id,
                    window_start=start,
                    window_samples=self.window,
                    sample_rate=self.sample_rate,
                    flags=names,
                )
            )
            self._count(state, names)
        return events

    def _count(self, state: str, names: tuple[str, ...]) -> None:
        stats = self.stats
        stats.windows += 1
        stats.states[state] = stats.states.get(state, 0) + 1
        if names:
            stats.windows_flagged += 1
            for name in names:
                stats.flags[name] = stats.flags.get(name, 0) + 1
