"""End to end on real data: train on the bundled CWRU excerpt, replay held-out data to Mosquitto.

These tests run the same code paths as ``edgemon train``, ``edgemon replay``
and ``edgemon run``, against a broker started by the test and the real
recordings shipped with the package.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter

import jsonschema
import pytest
from brokers import Subscriber

from edgemon.demo import demo_split
from edgemon.model import load_model
from edgemon.publish.client import MqttPublisher
from edgemon.publish.payloads import load_schema
from edgemon.publish.settings import MqttSettings
from edgemon.replay import replay_files
from edgemon.training.datasets import label_from_name

pytestmark = pytest.mark.slow

EDGEMON = [sys.executable, "-m", "edgemon.cli"]
SIMULATOR = [sys.executable, "-m", "edgemon_sim"]


def expected_windows(n_samples: int, window: int, hop: int) -> int:
    return 0 if n_samples < window else (n_samples - window) // hop + 1


def test_replay_to_broker_publishes_every_window(broker, excerpt_model, tmp_path):
    model = load_model(excerpt_model)
    meta = model.metadata
    _, held_out = demo_split()
    subscriber = Subscriber(broker, "edgemon/rig1/de/state")
    publisher = MqttPublisher(
        MqttSettings.from_url(broker.url),
        "rig1",
        state_dir=tmp_path,
        sensors={"de": tuple(sorted(set(meta.states) | {"unknown", "invalid"}))},
        model_ids={"de": meta.model_id},
    )
    publisher.start()
    try:
        results = replay_files(
            held_out, model, publisher, threading.Event(), device="rig1", sensor="de"
        )
        assert publisher.flush(30)
    finally:
        publisher.stop(10)
    total = sum(result.windows for result in results)
    assert subscriber.wait_for(lambda messages: len(messages) >= total, timeout=30)
    subscriber.close()
    payloads = subscriber.payloads("/state")

    # One message per window: the window count follows from each segment's length.
    for item, result in zip(held_out, results, strict=True):
        n_samples = round(result.duration * meta.sample_rate)
        assert result.windows == expected_windows(n_samples, meta.window, meta.hop), item.path.name
    assert len(payloads) == total

    # Consecutive seq, schema-valid payloads, windows on the hop grid.
    assert [p["seq"] for p in payloads] == list(range(1, total + 1))
    schema = load_schema("state")
    for payload in payloads:
        jsonschema.validate(payload, schema)
    assert all(p["model"] == meta.model_id for p in payloads)
    offset = 0
    for item, result in zip(held_out, results, strict=True):
        starts = [p["window"]["start"] for p in payloads[offset : offset + result.windows]]
        assert starts[0] == round(item.start * meta.sample_rate)
        assert {b - a for a, b in itertools.pairwise(starts)} == {meta.hop}
        offset += result.windows

    # The published states match the true conditions for a clear majority of windows.
    truth = []
    for item, result in zip(held_out, results, strict=True):
        truth.extend([label_from_name(item.path)] * result.windows)
    correct = sum(p["state"] == label for p, label in zip(payloads, truth, strict=True))
    per_condition = Counter(
        label for p, label in zip(payloads, truth, strict=True) if p["state"] == label
    )
    assert correct / total > 0.8, per_condition
    for label in set(truth):
        assert per_condition[label] / truth.count(label) > 0.5, (label, per_condition)


def test_cli_train_replay_watch(broker, tmp_path):
    from edgemon.data import CWRU_EXCERPT

    model = tmp_path / "model.onnx"
    env = {**os.environ, "EDGEMON_LOG_LEVEL": "warning"}
    train = subprocess.run(
        [
            *EDGEMON,
            "train",
            "--dataset",
            "cwru",
            "--data",
            str(CWRU_EXCERPT),
            "--loads",
            "0",
            "--out",
            str(model),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr
    assert f"written to {model}" in train.stdout

    inputs = sorted(CWRU_EXCERPT.glob("12k_*_1_*.mat"))
    watch = subprocess.Popen(
        [*EDGEMON, "watch", "--mqtt", broker.url, "--device", "rig1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        # The watcher logs "watching ..." at INFO once subscribed.
        for line in watch.stderr:
            if "watching" in line:
                break
        replay = subprocess.run(
            [
                *EDGEMON,
                "replay",
                "--model",
                str(model),
                "--mqtt",
                broker.url,
                "--device",
                "rig1",
                "--state-dir",
                str(tmp_path / "state"),
                "--speed",
                "0",
                *[arg for path in inputs for arg in ("--input", str(path))],
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert replay.returncode == 0, replay.stderr
    finally:
        watch.send_signal(signal.SIGINT)
        output, _ = watch.communicate(timeout=30)
    assert watch.returncode == 0
    meta = load_model(model).metadata
    per_file = expected_windows(60000, meta.window, meta.hop)
    states = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(states) == 3 * per_file
    assert [s["seq"] for s in states] == list(range(1, len(states) + 1))
    assert f"total: {3 * per_file} windows" in replay.stdout


def test_simulator_to_daemon_over_udp(broker, excerpt_model, tmp_path):
    from brokers import free_port

    from edgemon.data import CWRU_EXCERPT

    port = free_port()
    config = tmp_path / "edgemon.toml"
    config.write_text(
        f"""
[device]
id = "rig1"
state_dir = "{tmp_path / "state"}"

[[sensors]]
name = "de"
model = "{excerpt_model}"

[sensors.source]
kind = "udp"
host = "127.0.0.1"
port = {port}
sample_rate = 12000
channels = ["DE"]

[mqtt]
url = "{broker.url}"
health_interval = 1
features = true
features_min_interval = 0.5
"""
    )
    check = subprocess.run(
        [*EDGEMON, "run", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout

    meta = load_model(excerpt_model).metadata
    per_file = expected_windows(60000, meta.window, meta.hop)
    subscriber = Subscriber(broker, "edgemon/rig1/#")
    daemon = subprocess.Popen(
        [*EDGEMON, "run", "--config", str(config)], stderr=subprocess.PIPE, text=True
    )
    try:
        for line in daemon.stderr:
            if "monitoring 1 sensor" in line:
                break
        recording = CWRU_EXCERPT / "12k_Drive_End_IR007_1_106.mat"
        sim = subprocess.run(
            [
                *SIMULATOR,
                "--input",
                str(recording),
                "--channel",
                "DE",
                "--udp",
                f"127.0.0.1:{port}",
                "--speed",
                "4",
                "--progress",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sim.returncode == 0, sim.stderr
        assert subscriber.wait_for(
            lambda m: sum(x.topic.endswith("/state") for x in m) >= per_file, timeout=30
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, errors = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, errors
    assert subscriber.wait_for(lambda m: any(x.payload == b"offline" for x in m), timeout=10)
    subscriber.close()

    states = subscriber.payloads("/state")
    assert len(states) == per_file
    assert [s["seq"] for s in states] == list(range(1, per_file + 1))
    assert Counter(s["state"] for s in states).most_common(1)[0][0] == "inner_race"
    health = subscriber.payloads("/health")
    assert health
    assert health[-1]["windows_processed"] == per_file
    assert health[-1]["samples_dropped"] == 0
    assert health[-1]["samples_lost"] == 0
    assert health[-1]["sensors"]["de"]["source_counters"]["packets"] > 0
    features = subscriber.payloads("/features")
    assert features
    for name, payloads in (("health", health), ("features", features), ("state", states)):
        for payload in payloads:
            jsonschema.validate(payload, load_schema(name))
    status = [m.payload for m in subscriber.messages if m.topic.endswith("/status")]
    assert status[0] == b"online"
    assert status[-1] == b"offline"
