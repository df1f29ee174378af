"""The feature stage: statistics of vibration windows, in pure numpy.

The public entry point is :func:`extract`; training and the daemon use a
:class:`FeatureExtractor`, which validates the configuration once and keeps
its scratch arrays between batches.  :func:`window_flags` marks windows
whose features cannot be trusted.  Nothing here imports SciPy.

Examples
--------
>>> import numpy as np
>>> from edgemon.features import extract, expand_names
>>> expand_names("shape")
('time.skewness', 'time.kurtosis', 'freq.skewness', 'freq.kurtosis')
>>> windows = np.random.default_rng(0).normal(size=(8, 2048))
>>> extract(windows, 12000.0, "all").shape
(8, 12)
"""

from edgemon.features._envelope import DefectFrequency, EnvelopeSettings
from edgemon.features._spectrum import Band
from edgemon.features.catalogue import (
    ALIASES,
    FEATURE_FAMILIES,
    FEATURE_NAMES,
    FEATURES,
    Feature,
    FeatureFamily,
    expand_names,
)
from edgemon.features.extractor import FeatureExtractor, extract
from edgemon.features.flags import CONSTANT_RTOL, window_flags
from edgemon.flags import WindowFlag

__all__ = [
    "ALIASES",
    "CONSTANT_RTOL",
    "FEATURES",
    "FEATURE_FAMILIES",
    "FEATURE_NAMES",
    "Band",
    "DefectFrequency",
    "EnvelopeSettings",
    "Feature",
    "FeatureExtractor",
    "FeatureFamily",
    "WindowFlag",
    "expand_names",
    "extract",
    "window_flags",
]
