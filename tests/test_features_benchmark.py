"""The feature benchmark script runs end to end; its timings are not checked here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from edgemon.features import FeatureExtractor

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "features.py"


def test_benchmark_script_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("features_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    arguments = ["--rounds", "2", "--batch", "4", "--naive-windows", "1", "--data", str(tmp_path)]
    module.main(arguments)
    output = capsys.readouterr().out
    assert "Gaussian noise (CWRU data not found)" in output
    for case in ("floor", "batch 64", "per window", "per window with flags", "naive loop"):
        assert f"| {case} |" in output
    assert "peak memory allocated while streaming" in output


def test_workspace_grows_with_batch_only():
    extractor = FeatureExtractor("all", 12000.0, 256)
    rng = np.random.default_rng(0)
    extractor.transform(rng.normal(size=(8, 256)))
    held = extractor.workspace_nbytes
    for _ in range(50):
        extractor.transform(rng.normal(size=(8, 256)))
        extractor.transform(rng.normal(size=(1, 256)))
    assert extractor.workspace_nbytes == held
