"""Tests of the SQLite store-and-forward outbox."""

import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from edgemon.errors import PublishError
from edgemon.publish.outbox import Outbox


def render(sensor="de", size=100):
    return lambda seq: (f"edgemon/rig1/{sensor}/state", b"x" * size + str(seq).encode())


def test_outbox_seq_consecutive_per_stream(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6)
    seqs = [
        outbox.append(sensor, 1, render(sensor)).seq for sensor in ["de", "fe", "de", "de", "fe"]
    ]
    assert seqs == [1, 1, 2, 3, 2]
    assert len(outbox) == 5
    outbox.close()


def test_outbox_peek_in_order_and_delete(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6)
    for _ in range(10):
        outbox.append("de", 1, render())
    first = outbox.peek(0, 4)
    assert [m.payload[-1:] for m in first] == [b"1", b"2", b"3", b"4"]
    rest = outbox.peek(first[-1].id, 100)
    assert len(rest) == 6
    assert outbox.delete([m.id for m in first]) == 4
    assert len(outbox) == 6
    assert outbox.peek(0, 1)[0].id == rest[0].id
    assert outbox.delete([first[0].id]) == 0  # already gone
    outbox.close()


def test_outbox_survives_reopen(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6)
    for _ in range(3):
        outbox.append("de", 1, render())
    outbox.close()
    reopened = Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6)
    assert len(reopened) == 3
    assert reopened.nbytes == sum(len(m.topic) + len(m.payload) for m in reopened.peek(0, 10))
    assert reopened.append("de", 1, render()).seq == 4
    reopened.close()


def test_outbox_uses_wal(tmp_path):
    Outbox(tmp_path / "o.db", max_messages=10, max_bytes=10**6).close()
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_outbox_drops_oldest_by_count(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=5, max_bytes=10**6)
    dropped = [outbox.append("de", 1, render()).dropped for _ in range(8)]
    assert dropped == [0, 0, 0, 0, 0, 1, 1, 1]
    assert len(outbox) == 5
    assert outbox.dropped == 3
    assert [m.payload[-1:] for m in outbox.peek(0, 10)] == [b"4", b"5", b"6", b"7", b"8"]
    outbox.close()


def test_outbox_drops_oldest_by_bytes(tmp_path):
    topic_len = len("edgemon/rig1/de/state")
    outbox = Outbox(tmp_path / "o.db", max_messages=1000, max_bytes=3 * (topic_len + 101))
    for _ in range(5):
        outbox.append("de", 1, render(size=100))
    assert len(outbox) == 3
    assert outbox.nbytes <= outbox.max_bytes
    assert outbox.dropped == 2
    outbox.close()


def test_outbox_keeps_oversized_new_message(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=10, max_bytes=50)
    outbox.append("de", 1, render(size=10))
    result = outbox.append("de", 1, render(size=200))
    assert result.dropped == 1
    assert len(outbox) == 1
    outbox.close()


def test_outbox_render_failure_rolls_back(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=10, max_bytes=10**6)
    outbox.append("de", 1, render())

    def failing(seq):
        raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        outbox.append("de", 1, failing)
    assert len(outbox) == 1
    assert outbox.last_seq("de") == 1
    assert outbox.append("de", 1, render()).seq == 2
    outbox.close()


@pytest.mark.slow
def test_outbox_files_stay_bounded(tmp_path):
    path = tmp_path / "o.db"
    outbox = Outbox(path, max_messages=200, max_bytes=10**6)

    def footprint():
        return sum(p.stat().st_size for p in tmp_path.iterdir())

    for _ in range(400):
        outbox.append("de", 1, render(size=300))
    after_fill = footprint()
    for _ in range(4000):
        outbox.append("de", 1, render(size=300))
    assert len(outbox) == 200
    # Freed pages are reused and the WAL is truncated after checkpoints, so
    # ten times more messages through a full queue leave the files the same order of size.
    assert footprint() < 2 * after_fill + 4 * 1024 * 1024
    outbox.close()


def test_outbox_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PublishError, match="cannot open the MQTT outbox"):
        Outbox(blocker / "o.db", max_messages=10, max_bytes=10**6)


WRITER = textwrap.dedent(
    """
    import sys
    from edgemon.publish.outbox import Outbox
    outbox = Outbox(sys.argv[1], max_messages=10**6, max_bytes=10**9)
    print("ready", flush=True)
    while True:
        outbox.append("de", 1, lambda seq: ("t", b"p" * 500 + str(seq).encode()))
    """
)


def test_outbox_survives_sigkill_mid_write(tmp_path):
    path = tmp_path / "o.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    assert writer.stdout.readline() == b"ready\n"
    with sqlite3.connect(path) as db:
        while db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] < 200:
            pass
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    outbox = Outbox(path, max_messages=10**6, max_bytes=10**9)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    messages = outbox.peek(0, 10**6)
    seqs = [int(m.payload[500:]) for m in messages]
    assert seqs == list(range(1, len(seqs) + 1))
    assert outbox.last_seq("de") == len(seqs)
    outbox.close()


def test_outbox_records_destination(tmp_path):
    outbox = Outbox(
        tmp_path / "o.db", max_messages=100, max_bytes=10**6, destination="mqtt://a:1883"
    )
    assert outbox.previous_destination is None
    outbox.close()
    reopened = Outbox(
        tmp_path / "o.db", max_messages=100, max_bytes=10**6, destination="mqtt://b:1883"
    )
    assert reopened.previous_destination == "mqtt://a:1883"
    reopened.close()


@pytest.mark.parametrize(
    ("queued", "second", "warned"),
    [
        (2, "mqtt://b:1883", True),
        (2, "mqtt://a:1883", False),
        (0, "mqtt://b:1883", False),
    ],
)
def test_outbox_warns_other_destination(tmp_path, caplog, queued, second, warned):
    outbox = Outbox(
        tmp_path / "o.db", max_messages=100, max_bytes=10**6, destination="mqtt://a:1883"
    )
    for _ in range(queued):
        outbox.append("de", 1, render())
    outbox.close()
    caplog.clear()

    Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6, destination=second).close()

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert bool(warnings) == warned
    if warned:
        assert "2 messages queued for mqtt://a:1883" in warnings[0]
        assert "sent to mqtt://b:1883" in warnings[0]
