"""Default training settings: window, hop, features and clustering.

``edgemon train`` uses :data:`DEFAULT` unless the user overrides a setting on
the command line.  The defaults are chosen on the CWRU bearing data with a
motor load held out; docs/evaluation/ has the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT", "Preset"]


@dataclass(frozen=True)
class Preset:
    """A complete set of training defaults."""

    #: Samples per window and between window starts.
    window: int
    hop: int
    #: Feature names and aliases, as ``edgemon.features.expand_names`` takes them.
    features: tuple[str, ...]
    #: Frequency bands (low, high) in Hz for ``band.*`` features.
    bands: tuple[tuple[float, float], ...] = ()
    #: Envelope settings for ``env.*`` features, or None.
    envelope: Mapping[str, Any] | None = None
    algorithm: str = "kmeans"
    #: Number of clusters; None chooses it automatically.
    n_clusters: int | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    def feature_options(self) -> dict[str, Any]:
        """Return the keyword arguments of ``FeatureExtractor`` besides names, rate and window."""
        options: dict[str, Any] = {"bands": list(self.bands)}
        if self.envelope is not None:
            options["envelope"] = dict(self.envelope)
        return options

    def with_features(self, names: Sequence[str]) -> Preset:
        """Return a copy with other feature names."""
        return Preset(**{**self.__dict__, "features": tuple(names)})


#: The defaults of ``edgemon train``.
DEFAULT = Preset(
    window=2048,
    hop=1024,
    features=("time.all", "freq.all"),
    algorithm="kmeans",
    n_clusters=8,
)
