"""The daemon's commands must not import the training and plotting stack.

Each test runs a real ``edgemon`` command in a fresh interpreter with
``python -X importtime``, which lists every module the process imports on
standard error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgemon.data import CWRU_EXCERPT

#: Modules the run path never needs; scipy.signal imports scipy.stats.
FORBIDDEN = ("sklearn", "skl2onnx", "onnx", "matplotlib", "tqdm", "scipy.stats", "scipy.signal")


def imported_modules(*args: str, cwd: Path) -> set[str]:
    """Run ``python -X importtime -m edgemon.cli ARGS`` and return the modules it imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "edgemon.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            modules.add(line.rsplit("|", 1)[1].strip())
    return modules


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def test_run_check_udp_imports(excerpt_model, tmp_path):
    config = tmp_path / "edgemon.toml"
    config.write_text(
        f'[device]\nid = "rig1"\nstate_dir = "{tmp_path / "state"}"\n\n'
        f'[[sensors]]\nname = "de"\nmodel = "{excerpt_model}"\n\n'
        '[sensors.source]\nkind = "udp"\nhost = "127.0.0.1"\nport = 9870\n'
        'sample_rate = 12000\nchannels = ["DE"]\n\n'
        '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'
    )
    modules = imported_modules("run", "--config", str(config), "--check", cwd=tmp_path)
    assert "edgemon.service" in modules
    assert forbidden_in(modules) == []
    # A udp source reads no recording, so no part of SciPy is needed.
    assert not any(m == "scipy" or m.startswith("scipy.") for m in modules)
    assert "onnxruntime" in modules


@pytest.mark.parametrize(
    "recording",
    [
        pytest.param("12k_Drive_End_B007_1_119.mat", id="12k-file"),
        pytest.param("normal_0_97.mat", id="48k-file-resampled"),
    ],
)
def test_replay_mat_imports(excerpt_model, tmp_path, recording):
    modules = imported_modules(
        "replay",
        "--model",
        str(excerpt_model),
        "--input",
        str(CWRU_EXCERPT / recording),
        "--channel",
        "DE",
        "--speed",
        "0",
        cwd=tmp_path,
    )
    assert "edgemon.replay" in modules
    assert forbidden_in(modules) == []
    assert "scipy.io" in modules
