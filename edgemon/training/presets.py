"""Default training settings: window, hop, features and clustering.

``edgemon train`` uses :data:`DEFAULT` unless the user overrides a setting on
the command line.  The default was chosen on the CWRU bearing recordings with
a whole motor load held out of training (docs/evaluation.md has the
evidence):

* relative third-octave band levels, ``band.rel_db``: the spectral shape of
  each window, independent of its overall level, which changes with load;
* envelope-spectrum levels at the bearing's defect frequencies,
  ``env.level_db``, relative to the envelope spectrum's median: the
  periodic impacts that identify the fault type;
* K-means with 32 clusters, each named by the majority of its training
  windows, fitted with every label weighted equally and each feature family
  weighted equally.  32 clusters keep recordings of other machines outside
  the novelty threshold; 12 to 16 would be as accurate on this machine.
  Small training sets get fewer clusters, at least 20 windows each, so that
  healthy windows recorded later do not fall outside over-tight clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "DEFAULT",
    "SKF_6205_ORDERS",
    "Preset",
    "third_octave_bands",
]

#: Defect frequencies of the SKF 6205-2RS JEM deep-groove ball bearing (the CWRU
#: drive end: 9 balls of 0.3126 in on a 1.537 in pitch), as orders of shaft speed.
SKF_6205_ORDERS: dict[str, float] = {
    "inner_race": 5.4152,
    "outer_race": 3.5848,
    "outer_race_2x": 7.1696,
    "ball": 4.7135,
    "cage": 0.39828,
    "shaft": 1.0,
}


def third_octave_bands(
    sample_rate: float, first: int = -10, last: int = 7
) -> tuple[tuple[float, float], ...]:
    """Return base-2 third-octave bands below the Nyquist frequency, in Hz.

    Band ``n`` is centred on ``1000 * 2**(n / 3)`` Hz with edges a sixth of an
    octave either side; ``n`` runs from ``first`` to ``last`` (88.4 Hz to
    5657 Hz by default) and stops at the last band whose upper edge is below
    ``sample_rate / 2``.
    """
    nyquist = sample_rate / 2.0
    bands = []
    for n in range(first, last + 1):
        centre = 1000.0 * 2.0 ** (n / 3.0)
        low, high = centre * 2.0 ** (-1.0 / 6.0), centre * 2.0 ** (1.0 / 6.0)
        if high >= nyquist:
            break
        bands.append((round(low, 1), round(high, 1)))
    return tuple(bands)


@dataclass(frozen=True)
class Preset:
    """A complete set of training defaults."""

    #: Samples per window and between window starts.
    window: int
    hop: int
    #: Feature names and aliases, as ``edgemon.features.expand_names`` takes them.
    features: tuple[str, ...]
    #: Band-pass before envelope demodulation, Hz; None leaves envelope features out.
    envelope_band: tuple[float, float] | None = None
    #: Defect frequencies for ``env.*`` features, as orders of shaft speed.
    defect_orders: tuple[float, ...] = ()
    #: Relative half-width of the search around each defect frequency.
    envelope_tolerance: float = 0.05
    algorithm: str = "kmeans"
    #: Number of clusters; None chooses it automatically.
    n_clusters: int | None = None
    #: Fewer clusters are fitted when the training data has fewer than this many
    #: windows per cluster (never fewer than the number of labels).
    min_windows_per_cluster: int = 20
    balance_labels: bool = False
    #: ``"blocks"``, per-column weights, or None; see ``edgemon.training.fit.train_model``.
    feature_weights: str | Sequence[float] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def uses_envelope(self) -> bool:
        """True when the features include envelope levels, which need the shaft speed."""
        return any(name.startswith("env.") for name in self.features)

    def feature_options(self, sample_rate: float, shaft_hz: float | None = None) -> dict[str, Any]:
        """Return the bands and envelope settings to pass to ``FeatureExtractor``.

        Parameters
        ----------
        sample_rate : float
            Hz; the third-octave bands stop below its Nyquist frequency.
        shaft_hz : float, optional
            Shaft speed in Hz, needed when the features include ``env.*``.
        """
        options: dict[str, Any] = {"bands": list(third_octave_bands(sample_rate))}
        if self.uses_envelope and self.envelope_band is not None:
            options["envelope"] = {
                "band": list(self.envelope_band),
                "targets": [f"{order:g}x" for order in self.defect_orders],
                "shaft_hz": shaft_hz,
                "tolerance": self.envelope_tolerance,
            }
        return options

    def clusters_for(self, n_windows: int, n_labels: int) -> int | None:
        """Return the number of clusters to fit on ``n_windows`` training windows.

        The preset's ``n_clusters``, capped at one cluster per
        ``min_windows_per_cluster`` windows but never below the number of labels
        (:func:`edgemon.training.fit.cap_clusters`).
        """
        if self.n_clusters is None:
            return None
        from edgemon.training.fit import cap_clusters

        return cap_clusters(self.n_clusters, n_windows, n_labels, self.min_windows_per_cluster)

    def with_changes(self, **changes: Any) -> Preset:
        """Return a copy with some settings replaced."""
        return replace(self, **changes)


#: The defaults of ``edgemon train``, tuned on the CWRU drive-end recordings.
DEFAULT = Preset(
    window=4096,
    hop=1024,
    features=("band.rel_db", "env.level_db"),
    envelope_band=(2500.0, 4000.0),
    defect_orders=tuple(SKF_6205_ORDERS.values()),
    envelope_tolerance=0.05,
    algorithm="kmeans",
    n_clusters=32,
    balance_labels=True,
    feature_weights="blocks",
)
