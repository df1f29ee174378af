"""The evaluation grid: algorithms, feature sets, domains, PCA settings, k and seeds.

The grid follows Sepin et al. (2023), "Comparison of Clustering Algorithms
for Statistical Features of Vibration Data Sets": six statistics (mean,
median, standard deviation, interquartile range, skewness, kurtosis) in the
time and the frequency domain, alone, in the groups averaging (mean, median),
variance (std, iqr) and shape (skewness, kurtosis), and all together;
K-means, Gaussian mixtures and OPTICS; with and without PCA; for several
numbers of clusters.  One more feature set, ``default``, is the feature set
that ``edgemon train`` uses by default (:data:`edgemon.training.presets.DEFAULT`),
so that the report shows what it gains over the study's statistics.

:class:`Grid` validates the settings once.  :func:`feature_configs` turns its
feature sets and domains into column selections of the feature matrices.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edgemon.errors import ConfigError
from edgemon.features.catalogue import GROUPS

__all__ = [
    "ALGORITHMS",
    "CANDIDATE",
    "DOMAINS",
    "FEATURE_SETS",
    "K_ALGORITHMS",
    "MIN_PCA_COLUMNS",
    "STATISTICS",
    "STUDY_FEATURE_SETS",
    "FeatureConfig",
    "Grid",
    "feature_configs",
    "format_pca",
    "parse_choices",
    "parse_pca_settings",
]

#: Clustering algorithms: K-means, a Gaussian mixture per covariance type, and OPTICS.
ALGORITHMS = ("kmeans", "gmm-full", "gmm-tied", "gmm-diag", "gmm-spherical", "optics")
#: Algorithms that take a number of clusters; OPTICS finds its own.
K_ALGORITHMS = ALGORITHMS[:-1]
_ALGORITHM_ALIASES = {"gmm": ALGORITHMS[1:5]}

#: The study's six statistics, each computed in the time and the frequency domain.
STATISTICS = GROUPS["all"]
#: Feature sets of the study: each statistic, each group, and all six.
STUDY_FEATURE_SETS = (*STATISTICS, "averaging", "variance", "shape", "all")
#: The feature set of ``edgemon train``'s default preset.
CANDIDATE = "default"
FEATURE_SETS = (*STUDY_FEATURE_SETS, CANDIDATE)
_FEATURE_ALIASES = {"statistics": STATISTICS, "groups": ("averaging", "variance", "shape")}

#: ``both`` puts the time and the frequency features side by side.
DOMAINS = ("time", "freq", "both")

#: PCA runs only on feature sets with at least this many columns, because
#: with one or two columns it can only rotate the features or keep one of
#: two directions.  The study uses PCA for feature selection.
MIN_PCA_COLUMNS = 3

_MAX_K = 50


@dataclass(frozen=True)
class Grid:
    """The settings an evaluation tries, validated.

    Parameters
    ----------
    algorithms : sequence of str
        From :data:`ALGORITHMS`.
    feature_sets : sequence of str
        From :data:`FEATURE_SETS`.
    domains : sequence of {"time", "freq", "both"}
        Domains of the study's feature sets; the ``default`` set has its own.
    pca : sequence of None, int or float
        None for no PCA, an int for a number of components, a float in
        (0, 1) for the share of variance the components must explain.
    max_clusters : int
        K-means and the mixtures run for every k from 2 to this, inclusive.
    seeds : int
        Number of random seeds per setting (seeds 0 to ``seeds - 1``).

    Raises
    ------
    ConfigError
        If a setting is unknown, repeated or out of range.
    """

    algorithms: tuple[str, ...] = ALGORITHMS
    feature_sets: tuple[str, ...] = FEATURE_SETS
    domains: tuple[str, ...] = DOMAINS
    pca: tuple[int | float | None, ...] = (None, 2, 0.9)
    max_clusters: int = 8
    seeds: int = 3

    def __post_init__(self) -> None:
        for name, values, choices in (
            ("algorithms", self.algorithms, ALGORITHMS),
            ("feature_sets", self.feature_sets, FEATURE_SETS),
            ("domains", self.domains, DOMAINS),
        ):
            values = tuple(values)
            object.__setattr__(self, name, values)
            if not values:
                raise ConfigError(f"{name} must name at least one of {', '.join(choices)}")
            for value in values:
                if value not in choices:
                    raise ConfigError(_unknown(name, value, choices))
            if len(set(values)) != len(values):
                raise ConfigError(f"{name} lists a value twice: {', '.join(values)}")
        object.__setattr__(self, "pca", tuple(self.pca))
        if not self.pca:
            raise ConfigError("pca must list at least one setting, for example none")
        for setting in self.pca:
            _check_pca(setting)
        if len(set(self.pca)) != len(self.pca):
            raise ConfigError(f"pca lists a setting twice: {', '.join(map(format_pca, self.pca))}")
        if not _is_int(self.max_clusters) or not 2 <= self.max_clusters <= _MAX_K:
            raise ConfigError(
                f"max_clusters must be an integer from 2 to {_MAX_K}, got {self.max_clusters!r}"
            )
        if not _is_int(self.seeds) or self.seeds < 1:
            raise ConfigError(f"seeds must be a number of seeds >= 1, got {self.seeds!r}")

    @classmethod
    def quick(cls) -> Grid:
        """Return a small grid that runs in seconds, for a first look and for tests."""
        return cls(
            algorithms=("kmeans", "gmm-full", "optics"),
            feature_sets=("variance", "shape", "all", CANDIDATE),
            domains=("both",),
            pca=(None, 2),
            max_clusters=4,
            seeds=1,
        )

    @property
    def k_values(self) -> tuple[int, ...]:
        """Numbers of clusters tried by K-means and the mixtures."""
        return tuple(range(2, self.max_clusters + 1))

    @property
    def seed_values(self) -> tuple[int, ...]:
        """The random seeds."""
        return tuple(range(self.seeds))

    def to_dict(self) -> dict:
        """Return the grid as plain JSON types, for the report."""
        return {
            "algorithms": list(self.algorithms),
            "feature_sets": list(self.feature_sets),
            "domains": list(self.domains),
            "pca": [format_pca(setting) for setting in self.pca],
            "max_clusters": self.max_clusters,
            "seeds": self.seeds,
        }


@dataclass(frozen=True)
class FeatureConfig:
    """Columns of a feature matrix that one grid setting clusters on."""

    #: A name from :data:`FEATURE_SETS`.
    feature_set: str
    #: ``"time"``, ``"freq"``, ``"both"``, or ``"preset"`` for the ``default`` set.
    domain: str
    #: Column names, ``"<channel>:<feature>"``.
    columns: tuple[str, ...]

    @property
    def is_candidate(self) -> bool:
        """True for the ``default`` feature set, which has its own feature matrix."""
        return self.feature_set == CANDIDATE

    def pca_settings(self, grid: Grid) -> tuple[int | float | None, ...]:
        """Return the grid's PCA settings that apply to these columns.

        No PCA always applies.  PCA applies where there are at least
        :data:`MIN_PCA_COLUMNS` columns, and a number of components only
        where it is smaller than the number of columns.
        """
        n_columns = len(self.columns)
        settings = []
        for setting in grid.pca:
            if setting is None or (
                n_columns >= MIN_PCA_COLUMNS and (isinstance(setting, float) or setting < n_columns)
            ):
                settings.append(setting)
        return tuple(settings)


def feature_configs(
    grid: Grid, study_columns: Sequence[str], candidate_columns: Sequence[str] | None
) -> list[FeatureConfig]:
    """Return the column selection of every feature set and domain in the grid.

    Parameters
    ----------
    grid : Grid
    study_columns : sequence of str
        Columns of the study's matrix, ``"<channel>:<domain>.<statistic>"``,
        with every statistic in both domains.
    candidate_columns : sequence of str or None
        Columns of the ``default`` feature set's matrix; None leaves the
        ``default`` set out (when it cannot be computed for the data set).

    Returns
    -------
    list of FeatureConfig
        In grid order: feature sets, then domains.
    """
    configs = []
    for feature_set in grid.feature_sets:
        if feature_set == CANDIDATE:
            if candidate_columns is not None:
                configs.append(FeatureConfig(CANDIDATE, "preset", tuple(candidate_columns)))
            continue
        statistics = GROUPS.get(feature_set, (feature_set,))
        for domain in grid.domains:
            domains = ("time", "freq") if domain == "both" else (domain,)
            selected = {f"{prefix}.{statistic}" for prefix in domains for statistic in statistics}
            columns = tuple(c for c in study_columns if c.partition(":")[2] in selected)
            configs.append(FeatureConfig(feature_set, domain, columns))
    return configs


def parse_choices(
    option: str,
    text: str,
    choices: Sequence[str],
    aliases: dict[str, tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """Parse a comma-separated command-line list of names, expanding aliases.

    Raises
    ------
    ConfigError
        For an empty list or an unknown name; the message names the option,
        the closest valid name and every valid name.
    """
    aliases = aliases if aliases is not None else _aliases_for(choices)
    names: dict[str, None] = {}
    for part in (part.strip().lower() for part in text.split(",")):
        if not part:
            continue
        if part in aliases:
            names.update(dict.fromkeys(aliases[part]))
        elif part in choices:
            names[part] = None
        else:
            raise ConfigError(_unknown(option, part, (*choices, *aliases)))
    if not names:
        raise ConfigError(f"{option} must list at least one of {', '.join(choices)}, got {text!r}")
    return tuple(names)


def parse_pca_settings(option: str, text: str) -> tuple[int | float | None, ...]:
    """Parse a list such as ``none,2,0.9`` into PCA settings.

    Raises
    ------
    ConfigError
        For a value that is neither ``none``, an integer >= 1 nor a share in (0, 1).
    """
    settings: list[int | float | None] = []
    for part in (part.strip().lower() for part in text.split(",")):
        if not part:
            continue
        if part == "none":
            setting: int | float | None = None
        else:
            try:
                value = float(part)
            except ValueError:
                value = float("nan")
            if value >= 1 and value.is_integer() and "." not in part:
                setting = int(value)
            elif 0 < value < 1:
                setting = value
            else:
                raise ConfigError(
                    f"{option}: {part!r} is not a PCA setting; use none, a number of "
                    "components >= 1 such as 2, or a share of variance in (0, 1) such as 0.9"
                )
        if setting not in settings:
            settings.append(setting)
    if not settings:
        raise ConfigError(f"{option} must list at least one PCA setting, for example none,2,0.9")
    return tuple(settings)


def format_pca(setting: int | float | None) -> str:
    """Return a PCA setting as the report writes it: ``none``, ``2`` or ``0.9``."""
    return "none" if setting is None else f"{setting:g}"


def _aliases_for(choices: Iterable[str]) -> dict[str, tuple[str, ...]]:
    choices = tuple(choices)
    if choices == ALGORITHMS:
        return dict(_ALGORITHM_ALIASES)
    if choices == FEATURE_SETS:
        return dict(_FEATURE_ALIASES)
    return {}


def _check_pca(setting: object) -> None:
    if setting is None:
        return
    if _is_int(setting) and setting >= 1:
        return
    if isinstance(setting, float) and 0.0 < setting < 1.0:
        return
    raise ConfigError(
        "a PCA setting must be None, a number of components >= 1 or a share of variance "
        f"in (0, 1), got {setting!r}"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unknown(option: str, value: object, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{option}: unknown value {value!r}{hint}; choose from {', '.join(choices)}"
