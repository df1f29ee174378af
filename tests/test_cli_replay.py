"""Tests of the replay command's defaults."""

from __future__ import annotations

import pytest

from edgemon.cli.handlers import _default_replay_state_dir
from edgemon.publish.url import parse_broker_url


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
