"""benchmarks/accuracy.py: where it looks for the recordings, and a clear error without them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"


def _load_benchmark(monkeypatch, shared_data: Path | None):
    if shared_data is None:
        monkeypatch.delenv("EDGEMON_SHARED_DATA", raising=False)
    else:
        monkeypatch.setenv("EDGEMON_SHARED_DATA", str(shared_data))
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accuracy_reads_shared_data_variable(monkeypatch, tmp_path):
    shared_data = _load_benchmark(monkeypatch, tmp_path).SHARED_DATA
    assert shared_data == tmp_path


def test_accuracy_default_beside_repository(monkeypatch):
    shared_data = _load_benchmark(monkeypatch, None).SHARED_DATA
    assert shared_data == BENCHMARK.parents[2] / "shared" / "data"


def test_accuracy_missing_data_exits_cleanly(monkeypatch, tmp_path, capsys):
    module = _load_benchmark(monkeypatch, tmp_path)
    status = module.main([])
    assert status == 2
    error = capsys.readouterr().err
    assert f"data set not found: {tmp_path / 'cwru'}" in error
    assert "set EDGEMON_SHARED_DATA" in error
    assert "Traceback" not in error
