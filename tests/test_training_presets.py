"""Tests of the training defaults: bands, envelope settings and the cluster cap."""

from __future__ import annotations

import itertools

import pytest

from edgemon.features import FeatureExtractor
from edgemon.training.presets import DEFAULT, SKF_6205_ORDERS, third_octave_bands


@pytest.mark.parametrize(
    ("sample_rate", "n_bands", "last_high"),
    [(12000.0, 18, 5656.9), (48000.0, 18, 5656.9), (8000.0, 16, 3563.6), (3200.0, 12, 1414.2)],
)
def test_third_octave_bands_below_nyquist(sample_rate, n_bands, last_high):
    bands = third_octave_bands(sample_rate)
    assert len(bands) == n_bands
    assert bands[0] == (88.4, 111.4)
    assert bands[-1][1] == last_high
    assert all(high < sample_rate / 2 for _, high in bands)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bands))


@pytest.mark.parametrize(
    ("n_windows", "n_labels", "expected"),
    [(5000, 4, 32), (640, 4, 32), (639, 4, 31), (197, 4, 9), (153, 1, 7), (40, 4, 4), (3, 1, 1)],
)
def test_clusters_capped_by_windows(n_windows, n_labels, expected):
    assert DEFAULT.clusters_for(n_windows, n_labels) == expected


def test_clusters_auto_stays_auto():
    assert DEFAULT.with_changes(n_clusters=None).clusters_for(1000, 4) is None


def test_default_builds_extractor():
    options = DEFAULT.feature_options(12000.0, shaft_hz=1797 / 60)
    extractor = FeatureExtractor(DEFAULT.features, 12000.0, DEFAULT.window, ("DE",), **options)
    assert len(extractor.columns) == 18 + len(SKF_6205_ORDERS)
    assert extractor.columns[0] == "DE:band.rel_db[88.4-111.4]"
    assert extractor.columns[-1] == "DE:env.level_db[1x]"
