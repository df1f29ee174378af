"""Tests of the state logic: cluster names, novelty, unclassifiable windows and debounce."""

from __future__ import annotations

import numpy as np
import pytest

from edgemon.errors import ConfigError
from edgemon.flags import WindowFlag, flag_names
from edgemon.states import INVALID, UNKNOWN, StateLogic

STATES = ("normal", "inner_race", "ball")


def classify(logic, clusters, scores, flags=None):
    flags = (
        np.zeros(len(clusters), dtype=np.uint8)
        if flags is None
        else np.asarray(flags, dtype=np.uint8)
    )
    return logic.classify(np.asarray(clusters), np.asarray(scores, dtype=float), flags)


def test_states_follow_clusters():
    results = classify(StateLogic(STATES, threshold=5.0), [0, 1, 2], [0.1, 0.2, 0.3])
    assert [r[1] for r in results] == list(STATES)
    assert [r[0] for r in results] == [0, 1, 2]
    assert [r[2] for r in results] == [0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    ("score", "state"),
    [(4.99, "normal"), (5.0, "normal"), (5.01, UNKNOWN), (float("inf"), INVALID)],
)
def test_states_novelty_threshold(score, state):
    ((_cluster, name, _, _),) = classify(StateLogic(STATES, threshold=5.0), [0], [score])
    assert name == state


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        (WindowFlag.GAP, "normal"),
        (WindowFlag.SATURATED, INVALID),
        (WindowFlag.CONSTANT, INVALID),
        (WindowFlag.NONFINITE, INVALID),
        (WindowFlag.BUS_ERROR, INVALID),
        (WindowFlag.GAP | WindowFlag.SATURATED, INVALID),
    ],
)
def test_states_flags(flags, state):
    ((cluster, name, _score, names),) = classify(StateLogic(STATES, 5.0), [0], [1.0], [flags])
    assert name == state
    assert names == tuple(flag_names(flags))
    assert cluster == (0 if state == "normal" else -1)


def test_states_nan_score_invalid():
    ((cluster, name, score, _),) = classify(StateLogic(STATES, 5.0), [0], [np.nan])
    assert (cluster, name, score) == (-1, INVALID, None)


def test_states_debounce_holds_until_repeated():
    logic = StateLogic(STATES, threshold=5.0, debounce=3)
    clusters = [0, 1, 1, 0, 1, 1, 1, 2]
    states = [r[1] for r in classify(logic, clusters, [1.0] * len(clusters))]
    assert states == [
        "normal",
        "normal",
        "normal",
        "normal",
        "normal",
        "normal",
        "inner_race",
        "inner_race",
    ]


def test_states_debounce_continues_across_batches():
    logic = StateLogic(STATES, threshold=5.0, debounce=2)
    assert classify(logic, [0], [1.0])[0][1] == "normal"
    assert classify(logic, [2], [1.0])[0][1] == "normal"
    assert classify(logic, [2], [1.0])[0][1] == "ball"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (((), 1.0), "states must name at least one cluster"),
        ((STATES, float("nan")), "novelty threshold must be a number"),
        ((STATES, 1.0, 0), "debounce must be an integer >= 1, got 0"),
        ((STATES, 1.0, True), "debounce must be an integer >= 1, got True"),
    ],
)
def test_states_invalid_arguments(args, message):
    with pytest.raises(ConfigError, match=message):
        StateLogic(*args)
