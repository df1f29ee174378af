"""FeatureExtractor: configuration checks, the stored specification and input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgemon.errors import ConfigError
from edgemon.features import FeatureExtractor, extract, window_flags

ENVELOPE = {"band": (2000, 5000), "shaft_hz": 29.95, "targets": ["3.5848x", "5.4152x"]}


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"window": 1001}, r"window must be an even number of samples >= 16, got 1001"),
        ({"window": 8}, r"window must be an even number of samples >= 16, got 8"),
        ({"window": 2048.0}, r"window must be an even number"),
        ({"window": True}, r"window must be an even number"),
        ({"nfft": 4096}, r"nfft=4096 is longer than the window of 2048 samples"),
        ({"nfft": 1001}, r"nfft must be an even number >= 16, got 1001"),
        ({"nfft": 1536}, r"nfft=1536 does not tile the window of 2048 samples"),
        ({"sample_rate": 0}, r"sample_rate must be positive and finite"),
        ({"sample_rate": float("nan")}, r"sample_rate must be positive and finite"),
        ({"sample_rate": "12k"}, r"sample_rate must be a number of Hz"),
        ({"channels": ()}, r"channels must be a non-empty sequence"),
        ({"channels": "DE"}, r"channels must be a non-empty sequence"),
        ({"channels": ("x", "x")}, r"channel names must be distinct"),
        ({"channels": ("a:b",)}, r"without ':'"),
        ({"resultant": True}, r"resultant=True needs at least 2 channels"),
        ({"channels": ("x", "resultant"), "resultant": True}, r"a channel is named 'resultant'"),
        ({"resultant": 1}, r"resultant must be True or False"),
        ({"bands": [(10, 5)]}, r"a band must be a pair \(low, high\)"),
        ({"bands": [(-1, 5)]}, r"a band must be a pair"),
        ({"bands": "10-100"}, r"bands must be a list"),
        ({"bands": [(5000, 7000)]}, r"above Nyquist"),
        ({"fft_window": "flattop"}, r"fft_window must be 'hann'"),
    ],
)
def test_extractor_rejects_configuration(options, match):
    arguments = {"names": "all", "sample_rate": 12000.0, "window": 2048} | options
    with pytest.raises(ConfigError, match=match):
        FeatureExtractor(**arguments)


def test_band_above_nyquist_message():
    with pytest.raises(ConfigError) as raised:
        FeatureExtractor(["band.rms[5000-7000]"], 12000, 2048)
    assert str(raised.value) == (
        "band 'band.rms[5000-7000]' is above Nyquist (6000 Hz) at sample_rate=12000; "
        "lower its upper edge"
    )


def test_band_without_bins_rejected():
    with pytest.raises(ConfigError, match=r"contains no FFT bin at the resolution of 5.859 Hz"):
        FeatureExtractor(["band.rms[100-101]"], 12000, 2048)


def test_band_at_nyquist_accepted():
    extractor = FeatureExtractor(["band.rms[5000-6000]"], 12000, 2048)
    assert extractor.names == ("band.rms[5000-6000]",)


@pytest.mark.parametrize(
    ("names", "envelope", "match"),
    [
        (["env.level[100Hz]"], None, r"needs envelope settings"),
        (["env.level[3.5848x]"], {"band": (2000, 5000)}, r"set envelope shaft_hz"),
        (["env.level[4000Hz]"], {"band": (2000, 5000)}, r"not below the envelope band's width"),
        (["time.std"], {"band": (2000, 7000)}, r"envelope band 2000-7000 Hz must satisfy"),
        (["time.std"], {"band": (0, 1000)}, r"must satisfy 0 < low"),
        (["time.std"], {"band": (2000, 2005)}, r"narrower than two FFT bins"),
        (["time.std"], {"band": (2000, 5000), "shaft_hz": -1}, r"shaft_hz must be a positive"),
        (["time.std"], {"band": (2000, 5000), "tolerance": 0.7}, r"tolerance must be a fraction"),
        (
            ["time.std"],
            {"band": (2000, 5000), "speed": 3},
            r"unknown envelope settings \['speed'\]",
        ),
        (["time.std"], {"shaft_hz": 30}, r"envelope settings need a band"),
        (["time.std"], {"band": (2000, 5000), "targets": "3x"}, r"targets must be a list"),
        (["time.std"], {"band": (2000, 5000), "targets": ["3"]}, r"invalid envelope target"),
        (["time.std"], {"band": (2000, 5000), "targets": ["3x"]}, r"set envelope shaft_hz"),
        (["time.std"], [2000, 5000], r"envelope must be a mapping"),
    ],
)
def test_extractor_rejects_envelope(names, envelope, match):
    with pytest.raises(ConfigError, match=match):
        FeatureExtractor(names, 12000, 2048, envelope=envelope)


def test_extractor_names_and_columns():
    extractor = FeatureExtractor(
        ["time.shape", "band.rms", "env.level"],
        12000,
        2048,
        ("DE", "FE"),
        bands=[(10, 1000), "1000-3000"],
        envelope=ENVELOPE,
    )
    assert extractor.names == (
        "time.skewness",
        "time.kurtosis",
        "band.rms[10-1000]",
        "band.rms[1000-3000]",
        "env.level[3.5848x]",
        "env.level[5.4152x]",
    )
    assert extractor.columns[:2] == ("DE:time.skewness", "DE:time.kurtosis")
    assert extractor.columns[6:8] == ("FE:time.skewness", "FE:time.kurtosis")
    assert extractor.n_features == 12


def test_specification_round_trip():
    extractor = FeatureExtractor(
        ["all", "band.rms", "env.level[100Hz]"],
        12000,
        2048,
        ("x", "y", "z"),
        resultant=True,
        nfft=1024,
        bands=[(10, 1000)],
        envelope=ENVELOPE,
    )
    spec = json.loads(json.dumps(extractor.to_dict()))
    rebuilt = FeatureExtractor.from_dict(spec)
    assert rebuilt == extractor
    assert rebuilt.columns == extractor.columns
    windows = np.random.default_rng(0).normal(size=(3, 2048, 3))
    np.testing.assert_array_equal(rebuilt.transform(windows), extractor.transform(windows))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"version": 2}, r"version 2 is not supported"),
        ({"colour": "red"}, r"unknown keys \['colour'\]"),
        ({"window": None}, r"window must be an even number"),
        ({"names": ["time.kurt"]}, r"unknown feature name"),
    ],
)
def test_from_dict_rejects(change, match):
    spec = FeatureExtractor("all", 12000, 2048).to_dict() | change
    with pytest.raises(ConfigError, match=match):
        FeatureExtractor.from_dict(spec)


def test_from_dict_missing_key():
    spec = FeatureExtractor("all", 12000, 2048).to_dict()
    del spec["channels"]
    with pytest.raises(ConfigError, match=r"missing keys \['channels'\]"):
        FeatureExtractor.from_dict(spec)


@pytest.mark.parametrize(
    ("windows", "match"),
    [
        (np.zeros((4, 1024)), r"windows must have shape \(n_windows, 2048\)"),
        (np.zeros(2048), r"windows must have shape"),
        (np.zeros((4, 2048, 2)), r"windows must have shape"),
        (np.zeros((4, 2048), dtype=complex), r"windows must hold real numbers"),
        (np.zeros((4, 2048), dtype=bool), r"windows must hold real numbers"),
        (np.array([["a"] * 2048]), r"windows must hold real numbers"),
    ],
)
def test_transform_rejects_windows(windows, match):
    extractor = FeatureExtractor("all", 12000, 2048)
    with pytest.raises(ConfigError, match=match):
        extractor.transform(windows)


def test_transform_accepts_one_channel_shapes():
    windows = np.random.default_rng(1).normal(size=(5, 2048))
    extractor = FeatureExtractor("all", 12000, 2048)
    expected = extractor.transform(windows)
    np.testing.assert_array_equal(extractor.transform(windows[:, :, np.newaxis]), expected)
    np.testing.assert_array_equal(extractor.transform(windows.tolist()), expected)
    np.testing.assert_array_equal(extractor.transform(np.asfortranarray(windows)), expected)


def test_transform_empty_batch():
    features = FeatureExtractor("all", 12000, 2048, ("x", "y")).transform(np.zeros((0, 2048, 2)))
    assert features.shape == (0, 24)


def test_transform_batches_do_not_share_results():
    rng = np.random.default_rng(2)
    extractor = FeatureExtractor("all", 12000, 2048)
    first_windows = rng.normal(size=(4, 2048))
    first = extractor.transform(first_windows)
    kept = first.copy()
    extractor.transform(rng.normal(size=(64, 2048)))
    extractor.transform(rng.normal(size=(1, 2048)))
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(extractor.transform(first_windows), kept)


def test_extract_rejects_bad_shape():
    with pytest.raises(ConfigError, match=r"windows must have shape"):
        extract(np.zeros(2048), 12000, "all")


@pytest.mark.parametrize(
    "module",
    [
        "edgemon.features",
        "edgemon.features.catalogue",
        "edgemon.features.extractor",
        "edgemon.features.flags",
    ],
)
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0


def test_envelope_settings_object_validated():
    from edgemon.features import Band, DefectFrequency, EnvelopeSettings

    good = EnvelopeSettings(Band(2000, 5000), (DefectFrequency(3.5848, "x"),), shaft_hz=30)
    extractor = FeatureExtractor(["env.level"], 12000, 2048, envelope=good)
    assert extractor.names == ("env.level[3.5848x]",)
    assert extractor.envelope.band == Band(2000.0, 5000.0)
    loose = EnvelopeSettings((2000, 5000), ("3.5848x",), shaft_hz=30)
    assert FeatureExtractor(["env.level"], 12000, 2048, envelope=loose) == extractor
    with pytest.raises(ConfigError, match="tolerance must be a fraction"):
        FeatureExtractor(
            ["time.std"], 12000, 2048, envelope=EnvelopeSettings(Band(2000, 5000), tolerance=2)
        )


def test_large_batch_cut_into_chunks():
    from edgemon.features.extractor import MAX_ROWS

    rng = np.random.default_rng(5)
    windows = rng.normal(size=(MAX_ROWS + 37, 64, 2))
    windows[MAX_ROWS + 3, 7, 1] = np.nan
    extractor = FeatureExtractor(["all", "time.peak"], 1000.0, 64, ("x", "y"), resultant=True)
    features, flags = extractor.transform_with_flags(windows)
    # Scratch arrays of at most MAX_ROWS rows, whatever the batch size.
    assert extractor.workspace_nbytes < 40 * MAX_ROWS * 64 * 8
    parts = [extractor.transform(windows[i : i + 10]) for i in range(0, len(windows), 10)]
    np.testing.assert_allclose(features, np.concatenate(parts), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(flags, window_flags(windows))
    np.testing.assert_array_equal(extractor.transform(windows), features)
