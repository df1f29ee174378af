"""The feature catalogue: every feature's name, unit, definition and kernel, and the aliases.

Names are ``<domain>.<feature>``: ``time.*`` over the samples of a window
and ``freq.*`` over its amplitude spectrum.  Four families take a parameter.
``band.rms[<low>-<high>]`` is the RMS in a band (Hz) and
``band.rel_db[<low>-<high>]`` the band's share of the power in dB.
``env.level[<frequency>]`` is the envelope-spectrum level at a defect
frequency, given as an order of the shaft speed (``3.5848x``) or in Hz
(``162Hz``).  ``env.level_db[<frequency>]`` is that level over the envelope
spectrum's floor in dB.

Sepin et al. (2023), "Comparison of Clustering Algorithms for Statistical
Features of Vibration Data Sets" (arXiv:2305.06753), compare six statistics
in three groups, which serve as aliases here: ``averaging`` (mean, median),
``variance`` (std, iqr) and ``shape`` (skewness, kurtosis).  ``all`` is the
three groups together.  A group with a domain prefix (``freq.shape``)
expands in that domain only.  Without a prefix it expands in the time
domain and then in the frequency domain.

To add a feature, append one :class:`Feature` (or one :class:`FeatureFamily`)
to the tables below; its ``compute`` receives the batch's shared statistics
(see ``edgemon.features.extractor``) and returns one value per row.
"""

from __future__ import annotations

import difflib
import functools
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgemon.errors import ConfigError
from edgemon.features._envelope import DefectFrequency
from edgemon.features._spectrum import Band
from edgemon.features._stats import ratio

__all__ = [
    "ALIASES",
    "FEATURES",
    "FEATURE_FAMILIES",
    "FEATURE_NAMES",
    "Feature",
    "FeatureFamily",
    "expand_names",
    "parse_band",
    "parse_defect_frequency",
]


@dataclass(frozen=True)
class Feature:
    """One scalar feature per channel and window.

    Attributes
    ----------
    name : str
        Stable name, ``<domain>.<feature>``, stored in model files.
    unit : str
        ``"g"`` stands for the unit of the samples, ``"1"`` for dimensionless.
    definition : str
        One-line formula, shown in ``docs/features.md`` and error messages.
    compute : callable
        ``compute(batch) -> ndarray of shape (n_rows,)``.
    order_statistics : bool
        True when ``compute`` uses the median or quartiles of its domain.
        The extractor then computes them with the other domain's in one go
        and takes the domain's extremes from the same work.
    """

    name: str
    unit: str
    definition: str
    compute: Callable[[Any], np.ndarray]
    order_statistics: bool = False

    @property
    def domain(self) -> str:
        """``"time"`` or ``"freq"``."""
        return self.name.partition(".")[0]


@dataclass(frozen=True)
class FeatureFamily:
    """A feature with a parameter in brackets, such as ``band.rms[10-1000]``.

    Attributes
    ----------
    prefix : str
        The name before the brackets.
    unit, definition : str
        As for :class:`Feature`.
    parse : callable
        ``parse(text) -> parameter`` for the text between the brackets;
        raises ``ValueError`` with the expected form.  The parameter's
        ``str()`` is its canonical text.
    compute : callable
        ``compute(batch, parameter) -> ndarray of shape (n_rows,)``.
    syntax : str
        The form of the name, for messages.
    configured : {"bands", "envelope targets"}
        What the bare prefix (``band.rms``) expands to: the extractor's
        ``bands`` or its envelope ``targets``.
    envelope_floor : bool, default=False
        True when ``compute`` divides by the envelope spectrum's floor, so
        the extractor checks the envelope ``floor_band``.
    """

    prefix: str
    unit: str
    definition: str
    parse: Callable[[str], Any]
    compute: Callable[[Any, Any], np.ndarray]
    syntax: str
    configured: str
    envelope_floor: bool = False


# -- the study's six statistics, in the time and the frequency domain ---------

_STATISTICS: dict[str, tuple[str, str]] = {
    # name: (unit, definition); each is an attribute of SampleStatistics.
    "mean": ("g", "sum(x) / n"),
    "median": ("g", "50th percentile, linear interpolation"),
    "std": ("g", "sqrt(m2), m2 = sum((x - mean)**2) / n (ddof 0)"),
    "iqr": ("g", "75th minus 25th percentile, linear interpolation"),
    "skewness": ("1", "m3 / m2**1.5 (biased); 0 when m2 = 0"),
    "kurtosis": ("1", "m4 / m2**2 - 3 (Fisher, biased); 0 when m2 = 0"),
}
_ORDER_STATISTICS = {"median", "iqr"}

#: Feature groups of the study, in the order their features are expanded.
GROUPS: dict[str, tuple[str, ...]] = {
    "averaging": ("mean", "median"),
    "variance": ("std", "iqr"),
    "shape": ("skewness", "kurtosis"),
}
GROUPS["all"] = GROUPS["averaging"] + GROUPS["variance"] + GROUPS["shape"]


def _statistic_features(domain: str, statistics: str) -> list[Feature]:
    """Return the six statistics of the batch's sample set ``statistics`` (``batch.<statistics>``).

    ``attrgetter`` reads ``batch.time.mean`` without a Python-level call,
    which matters when a single window is transformed.
    """
    return [
        Feature(
            f"{domain}.{name}",
            unit,
            definition,
            operator.attrgetter(f"{statistics}.{name}"),
            order_statistics=name in _ORDER_STATISTICS,
        )
        for name, (unit, definition) in _STATISTICS.items()
    ]


# -- condition indicators in the time domain ----------------------------------
# Peak and the factors use d = x - mean, so a static offset (gravity on a
# vertical axis, an accelerometer's bias) does not mask the vibration.


def _peak(batch: Any) -> np.ndarray:
    time = batch.time
    return np.maximum(time.maximum - time.mean, time.mean - time.minimum)


def _crest_factor(batch: Any) -> np.ndarray:
    return ratio(_peak(batch), batch.time.std)


def _shape_factor(batch: Any) -> np.ndarray:
    return ratio(batch.time.std, batch.time.mean_abs_deviation)


def _impulse_factor(batch: Any) -> np.ndarray:
    return ratio(_peak(batch), batch.time.mean_abs_deviation)


def _clearance_factor(batch: Any) -> np.ndarray:
    root_mean = batch.time.mean_sqrt_abs_deviation
    return ratio(_peak(batch), root_mean * root_mean)


_INDICATORS = [
    Feature(
        "time.rms_ac",
        "g",
        "sqrt(mean(d**2)), d = x - mean (equals time.std)",
        operator.attrgetter("time.std"),
    ),
    Feature("time.rms", "g", "sqrt(mean(x**2)), offset included", operator.attrgetter("time.rms")),
    Feature("time.peak", "g", "max(|d|)", _peak),
    Feature("time.peak_to_peak", "g", "max(x) - min(x)", lambda b: b.time.maximum - b.time.minimum),
    Feature(
        "time.crest_factor", "1", "max(|d|) / sqrt(mean(d**2)); 0 when constant", _crest_factor
    ),
    Feature(
        "time.shape_factor", "1", "sqrt(mean(d**2)) / mean(|d|); 0 when constant", _shape_factor
    ),
    Feature("time.impulse_factor", "1", "max(|d|) / mean(|d|); 0 when constant", _impulse_factor),
    Feature(
        "time.clearance_factor",
        "1",
        "max(|d|) / mean(sqrt(|d|))**2; 0 when constant",
        _clearance_factor,
    ),
]

_SPECTRAL = [
    Feature(
        "freq.centroid",
        "Hz",
        "sum(f_k A_k) / sum(A_k); 0 for a zero spectrum",
        operator.attrgetter("spectrum.centroid"),
    ),
]

#: Every scalar feature, by name, in catalogue order.
FEATURES: dict[str, Feature] = {
    feature.name: feature
    for feature in (
        _statistic_features("time", "time")
        + _INDICATORS
        + _statistic_features("freq", "amplitudes")
        + _SPECTRAL
    )
}

#: Names of the scalar features, in catalogue order.
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)


# -- parametrised families -------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_BAND_PATTERN = re.compile(rf"{_NUMBER}\s*-\s*{_NUMBER}")
_DEFECT_PATTERN = re.compile(rf"{_NUMBER}\s*(x|Hz)")


def parse_band(text: str) -> Band:
    """Parse ``"<low>-<high>"`` (Hz) into a :class:`Band`; raise ``ValueError`` if malformed."""
    match = _BAND_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"a band is written <low>-<high> in Hz, for example 10-1000, got {text!r}")
    low, high = float(match[1]), float(match[2])
    if not low < high:
        raise ValueError(f"a band's low edge must be below its high edge, got {text!r}")
    return Band(low, high)


def parse_defect_frequency(text: str) -> DefectFrequency:
    """Parse ``"3.5848x"`` (an order of the shaft speed) or ``"162Hz"``.

    Raises ``ValueError`` with the expected form if ``text`` is malformed.
    """
    match = _DEFECT_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            "a defect frequency is an order of the shaft speed such as 3.5848x "
            f"or a frequency such as 162Hz, got {text!r}"
        )
    value = float(match[1])
    if value <= 0:
        raise ValueError(f"a defect frequency must be positive, got {text!r}")
    return DefectFrequency(value, match[2])


#: Features with a parameter, by prefix.
FEATURE_FAMILIES: dict[str, FeatureFamily] = {
    family.prefix: family
    for family in (
        FeatureFamily(
            "band.rms",
            "g",
            "sqrt(sum over low <= f_k < high of c_k |X_k|**2 / (nfft sum(w**2)))",
            parse_band,
            lambda batch, band: batch.spectrum.band_rms(band),
            "band.rms[<low>-<high>] (Hz)",
            "bands",
        ),
        FeatureFamily(
            "band.rel_db",
            "dB",
            "10 log10(sum over low <= f_k < high of c_k |X_k|**2 / sum over f_k > 0 of "
            "c_k |X_k|**2), clipped to [-200, 200]",
            parse_band,
            lambda batch, band: batch.spectrum.band_rel_db(band),
            "band.rel_db[<low>-<high>] (Hz)",
            "bands",
        ),
        FeatureFamily(
            "env.level",
            "g",
            "max envelope-spectrum amplitude within max(tolerance f, df) of f",
            parse_defect_frequency,
            lambda batch, target: batch.envelope.level(target),
            "env.level[<order>x] or env.level[<frequency>Hz]",
            "envelope targets",
        ),
        FeatureFamily(
            "env.level_db",
            "dB",
            "20 log10(env.level / median envelope-spectrum amplitude over floor_band), "
            "clipped to [-200, 200]",
            parse_defect_frequency,
            lambda batch, target: batch.envelope.level_db(target),
            "env.level_db[<order>x] or env.level_db[<frequency>Hz]",
            "envelope targets",
            envelope_floor=True,
        ),
    )
}

_PARAMETRISED = re.compile(r"([a-z_.]+)\[(.*)\]")


@dataclass(frozen=True)
class ResolvedName:
    """A canonical feature name with what computes it.

    ``compute(batch)`` returns the feature for every row of the batch,
    shape (n_rows,).
    """

    name: str
    compute: Callable[[Any], np.ndarray]
    feature: Feature | None = None
    family: FeatureFamily | None = None
    parameter: Any = None


def resolve(name: str) -> ResolvedName:
    """Resolve one canonical or bracketed feature name; raise ``ConfigError`` if unknown."""
    feature = FEATURES.get(name)
    if feature is not None:
        return ResolvedName(name, feature.compute, feature=feature)

    match = _PARAMETRISED.fullmatch(name)
    family = FEATURE_FAMILIES.get(match[1]) if match else None
    if family is None:
        raise ConfigError(_unknown_name_message(name))
    try:
        parameter = family.parse(match[2])
    except ValueError as error:
        raise ConfigError(f"invalid feature name {name!r}: {error}") from error
    compute = functools.partial(_compute_family, family.compute, parameter)
    return ResolvedName(
        f"{family.prefix}[{parameter}]", compute, family=family, parameter=parameter
    )


def _compute_family(
    compute: Callable[[Any, Any], np.ndarray], parameter: Any, batch: Any
) -> np.ndarray:
    return compute(batch, parameter)


def _unknown_name_message(name: str) -> str:
    valid = [*FEATURE_NAMES, *_alias_names(), *(f.syntax for f in FEATURE_FAMILIES.values())]
    close = difflib.get_close_matches(name, [*FEATURE_NAMES, *_alias_names()], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown feature name {name!r}{hint}; valid names are {', '.join(valid)}"


def _alias_names() -> list[str]:
    return [*GROUPS, *(f"{domain}.{group}" for domain in ("time", "freq") for group in GROUPS)]


#: Every alias and the names it expands to.
ALIASES: dict[str, tuple[str, ...]] = {}
for _group, _members in GROUPS.items():
    for _domain in ("time", "freq"):
        ALIASES[f"{_domain}.{_group}"] = tuple(f"{_domain}.{member}" for member in _members)
    ALIASES[_group] = ALIASES[f"time.{_group}"] + ALIASES[f"freq.{_group}"]


def expand_names(
    names: str | Iterable[str],
    *,
    bands: Sequence[Band] = (),
    envelope_targets: Sequence[DefectFrequency] = (),
) -> tuple[str, ...]:
    """Expand aliases and bare family names into canonical feature names.

    Parameters
    ----------
    names : str or iterable of str
        Feature names, aliases (``all``, ``shape``, ``time.variance``...),
        bracketed family names (``band.rms[10-1000]``) or bare family names
        (``band.rms``, ``env.level``).
    bands : sequence of Band, default=()
        What the bare names ``band.rms`` and ``band.rel_db`` expand to.
    envelope_targets : sequence of DefectFrequency, default=()
        What the bare names ``env.level`` and ``env.level_db`` expand to.

    Returns
    -------
    tuple of str
        Canonical names in the order given, each once (a name repeated by
        overlapping aliases keeps its first position).

    Raises
    ------
    ConfigError
        For an unknown or malformed name, listing the valid names, or for a
        bare family name with nothing to expand to.

    Examples
    --------
    >>> expand_names(["time.averaging", "freq.kurtosis"])
    ('time.mean', 'time.median', 'freq.kurtosis')
    """
    if isinstance(names, str):
        names = [names]
    parameters = {"bands": bands, "envelope targets": envelope_targets}
    bare = {
        prefix: ([f"{prefix}[{p}]" for p in parameters[family.configured]], family.configured)
        for prefix, family in FEATURE_FAMILIES.items()
    }

    expanded: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str):
            raise ConfigError(f"feature names must be strings, got {name!r}")
        if name in ALIASES:
            members = ALIASES[name]
        elif name in bare:
            members, option = bare[name]
            if not members:
                raise ConfigError(
                    f"the feature name {name!r} expands to the configured {option}, "
                    f"but none are configured; configure some or name them, as in "
                    f"{FEATURE_FAMILIES[name].syntax}"
                )
        else:
            members = [resolve(name).name]
        for member in members:
            expanded.setdefault(member)
    if not expanded:
        raise ConfigError("no feature names given; name at least one, for example 'all'")
    return tuple(expanded)
