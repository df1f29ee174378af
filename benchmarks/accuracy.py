"""State accuracy on a motor load the model never saw, through the daemon's own pipeline.

For each CWRU motor load L (0, 1 and 2 hp) this trains a model with the
defaults of ``edgemon train`` on the other loads, then replays every fault
record of load L through ``edgemon replay``'s code path (file source, reader
and processing threads, features, ONNX model, state logic) and counts the
windows whose published state is the record's true condition.  A window
reported ``unknown`` counts as wrong.

The normal baseline exists only at 0 hp, so it is cut in time into three
equal parts: fold L tests on part L and trains on the other two.  Training
and test never share a window.

Run from the repository, with the shared recordings beside it::

    .venv/bin/python benchmarks/accuracy.py --data ../shared/data/cwru --markdown docs/accuracy-results.md
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

LOADS = (0, 1, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "cwru",
                        help="folder of the CWRU recordings (default: ../shared/data/cwru)")
    parser.add_argument("--loads", default="0,1,2", help="held-out loads to test, comma-separated (default: 0,1,2)")
    parser.add_argument("--backend", choices=("onnxruntime", "numpy"), default="onnxruntime")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the results as Markdown to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from edgemon.model import load_model
    from edgemon.training.command import DATASET_SHAFT_RPM, train_preset
    from edgemon.training.datasets import load_dataset

    recordings = load_dataset("cwru", args.data, channels=("DE",), sample_rate=12000.0)
    rows, totals = [], Counter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        for held_out in (int(part) for part in args.loads.split(",")):
            train, test = split_fold(recordings, held_out)
            path = Path(scratch) / f"model-{held_out}.onnx"
            train_preset(train, path, shaft_rpm=DATASET_SHAFT_RPM["cwru"], dataset="cwru")
            model = load_model(path, backend=args.backend)
            for item, counts in replay_fold(model, test):
                windows = sum(counts.values())
                correct = counts.get(item.label, 0)
                rows.append((held_out, item.name, item.label, windows, correct, counts.get("unknown", 0)))
                totals["windows", held_out] += windows
                totals["correct", held_out] += correct
                totals["unknown", held_out] += counts.get("unknown", 0)
    elapsed = time.monotonic() - started

    lines = format_results(rows, totals, args, elapsed)
    print("\n".join(lines))
    if args.markdown is not None:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


class TestItem:
    """One replay input of a fold with its true condition."""

    def __init__(self, path: Path, label: str, start: float = 0.0, duration: float | None = None) -> None:
        self.path, self.label, self.start, self.duration = path, label, start, duration
        part = "" if duration is None else f" [{start:.2f}-{start + duration:.2f} s]"
        self.name = path.name + part


def split_fold(recordings, held_out: int):
    """Return (training recordings, test items) of the fold that holds out load ``held_out``."""
    train, test = [], []
    for item in recordings:
        recording = item.recording
        if item.label == "normal":
            third = recording.n_samples // 3
            parts = [(i * third, (i + 1) * third) for i in range(3)]
            for index, (first, last) in enumerate(parts):
                if index == held_out:
                    rate = recording.sample_rate
                    test.append(TestItem(item.path, item.label, first / rate, (last - first) / rate))
                else:
                    piece = replace(recording, samples=recording.samples[first:last])
                    train.append(replace(item, recording=piece))
        elif item.attrs["load_hp"] == held_out:
            test.append(TestItem(item.path, item.label))
        else:
            train.append(item)
    return train, test


def replay_fold(model, test):
    """Replay each test item through the daemon's pipeline; yield (item, state counts)."""
    from edgemon.replay import ReplayInput, replay_files

    for item in test:
        sink = CountingSink()
        replay_files(
            [ReplayInput(item.path, item.start, item.duration)], model, sink, threading.Event(),
            device="accuracy", sensor="de", speed=0.0,
        )
        yield item, sink.states


class CountingSink:
    """A sink that counts states instead of publishing them."""

    def __init__(self) -> None:
        self.states: Counter = Counter()

    def submit_states(self, events) -> list[int]:
        self.states.update(event.state for event in events)
        return list(range(len(events)))

    def submit_state(self, event) -> int:
        return self.submit_states([event])[0]

    def submit_features(self, sensor, ts, columns, values) -> bool:
        return False


def format_results(rows, totals, args, elapsed: float) -> list[str]:
    lines = [
        "| held-out load | record | condition | windows | correct | unknown | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for load, name, label, windows, correct, unknown in rows:
        lines.append(f"| {load} hp | {name} | {label} | {windows} | {correct} | {unknown} | {correct / windows:.1%} |")
    lines += ["", "| held-out load | windows | state accuracy | unknown |", "|---|---|---|---|"]
    loads = sorted({row[0] for row in rows})
    for load in loads:
        windows = totals["windows", load]
        lines.append(
            f"| {load} hp | {windows} | {totals['correct', load] / windows:.2%} | {totals['unknown', load] / windows:.2%} |"
        )
    all_windows = sum(totals["windows", load] for load in loads)
    all_correct = sum(totals["correct", load] for load in loads)
    lines += ["", f"All folds: {all_correct} of {all_windows} windows correct ({all_correct / all_windows:.2%}), "
              f"backend {args.backend}, {elapsed:.0f} s."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
