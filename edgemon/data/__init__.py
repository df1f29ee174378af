"""Data files shipped with edgemon.

``CWRU_EXCERPT`` is the folder of the bundled excerpt of the Case Western
Reserve University Bearing Data Center recordings; its README.md gives the
details. It contains the 0 hp normal baseline at 48 kHz and the 0.007 in
inner-race, ball and outer-race faults at 0 hp and 1 hp (12 kHz), with the
DE and FE channels. Read it with
``edgemon.training.datasets.load_dataset("cwru", CWRU_EXCERPT, channels=...)``.
"""

from pathlib import Path

__all__ = ["CWRU_EXCERPT"]

CWRU_EXCERPT: Path = Path(__file__).resolve().with_name("cwru")
