"""Tests of the MQTT payloads, their JSON Schemas and the discovery configs."""

import json
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest

from edgemon.flags import WindowFlag, flag_names
from edgemon.publish.discovery import discovery_messages
from edgemon.publish.payloads import (
    format_ts,
    load_schema,
    render_features,
    render_health,
    render_state,
)
from edgemon.states import StateEvent

TS = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def make_event(**changes):
    fields = dict(
        device="rig1",
        sensor="de",
        ts=TS,
        cluster=2,
        state="inner_race",
        score=0.84,
        model_id="3f2a9c1b",
        window_start=4096,
        window_samples=2048,
        sample_rate=12000.0,
        flags=(),
    )
    fields.update(changes)
    return StateEvent(**fields)


def validate(name, document):
    jsonschema.Draft202012Validator(load_schema(name)).validate(document)


@pytest.mark.parametrize("name", ["state", "status", "health", "features"])
def test_schema_is_valid_draft_2020_12(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_unknown_name():
    with pytest.raises(ValueError, match="no payload schema"):
        load_schema("nope")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"score": None, "cluster": -1, "state": "invalid", "flags": ("saturated", "gap")},
        {"score": float("nan"), "cluster": -1, "state": "invalid"},
        {"score": 12.5, "state": "unknown"},
        {"flags": tuple(flag_names(0xFF))},
    ],
)
def test_state_payload_validates(changes):
    document = json.loads(render_state(make_event(**changes), seq=7))
    validate("state", document)
    assert document["seq"] == 7
    assert document["window"] == {"start": 4096, "samples": 2048, "sample_rate": 12000.0}


def test_state_payload_fields():
    document = json.loads(render_state(make_event(), seq=1))
    assert document == {
        "ts": "2024-05-01T12:00:00.250Z",
        "seq": 1,
        "device": "rig1",
        "sensor": "de",
        "cluster": 2,
        "state": "inner_race",
        "score": 0.84,
        "model": "3f2a9c1b",
        "window": {"start": 4096, "samples": 2048, "sample_rate": 12000.0},
        "flags": [],
    }


def test_state_payload_nonfinite_score_is_null():
    document = json.loads(render_state(make_event(score=float("inf")), seq=1))
    assert document["score"] is None


def test_state_schema_knows_every_flag():
    enum = load_schema("state")["properties"]["flags"]["items"]["enum"]
    assert sorted(enum) == sorted(flag.name.lower() for flag in WindowFlag if flag)


def test_state_schema_rejects_bad_payload():
    document = json.loads(render_state(make_event(), seq=1))
    document["seq"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validate("state", document)


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (TS, "2024-05-01T12:00:00.250Z"),
        (
            datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:00:00.000Z",
        ),
    ],
)
def test_format_ts_utc(ts, text):
    assert format_ts(ts) == text


def test_format_ts_rejects_naive():
    with pytest.raises(ValueError, match="timezone-aware"):
        format_ts(datetime(2024, 5, 1))


@pytest.mark.parametrize("status", ["online", "offline"])
def test_status_payload_validates(status):
    validate("status", status)


def test_features_payload_validates():
    payload = render_features(
        "rig1", "de", TS, ["rms", "kurtosis", "crest"], [0.5, float("nan"), 3.0]
    )
    document = json.loads(payload)
    validate("features", document)
    assert document["features"] == {"rms": 0.5, "kurtosis": None, "crest": 3.0}


def test_features_payload_length_mismatch():
    with pytest.raises(ValueError, match="2 feature names but 3 values"):
        render_features("rig1", "de", TS, ["a", "b"], [1.0, 2.0, 3.0])


def test_health_payload_validates():
    fields = {
        "uptime_s": 12.5,
        "windows_processed": 100,
        "windows_flagged": 3,
        "samples_dropped": 0,
        "queue_depth": 4,
        "queue_bytes": 1200,
        "queue_dropped": 0,
        "broker_reconnects": 1,
        "models": {"de": "3f2a9c1b"},
        "cpu_percent": 4.2,
        "cpu_seconds": 1.5,
        "rss_bytes": 50_000_000,
    }
    validate("health", json.loads(render_health("rig1", TS, fields)))


def test_health_payload_unknown_field():
    with pytest.raises(ValueError, match="unknown health fields"):
        render_health("rig1", TS, {"temperature": 40})


def test_discovery_configs():
    messages = discovery_messages(
        "homeassistant", "edgemon", "rig1", {"de": ("normal", "inner_race")}
    )
    topics = [topic for topic, _ in messages]
    assert topics == [
        "homeassistant/sensor/edgemon_rig1/de_state/config",
        "homeassistant/sensor/edgemon_rig1/de_score/config",
    ]
    state, score = (json.loads(payload) for _, payload in messages)
    assert state["state_topic"] == "edgemon/rig1/de/state"
    assert state["availability_topic"] == "edgemon/rig1/status"
    assert state["options"] == ["normal", "inner_race", "unknown", "invalid"]
    assert state["device"]["identifiers"] == ["edgemon_rig1"]
    assert state["unique_id"] != score["unique_id"]
    assert score["value_template"] == "{{ value_json.score }}"
    assert score["state_class"] == "measurement"
