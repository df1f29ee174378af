"""State accuracy on a motor load the model never saw, and false alarms on healthy data.

Everything here runs through the daemon's own pipeline.

For each CWRU motor load L (0, 1 and 2 hp) this trains a model with the
defaults of ``edgemon train`` on the other loads, then replays every fault
record of load L through ``edgemon replay``'s code path (file source, reader
and processing threads, features, ONNX model, state logic) and counts the
windows whose published state is the record's true condition.  A window
reported ``unknown`` counts as wrong.

The normal baseline exists only at 0 hp, so it is cut in time into three
equal parts: fold L tests on part L and trains on the other two.  Training
and test never share a window.

The same folds are replayed through a model with 4 clusters (one per
condition), and the adjusted Rand index compares its clusters with the true
conditions.  Last, models trained on the first nine IMS snapshots (healthy
bearings of another rig) replay the nine later snapshots, and the share of
windows reported ``unknown`` is the false-alarm rate.

Run from the repository, with the shared recordings beside it (set
``EDGEMON_SHARED_DATA`` to the folder holding ``cwru/`` and ``ims/`` when
they are elsewhere)::

    .venv/bin/python benchmarks/accuracy.py --data ../shared/data/cwru \
        --markdown docs/accuracy-results.md
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

LOADS = (0, 1, 2)
REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEMON_SHARED_DATA", REPOSITORY.parent / "shared" / "data"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=SHARED_DATA / "cwru",
        help="folder of the CWRU recordings (default: $EDGEMON_SHARED_DATA/cwru, else "
        "../shared/data/cwru)",
    )
    parser.add_argument(
        "--loads", default="0,1,2", help="held-out loads to test, comma-separated (default: 0,1,2)"
    )
    parser.add_argument("--backend", choices=("onnxruntime", "numpy"), default="onnxruntime")
    parser.add_argument(
        "--ims",
        type=Path,
        default=None,
        help="folder of the IMS recordings (default: beside --data); 'none' skips them",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="also write the results as Markdown to this file",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from edgemon.errors import RecordingError
    from edgemon.model import load_model
    from edgemon.training.command import DATASET_SHAFT_RPM, train_preset
    from edgemon.training.datasets import load_dataset

    try:
        recordings = load_dataset("cwru", args.data, channels=("DE",), sample_rate=12000.0)
    except RecordingError as exc:
        print(
            f"error: {exc}\nPass --data with the CWRU folder, or set EDGEMON_SHARED_DATA to the "
            "folder that holds cwru/ and ims/.",
            file=sys.stderr,
        )
        return 2
    rows, totals, ari = [], Counter(), {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        for held_out in (int(part) for part in args.loads.split(",")):
            train, test = split_fold(recordings, held_out)
            path = Path(scratch) / f"model-{held_out}.onnx"
            train_preset(train, path, shaft_rpm=DATASET_SHAFT_RPM["cwru"], dataset="cwru")
            model = load_model(path, backend=args.backend)
            for item, sink in replay_fold(model, test):
                counts = sink.states
                windows = sum(counts.values())
                correct = counts.get(item.label, 0)
                rows.append(
                    (held_out, item.name, item.label, windows, correct, counts.get("unknown", 0))
                )
                totals["windows", held_out] += windows
                totals["correct", held_out] += correct
                totals["unknown", held_out] += counts.get("unknown", 0)
            ari[held_out] = fold_ari(
                train, test, Path(scratch) / f"model-{held_out}-k4.onnx", args.backend
            )
        ims_dir = args.ims or args.data.parent / "ims"
        ims_rows = (
            ims_false_alarms(ims_dir, Path(scratch), args.backend) if str(ims_dir) != "none" else []
        )
        foreign_rows = foreign_machines(recordings, args.data.parent, Path(scratch), args.backend)
    elapsed = time.monotonic() - started

    lines = format_results(rows, totals, ari, ims_rows, foreign_rows, args, elapsed)
    print("\n".join(lines))
    if args.markdown is not None:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


def fold_ari(train, test, path: Path, backend: str) -> float:
    """Train the default model with one cluster per condition; return the test windows' ARI."""
    from sklearn.metrics import adjusted_rand_score

    from edgemon.model import load_model
    from edgemon.training.command import DATASET_SHAFT_RPM, train_preset

    n_labels = len({item.label for item in train})
    train_preset(
        train, path, shaft_rpm=DATASET_SHAFT_RPM["cwru"], dataset="cwru", n_clusters=n_labels
    )
    truth, clusters = [], []
    for item, sink in replay_fold(load_model(path, backend=backend), test):
        truth += [item.label] * len(sink.clusters)
        clusters += sink.clusters
    return float(adjusted_rand_score(truth, clusters))


def foreign_machines(
    recordings, data_root: Path, scratch: Path, backend: str
) -> list[tuple[str, int, int]]:
    """Train on all CWRU recordings; count the windows of other machines reported unknown.

    The other machines' channels have other names, so their windows are scored
    with the model's own feature extractor and scorer rather than replayed.
    """
    import numpy as np

    from edgemon.features import FeatureExtractor
    from edgemon.model import load_model
    from edgemon.recordings import read_recording, resample
    from edgemon.training.command import DATASET_SHAFT_RPM, train_preset
    from edgemon.training.fit import cut_windows

    path = scratch / "cwru-all.onnx"
    train_preset(recordings, path, shaft_rpm=DATASET_SHAFT_RPM["cwru"], dataset="cwru")
    model = load_model(path, backend=backend)
    meta = model.metadata
    extractor = FeatureExtractor.from_dict(meta.features)
    rows = []
    for name, pattern, channel in (("IMS (ch1)", "ims/*", "ch1"), ("MFPT", "mfpt/*.mat", "gs")):
        windows = unknown = 0
        for file in sorted(item for item in data_root.glob(pattern) if item.is_file()):
            recording = resample(read_recording(file, channels=[channel]), meta.sample_rate)
            features = extractor.transform(cut_windows(recording.samples, meta.window, meta.hop))
            _, novelty = model.score(features)
            windows += len(novelty)
            unknown += int(np.count_nonzero(novelty > meta.novelty.threshold))
        if windows:
            rows.append((name, windows, unknown))
    return rows


def ims_false_alarms(folder: Path, scratch: Path, backend: str) -> list[tuple[str, int, int]]:
    """Train on the first nine IMS snapshots per channel set; count unknown windows of the rest."""
    from edgemon.model import load_model
    from edgemon.training.command import DATASET_DEFAULTS, DATASET_SHAFT_RPM, train_preset
    from edgemon.training.datasets import load_dataset

    if not folder.is_dir():
        print(
            f"IMS recordings not found in {folder}; skipping the false-alarm check", file=sys.stderr
        )
        return []
    channel_sets = [(f"ch{i}",) for i in range(1, 9)] + [DATASET_DEFAULTS["ims"][0]]
    rows = []
    for channels in channel_sets:
        recordings = load_dataset("ims", folder, channels=channels)
        train, later = recordings[:9], recordings[9:]
        path = scratch / f"ims-{'-'.join(channels)}.onnx"
        train_preset(train, path, shaft_rpm=DATASET_SHAFT_RPM["ims"], dataset="ims")
        model = load_model(path, backend=backend)
        items = [TestItem(item.path, item.label) for item in later]
        counts = Counter()
        for _, sink in replay_fold(model, items, channels=channels):
            counts.update(sink.states)
        rows.append((",".join(channels), sum(counts.values()), counts.get("unknown", 0)))
    return rows


class TestItem:
    """One replay input of a fold with its true condition."""

    def __init__(
        self, path: Path, label: str, start: float = 0.0, duration: float | None = None
    ) -> None:
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
                    test.append(
                        TestItem(item.path, item.label, first / rate, (last - first) / rate)
                    )
                else:
                    piece = replace(recording, samples=recording.samples[first:last])
                    train.append(replace(item, recording=piece))
        elif item.attrs["load_hp"] == held_out:
            test.append(TestItem(item.path, item.label))
        else:
            train.append(item)
    return train, test


def replay_fold(model, test, channels=None):
    """Replay each test item through the daemon's pipeline; yield (item, sink)."""
    from edgemon.replay import ReplayInput, replay_files

    for item in test:
        sink = CountingSink()
        replay_files(
            [ReplayInput(item.path, item.start, item.duration)],
            model,
            sink,
            threading.Event(),
            device="accuracy",
            sensor="de",
            speed=0.0,
            channels=channels,
        )
        yield item, sink


class CountingSink:
    """A sink that counts states, and keeps each window's cluster, instead of publishing."""

    def __init__(self) -> None:
        self.states: Counter = Counter()
        self.clusters: list[int] = []

    def submit_states(self, events) -> list[int]:
        self.states.update(event.state for event in events)
        self.clusters += [event.cluster for event in events]
        return list(range(len(events)))

    def submit_state(self, event) -> int:
        return self.submit_states([event])[0]

    def submit_features(self, sensor, ts, columns, values) -> bool:
        return False


def format_results(rows, totals, ari, ims_rows, foreign_rows, args, elapsed: float) -> list[str]:
    lines = [
        "| held-out load | record | condition | windows | correct | unknown | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for load, name, label, windows, correct, unknown in rows:
        lines.append(
            f"| {load} hp | {name} | {label} | {windows} | {correct} | {unknown} "
            f"| {correct / windows:.1%} |"
        )
    lines += ["", "| held-out load | windows | state accuracy | unknown |", "|---|---|---|---|"]
    loads = sorted({row[0] for row in rows})
    for load in loads:
        windows = totals["windows", load]
        lines.append(
            f"| {load} hp | {windows} | {totals['correct', load] / windows:.2%} | "
            f"{totals['unknown', load] / windows:.2%} |"
        )
    all_windows = sum(totals["windows", load] for load in loads)
    all_correct = sum(totals["correct", load] for load in loads)
    lines += [
        "",
        f"All folds: {all_correct} of {all_windows} windows correct "
        f"({all_correct / all_windows:.2%}).",
    ]
    lines += ["", "| held-out load | adjusted Rand index, 4 clusters |", "|---|---|"]
    lines += [f"| {load} hp | {value:.3f} |" for load, value in sorted(ari.items())]
    if ims_rows:
        lines += [
            "",
            "| IMS channels | later windows | unknown | false-alarm rate |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {windows} | {unknown} | {unknown / windows:.2%} |"
            for name, windows, unknown in ims_rows
        ]
        all_windows = sum(row[1] for row in ims_rows[:-1])
        all_unknown = sum(row[2] for row in ims_rows[:-1])
        lines += [
            "",
            f"IMS, one model per channel: {all_unknown} of {all_windows} later windows unknown "
            f"({all_unknown / all_windows:.2%}).",
        ]
    if foreign_rows:
        lines += [
            "",
            "| other machine, scored by a model trained on all CWRU loads | windows | unknown |",
            "|---|---|---|",
        ]
        lines += [
            f"| {name} | {windows} | {unknown / windows:.1%} |"
            for name, windows, unknown in foreign_rows
        ]
    lines += ["", f"Backend {args.backend}; {elapsed:.0f} s."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
