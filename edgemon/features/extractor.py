"""The feature extractor: one validated configuration, applied to batches of windows.

Training and the daemon build the same :class:`FeatureExtractor` from the
same specification (``to_dict`` is stored in the model file, ``from_dict``
rebuilds it on the device), so both compute the very same numbers.

A batch of ``n_windows`` windows with ``C`` channels becomes ``n_windows * R``
rows of samples, ``R = C`` (plus one for the resultant), window-major, so the
per-row feature matrix reshapes without a copy into ``(n_windows, R *
n_features)`` in channel-major column order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from edgemon.errors import ConfigError
from edgemon.features._envelope import DefectFrequency, Envelope, EnvelopePlan, EnvelopeSettings
from edgemon.features._spectrum import Band, Spectrum, SpectrumPlan
from edgemon.features._stats import SampleStatistics, StatisticsGroup
from edgemon.features._validation import (
    RESULTANT,
    check_band,
    check_band_in_spectrum,
    check_channels,
    check_envelope,
    check_envelope_floor,
    check_envelope_target,
    check_nfft,
    check_sample_rate,
    check_window,
    check_windows,
)
from edgemon.features._workspace import Workspace, cached_attribute
from edgemon.features.catalogue import expand_names, resolve
from edgemon.features.flags import check_full_scale, flags_from_extremes

__all__ = ["FeatureExtractor", "extract"]

#: Version of the stored specification; bump it when a definition changes.
SPEC_VERSION = 1

#: The only FFT taper so far; stored so that another can be added compatibly.
FFT_WINDOW = "hann"

#: Largest number of rows (windows times computed channels) transformed in
#: one go.  Larger batches are cut into chunks, so that the scratch arrays,
#: about eight float64 arrays of this many rows, stay bounded whatever the
#: caller passes; 256 rows of 2048 samples are 4 MiB per array.
MAX_ROWS = 256


class FeatureExtractor:
    """Compute named features for batches of windows, with everything checked up front.

    Parameters
    ----------
    names : str or sequence of str
        Feature names and aliases, see :func:`edgemon.features.expand_names`.
    sample_rate : float
        Sample rate of the windows, Hz.
    window : int
        Samples per window; even, >= 16.
    channels : sequence of str, default=("ch0",)
        Channel names, in the order of the last axis of the windows.
    resultant : bool, default=False
        Also compute every feature on the vector magnitude
        ``sqrt(sum_c x_c**2)`` of the channels, as an extra channel named
        ``"resultant"`` after the others.
    nfft : int, optional
        FFT length of the spectrum; by default the window.  A shorter
        ``nfft`` averages the power of half-overlapping segments (Welch).
    bands : sequence of (low, high), default=()
        Bands (Hz) that the bare name ``band.rms`` expands to.
    envelope : mapping or EnvelopeSettings, optional
        ``{"band": (low, high), "targets": [...], "shaft_hz": ..., "tolerance": 0.02,
        "floor_band": (1, 600)}`` for the ``env.level`` and ``env.level_db``
        features.
    fft_window : {"hann"}, default="hann"
        Taper of the spectrum.

    Attributes
    ----------
    names : tuple of str
        Canonical feature names after expanding aliases.
    columns : tuple of str
        Output column names, ``"<channel>:<feature>"``, channel-major.
    n_features : int
        Number of output columns.

    Raises
    ------
    ConfigError
        For any invalid name, window, FFT length, band or envelope setting.

    Notes
    -----
    An extractor keeps scratch arrays between calls, so it must not be shared
    between threads; build one per thread.

    Examples
    --------
    >>> import numpy as np
    >>> extractor = FeatureExtractor(["time.rms", "freq.centroid"], 12000.0, 2048, ("DE", "FE"))
    >>> extractor.columns
    ('DE:time.rms', 'DE:freq.centroid', 'FE:time.rms', 'FE:freq.centroid')
    >>> extractor.transform(np.zeros((5, 2048, 2))).shape
    (5, 4)
    """

    def __init__(
        self,
        names: str | Iterable[str],
        sample_rate: float,
        window: int,
        channels: Sequence[str] = ("ch0",),
        *,
        resultant: bool = False,
        nfft: int | None = None,
        bands: Sequence[Any] = (),
        envelope: Mapping[str, Any] | EnvelopeSettings | None = None,
        fft_window: str = FFT_WINDOW,
    ) -> None:
        self.sample_rate = check_sample_rate(sample_rate)
        self.window = check_window(window)
        self.nfft = check_nfft(nfft, self.window)
        self.channels = check_channels(channels, resultant)
        self.resultant = resultant
        if fft_window != FFT_WINDOW:
            raise ConfigError(f"fft_window must be {FFT_WINDOW!r}, got {fft_window!r}")
        self.fft_window = fft_window
        if isinstance(bands, str) or not isinstance(bands, Sequence):
            raise ConfigError(f"bands must be a list of (low, high) pairs in Hz, got {bands!r}")
        self.bands = tuple(check_band(band) for band in bands)
        self.envelope = check_envelope(envelope, self.sample_rate, self.window)
        self.names = expand_names(
            names,
            bands=self.bands,
            envelope_targets=self.envelope.targets if self.envelope else (),
        )
        self._plan()

    def _plan(self) -> None:
        """Resolve the names and precompute the spectrum and envelope plans."""
        resolved = [resolve(name) for name in self.names]
        self._computes = [item.compute for item in resolved]

        # Each band is checked under the first name that requests it.
        band_names = {r.parameter: r.name for r in resolved if isinstance(r.parameter, Band)}
        for band in self.bands:
            band_names.setdefault(band, f"band.rms[{band}]")
        spectrum_bands = tuple(sorted(band_names))
        self._spectrum_plan = SpectrumPlan(self.sample_rate, self.window, self.nfft, spectrum_bands)
        for band in spectrum_bands:
            check_band_in_spectrum(band_names[band], band, self._spectrum_plan, self.sample_rate)

        targets = [r for r in resolved if isinstance(r.parameter, DefectFrequency)]
        for item in targets:
            check_envelope_target(item.name, item.parameter, self.envelope)
        floor_names = [r.name for r in targets if r.family.envelope_floor]
        if floor_names:
            check_envelope_floor(floor_names[0], self.envelope, self.sample_rate, self.window)
        if self.envelope is not None:
            for target in self.envelope.targets:
                check_envelope_target(f"env.level[{target}]", target, self.envelope)
            self._envelope_plan = EnvelopePlan(
                self.sample_rate,
                self.window,
                self.envelope,
                tuple(dict.fromkeys([*(r.parameter for r in targets), *self.envelope.targets])),
                floor=bool(floor_names),
            )
        else:
            self._envelope_plan = None

        # Indices into (time, freq) of the domains whose statistics are
        # computed together (see StatisticsGroup).
        features = [r.feature for r in resolved if r.feature is not None]
        domains = ("time", "freq")
        self._moment_domains = tuple(
            i for i, domain in enumerate(domains) if any(f.domain == domain for f in features)
        )
        self._order_domains = tuple(
            i
            for i, domain in enumerate(domains)
            if any(f.domain == domain and f.order_statistics for f in features)
        )
        self._workspace = Workspace()

    # -- description ---------------------------------------------------------

    @property
    def row_channels(self) -> tuple[str, ...]:
        """Channels whose features are computed: the channels, then ``"resultant"`` if requested."""
        return (*self.channels, RESULTANT) if self.resultant else self.channels

    @cached_attribute
    def columns(self) -> tuple[str, ...]:
        """Output column names, ``"<channel>:<feature>"``, channel-major."""
        return tuple(f"{channel}:{name}" for channel in self.row_channels for name in self.names)

    @property
    def workspace_nbytes(self) -> int:
        """Bytes of scratch arrays kept between calls; they grow with the largest batch only."""
        return self._workspace.nbytes

    @property
    def n_features(self) -> int:
        """Number of output columns."""
        return len(self.row_channels) * len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """Return the full specification as plain JSON types, for a model file's metadata."""
        return {
            "version": SPEC_VERSION,
            "names": list(self.names),
            "sample_rate": self.sample_rate,
            "window": self.window,
            "channels": list(self.channels),
            "resultant": self.resultant,
            "nfft": self.nfft,
            "fft_window": self.fft_window,
            "bands": [[band.low, band.high] for band in self.bands],
            "envelope": self.envelope.to_dict() if self.envelope else None,
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> FeatureExtractor:
        """Rebuild an extractor from :meth:`to_dict` output, validating it again.

        Raises
        ------
        ConfigError
            If a key is missing or unknown, the version differs, or a value is invalid.
        """
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"a feature specification must be a mapping, got {type(spec).__name__}"
            )
        required = {"version", "names", "sample_rate", "window", "channels"}
        optional = {"resultant", "nfft", "fft_window", "bands", "envelope"}
        missing = sorted(required - set(spec))
        unknown = sorted(set(spec) - required - optional)
        if missing or unknown:
            raise ConfigError(
                f"invalid feature specification: missing keys {missing}, unknown keys {unknown}"
            )
        if spec["version"] != SPEC_VERSION:
            raise ConfigError(
                f"feature specification version {spec['version']!r} is not supported by this "
                f"edgemon, which reads version {SPEC_VERSION}; retrain the model or upgrade edgemon"
            )
        channels = spec["channels"]
        return cls(
            spec["names"],
            spec["sample_rate"],
            spec["window"],
            tuple(channels) if isinstance(channels, list) else channels,
            resultant=spec.get("resultant", False),
            nfft=spec.get("nfft"),
            bands=spec.get("bands", ()),
            envelope=spec.get("envelope"),
            fft_window=spec.get("fft_window", FFT_WINDOW),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureExtractor):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"FeatureExtractor(names={list(self.names)!r}, sample_rate={self.sample_rate!r}, "
            f"window={self.window!r}, channels={self.channels!r}, resultant={self.resultant!r}, "
            f"nfft={self.nfft!r})"
        )

    # -- computation ---------------------------------------------------------

    def transform(self, windows: np.ndarray) -> np.ndarray:
        """Compute the features of each window.

        Parameters
        ----------
        windows : array-like of shape (n_windows, window) or (n_windows, window, n_channels)
            Samples in physical units (g), any integer or float dtype; they
            are converted to float64 before any arithmetic.

        Returns
        -------
        ndarray of shape (n_windows, n_features), float64
            Columns as in :attr:`columns`.  A channel whose window contains NaN
            or Inf gets NaN for all its features, without affecting other
            windows or channels.

        Raises
        ------
        ConfigError
            If the shape or dtype of ``windows`` does not match the configuration.
        """
        samples = check_windows(windows, self.window, len(self.channels))
        features = np.empty((samples.shape[0], self.n_features))
        for start, stop in self._chunks(samples.shape[0]):
            part = samples[start:stop]
            features[start:stop] = self._compute(_Batch(self._rows(part), self), len(part))
        return features

    def transform_with_flags(
        self, windows: np.ndarray, *, full_scale: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compute the features and the window flags of each window in one pass.

        Returns the same as ``(self.transform(windows), window_flags(windows,
        full_scale=full_scale))``, for less: the flags come from the extremes
        and means that the features need anyway.  The daemon calls this for
        every window.

        Parameters
        ----------
        windows : array-like of shape (n_windows, window) or (n_windows, window, n_channels)
        full_scale : float, optional
            As for :func:`~edgemon.features.window_flags`.

        Returns
        -------
        features : ndarray of shape (n_windows, n_features), float64
        flags : ndarray of shape (n_windows,), uint8
        """
        check_full_scale(full_scale)
        samples = check_windows(windows, self.window, len(self.channels))
        features = np.empty((samples.shape[0], self.n_features))
        flags = np.empty(samples.shape[0], dtype=np.uint8)
        n_channels = len(self.channels)
        for start, stop in self._chunks(samples.shape[0]):
            part = samples[start:stop]
            batch = _Batch(self._rows(part), self)
            features[start:stop] = self._compute(batch, len(part))
            channels = (len(part), len(self.row_channels))
            highest = batch.time.maximum.reshape(channels)[:, :n_channels]
            lowest = batch.time.minimum.reshape(channels)[:, :n_channels]
            flags[start:stop] = flags_from_extremes(highest, lowest, full_scale)
        return features, flags

    def _chunks(self, n_windows: int) -> list[tuple[int, int]]:
        """Return ``(start, stop)`` of the chunks, of at most MAX_ROWS rows, of a batch."""
        step = max(1, MAX_ROWS // len(self.row_channels))
        if n_windows <= step:
            return [(0, n_windows)] if n_windows else []
        return [(start, min(start + step, n_windows)) for start in range(0, n_windows, step)]

    def _compute(self, batch: _Batch, n_windows: int) -> np.ndarray:
        """Evaluate every feature of ``batch``; NaN for the rows holding NaN or Inf."""
        with np.errstate(all="ignore"):
            # (n_features, n_rows), then one transposing copy.
            columns = np.array([compute(batch) for compute in self._computes])
            # One sum is NaN or Inf exactly when some row contains NaN or Inf (or overflows).
            if not math.isfinite(np.add.reduce(batch.time.mean)):
                columns[:, ~np.isfinite(batch.time.mean)] = np.nan
        return columns.T.reshape(n_windows, self.n_features)

    def _rows(self, samples: np.ndarray) -> np.ndarray:
        """Return the samples as float64 rows of shape (n_windows * R, window), window-major."""
        n_windows = samples.shape[0]
        if samples.ndim == 3 and samples.shape[2] == 1:
            samples = samples.reshape(n_windows, self.window)

        if samples.ndim == 2:
            if samples.dtype == np.float64 and samples.flags.c_contiguous:
                return samples
            rows = self._workspace.array("input.rows", samples.shape)
            np.copyto(rows, samples, casting="unsafe")
            return rows

        n_channels = len(self.channels)
        shape = (n_windows, len(self.row_channels), self.window)
        rows = self._workspace.array("input.rows", shape)
        np.copyto(rows[:, :n_channels], samples.transpose(0, 2, 1), casting="unsafe")
        if self.resultant:
            magnitude = rows[:, n_channels]
            square = self._workspace.array("input.square", (n_windows, self.window))
            np.multiply(rows[:, 0], rows[:, 0], out=magnitude)
            for channel in range(1, n_channels):
                np.multiply(rows[:, channel], rows[:, channel], out=square)
                magnitude += square
            np.sqrt(magnitude, out=magnitude)
        return rows.reshape(-1, self.window)


class _Batch:
    """Shared intermediate results for one batch of rows, each computed on first use.

    ``time`` is the statistics of the samples and ``amplitudes`` those of
    the amplitude spectrum.  The two share one :class:`StatisticsGroup`.
    Nothing here refers back to the batch, so it is freed by reference
    counting as soon as ``transform`` returns.
    """

    def __init__(self, rows: np.ndarray, extractor: FeatureExtractor) -> None:
        workspace = extractor._workspace
        plan = extractor._spectrum_plan
        self.time = SampleStatistics(rows, extractor.window, workspace, "samples.")
        spectrum = self.spectrum = Spectrum(self.time, plan, workspace)
        self.amplitudes = SampleStatistics(
            lambda: spectrum.amplitude, plan.n_bins, workspace, "amplitudes.", nonnegative=True
        )
        if extractor._envelope_plan is not None:
            self.envelope = Envelope(self.time, extractor._envelope_plan, workspace)
        sets = (self.time, self.amplitudes)
        StatisticsGroup(
            moments=[sets[i] for i in extractor._moment_domains],
            order=[sets[i] for i in extractor._order_domains],
            workspace=workspace,
        )


def extract(
    windows: np.ndarray, sample_rate: float, names: str | Iterable[str], **options: Any
) -> np.ndarray:
    """Compute named features for a batch of windows.

    Parameters
    ----------
    windows : array-like of shape (n_windows, n_samples) or (n_windows, n_samples, n_channels)
        Samples in physical units (g); ``n_samples`` is even and >= 16.
    sample_rate : float
        Hz.
    names : str or sequence of str
        Feature names and aliases, such as ``["time.kurtosis", "freq.iqr",
        "band.rms[10-1000]"]`` or ``"all"``.
    **options
        Keyword arguments of :class:`FeatureExtractor` (``resultant``,
        ``nfft``, ``bands``, ``envelope``, ``channels``).

    Returns
    -------
    ndarray of shape (n_windows, n_features), float64
        Features in the order of the expanded ``names``, per channel,
        channel-major.

    Raises
    ------
    ConfigError
        For invalid names, options or windows.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(2048) / 12000.0
    >>> sine = 2.0 * np.sin(2 * np.pi * 750.0 * t)
    >>> extract(sine[np.newaxis], 12000.0, ["time.std", "freq.centroid"]).round(3)
    array([[  1.414, 750.   ]])
    """
    samples = np.asarray(windows)
    if samples.ndim not in (2, 3):
        raise ConfigError(
            "windows must have shape (n_windows, n_samples) or "
            f"(n_windows, n_samples, n_channels), got {samples.shape}"
        )
    if samples.ndim == 3:
        options.setdefault("channels", tuple(f"ch{i}" for i in range(samples.shape[2])))
    return FeatureExtractor(names, sample_rate, samples.shape[1], **options).transform(samples)
