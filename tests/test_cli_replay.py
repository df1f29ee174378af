"""Tests of the replay command: default outbox folder, input checks."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from brokers import Subscriber, free_port

from edgemon.cli.handlers import _default_replay_state_dir
from edgemon.data import CWRU_EXCERPT
from edgemon.errors import EdgemonError
from edgemon.model import load_model
from edgemon.publish.console import ConsoleSink
from edgemon.publish.url import parse_broker_url
from edgemon.replay import replay_files


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        ("mqtt://127.0.0.1:1883", "127.0.0.1-1883"),
        ("mqtt://127.0.0.1:1884", "127.0.0.1-1884"),
        ("mqtts://broker.lan", "broker.lan-8883"),
        ("mqtt://[::1]:1883", "__1-1883"),
    ],
)
def test_replay_state_dir_per_broker(monkeypatch, tmp_path, url, folder):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    expected = tmp_path / "edgemon" / "replay" / folder
    assert _default_replay_state_dir(parse_broker_url(url)) == expected


def test_replay_state_dir_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = _default_replay_state_dir(parse_broker_url("mqtt://127.0.0.1:1883"))
    assert path == tmp_path / ".local" / "state" / "edgemon" / "replay" / "127.0.0.1-1883"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.mat", None, "recording not found"),
        ("garbage.mat", b"garbage", "cannot determine the format"),
    ],
)
def test_replay_bad_file_fails_first(excerpt_model, tmp_path, name, content, message):
    # The bad second file is reported before the first one is replayed.
    out = io.StringIO()
    sink = ConsoleSink(out=out, json_lines=True)
    first = sorted(CWRU_EXCERPT.glob("12k_*.mat"))[0]
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    with pytest.raises(EdgemonError, match=message):
        replay_files(
            [first, bad],
            load_model(excerpt_model),
            sink,
            threading.Event(),
            device="rig1",
            sensor="de",
        )
    assert out.getvalue() == ""


def _replay_file(model, path, *args, env_home):
    env = {**os.environ, "XDG_STATE_HOME": str(env_home), "EDGEMON_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "edgemon.cli", "replay", "--model", str(model)]
    return subprocess.run(
        [*command, "--input", str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _replay(model, *args, env_home):
    first = sorted(CWRU_EXCERPT.glob("12k_*.mat"))[0]
    return _replay_file(model, first, *args, env_home=env_home)


def test_replay_unacknowledged_exit_status(excerpt_model, tmp_path):
    result = _replay(
        excerpt_model,
        "--mqtt",
        f"mqtt://127.0.0.1:{free_port()}",
        "--duration",
        "1",
        "--flush-timeout",
        "0.5",
        env_home=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert re.search(r"\d+ states were not acknowledged within 0.5 s", result.stderr)
    assert "total:" in result.stdout


def test_replay_short_segment_warns(excerpt_model, tmp_path):
    result = _replay(excerpt_model, "--duration", "0.1", env_home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no window was classified" in result.stderr
    assert "replay a longer --duration" in result.stderr


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_replay_rejects_flush_timeout(excerpt_model, tmp_path, value):
    result = _replay(excerpt_model, "--flush-timeout", value, env_home=tmp_path)
    assert result.returncode == 2
    assert f"--flush-timeout must be a number of seconds >= 0, got {float(value)}" in result.stderr


def test_replay_unusable_state_dir(excerpt_model, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = _replay(
        excerpt_model,
        "--mqtt",
        f"mqtt://127.0.0.1:{free_port()}",
        "--state-dir",
        str(blocker / "state"),
        env_home=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"state directory {blocker / 'state'} cannot be created or written" in result.stderr
    assert "set --state-dir" in result.stderr


@pytest.fixture
def csv_without_rate(tmp_path):
    """One second of the excerpt's inner-race record as a CSV whose column is x."""
    from edgemon.recordings import read_recording

    recording = read_recording(CWRU_EXCERPT / "12k_Drive_End_IR007_1_106.mat", channels=["DE"])
    path = tmp_path / "pump_x.csv"
    np.savetxt(path, recording.samples[:24000, :1], header="x", comments="", fmt="%.10g")
    return path


def test_replay_renames_file_channel(excerpt_model, tmp_path, csv_without_rate):
    result = _replay_file(
        excerpt_model,
        csv_without_rate,
        "--channel",
        "x=DE",
        "--file-sample-rate",
        "12000",
        env_home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "pump_x.csv: 20 windows" in result.stderr
    assert "inner_race" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "x"], "or --channel x=DE to read the file's channels as the model's"),
        (["--channel", "=DE"], "--channel must be NAME or FILE=MODEL, got '=DE'"),
        (["--channel", "x==DE"], "--channel must be NAME or FILE=MODEL, got 'x==DE'"),
        (["--channel", "x=DE=b"], "--channel must be NAME or FILE=MODEL, got 'x=DE=b'"),
        (["--channel", "x=DE", "--channel", "x=DE"], "names the file channel 'x' twice"),
        (["--channel", "x=DE", "--channel", "y=DE"], "gives the model channel 'DE' twice"),
        (["--channel", "x=foo"], "pass --channel DE (or leave --channel out), or --channel x=DE"),
        (
            ["--channel", "x=DE", "--file-sample-rate", "1"],
            "12,000 times below the 12000 Hz to replay it at (at most 8)",
        ),
        (
            ["--channel", "x=DE", "--file-sample-rate", "1e-300"],
            "times below the 12000 Hz to replay it at",
        ),
        (["--channel", "x=DE", "--file-sample-rate", "1e300"], "cannot resample pump_x.csv"),
        (["--channel", "x=DE"], "cannot determine the sample rate of pump_x.csv"),
        (["--channel", "x=DE", "--file-sample-rate", "0"], "--file-sample-rate must be a"),
    ],
)
def test_replay_channel_errors(excerpt_model, tmp_path, csv_without_rate, args, message):
    result = _replay_file(excerpt_model, csv_without_rate, *args, env_home=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_bad_segment_publishes_nothing(excerpt_model, tmp_path, broker):
    # The third input is too short for --start: nothing reaches the broker.
    subscriber = Subscriber(broker, "edgemon/#")
    first = sorted(CWRU_EXCERPT.glob("12k_*.mat"))[0]
    short = tmp_path / "short.csv"
    short.write_text("# sample_rate=12000\nDE\n" + "0.1\n" * 100)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "EDGEMON_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "edgemon.cli", "replay", "--model", str(excerpt_model)]
    inputs = ["--input", str(first), "--input", str(first), "--input", str(short)]
    result = subprocess.run(
        [*command, *inputs, "--start", "1", "--mqtt", broker.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "short.csv" in result.stderr
    assert not subscriber.wait_for(lambda messages: len(messages) > 0, 1.0)
    subscriber.close()
