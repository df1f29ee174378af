"""Feature names: aliases, domain prefixes, families and the errors for unknown names."""

from __future__ import annotations

import pytest

from edgemon.errors import ConfigError
from edgemon.features import (
    ALIASES,
    FEATURE_FAMILIES,
    FEATURE_NAMES,
    FEATURES,
    Band,
    DefectFrequency,
    expand_names,
)

SIX = ("mean", "median", "std", "iqr", "skewness", "kurtosis")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ("averaging", ("time.mean", "time.median", "freq.mean", "freq.median")),
        ("variance", ("time.std", "time.iqr", "freq.std", "freq.iqr")),
        ("shape", ("time.skewness", "time.kurtosis", "freq.skewness", "freq.kurtosis")),
        ("time.averaging", ("time.mean", "time.median")),
        ("freq.shape", ("freq.skewness", "freq.kurtosis")),
        ("time.all", tuple(f"time.{s}" for s in SIX)),
        ("all", tuple(f"time.{s}" for s in SIX) + tuple(f"freq.{s}" for s in SIX)),
        (["freq.kurtosis", "time.mean"], ("freq.kurtosis", "time.mean")),
        (["time.mean", "averaging"], ("time.mean", "time.median", "freq.mean", "freq.median")),
        (["time.std", "time.std"], ("time.std",)),
    ],
)
def test_expand_names_aliases(names, expected):
    assert expand_names(names) == expected


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("band.rms[10-1000]", "band.rms[10-1000]"),
        ("band.rms[10.0-1000.00]", "band.rms[10-1000]"),
        ("band.rms[ 0.5 - 20 ]", "band.rms[0.5-20]"),
        ("env.level[3.5848x]", "env.level[3.5848x]"),
        ("env.level[162.0Hz]", "env.level[162Hz]"),
        ("band.rel_db[88.40-111.4]", "band.rel_db[88.4-111.4]"),
        ("env.level_db[ 5.41520x ]", "env.level_db[5.4152x]"),
        ("env.level_db[30.00Hz]", "env.level_db[30Hz]"),
    ],
)
def test_expand_names_canonical_families(name, canonical):
    assert expand_names([name]) == (canonical,)


def test_expand_names_bare_families():
    names = expand_names(
        ["band.rms", "env.level"],
        bands=[Band(10, 1000), Band(1000, 5000)],
        envelope_targets=[DefectFrequency(5.4152, "x")],
    )
    assert names == ("band.rms[10-1000]", "band.rms[1000-5000]", "env.level[5.4152x]")


def test_expand_names_bare_level_families():
    names = expand_names(
        ["env.level_db", "band.rel_db"],
        bands=[Band(10, 1000)],
        envelope_targets=[DefectFrequency(5.4152, "x"), DefectFrequency(30, "Hz")],
    )
    assert names == ("env.level_db[5.4152x]", "env.level_db[30Hz]", "band.rel_db[10-1000]")


@pytest.mark.parametrize("name", ["band.rms", "env.level", "band.rel_db", "env.level_db"])
def test_expand_names_bare_family_unconfigured(name):
    with pytest.raises(ConfigError, match="none are configured"):
        expand_names([name])


def test_unknown_name_suggests_and_lists():
    with pytest.raises(ConfigError) as raised:
        expand_names(["time.kurt"])
    message = str(raised.value)
    assert "unknown feature name 'time.kurt'" in message
    assert "did you mean 'time.kurtosis'?" in message
    for valid in ("time.clearance_factor", "freq.centroid", "freq.shape", "band.rms[<low>-<high>]"):
        assert valid in message


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("band.rms[1000-10]", "low edge must be below"),
        ("band.rms[10-10]", "low edge must be below"),
        ("band.rms[ten-20]", "written <low>-<high>"),
        ("band.rms[-5-20]", "written <low>-<high>"),
        ("env.level[3.5]", "order of the shaft speed"),
        ("env.level[0x]", "must be positive"),
        ("env.level[12 rpm]", "order of the shaft speed"),
        ("spectral.rms[1-2]", "unknown feature name"),
        ("time.mean[1-2]", "unknown feature name"),
    ],
)
def test_malformed_family_names(name, match):
    with pytest.raises(ConfigError, match=match):
        expand_names([name])


@pytest.mark.parametrize("names", [[], [3], [None]])
def test_expand_names_rejects_empty_and_non_strings(names):
    with pytest.raises(ConfigError):
        expand_names(names)


def test_catalogue_is_consistent():
    assert tuple(FEATURES) == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    for name, feature in FEATURES.items():
        assert feature.name == name
        assert feature.domain in ("time", "freq")
        assert feature.unit in ("g", "1", "Hz")
        assert feature.definition
    for members in ALIASES.values():
        assert set(members) <= set(FEATURE_NAMES)
    assert set(FEATURE_FAMILIES) == {"band.rms", "band.rel_db", "env.level", "env.level_db"}
