"""The feature stage must not load SciPy, which the daemon does not need on its run path.

Importing ``scipy.stats`` alone takes about 2 s and 69 MB on the 2-core x86
test machine (numpy 2.4, SciPy 1.17), more than the rest of the daemon.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
import edgemon.features
from edgemon.features import FeatureExtractor, extract, window_flags

windows = np.random.default_rng(0).normal(size=(4, 2048, 2))
extract(windows, 12000.0, ["all", "time.clearance_factor", "freq.centroid", "band.rms[10-1000]"])
extractor = FeatureExtractor(
    ["env.level[3.5848x]"], 12000.0, 2048, ("DE", "FE"), resultant=True,
    envelope={"band": (2000, 5000), "shaft_hz": 29.95},
)
FeatureExtractor.from_dict(extractor.to_dict()).transform(windows)
window_flags(windows, full_scale=16.0)
print(sorted(name for name in sys.modules if name == "scipy" or name.startswith("scipy.")))
"""


def test_features_do_not_import_scipy():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
