"""``edgemon demo``: the whole pipeline on the bundled CWRU excerpt, in about a minute.

1. Train a model on the 0 hp fault records and the first 60 % of the normal
   baseline, and export it to ONNX with its parity check.
2. Replay data the model has not seen (the 1 hp fault records and the rest
   of the baseline) through the daemon's own pipeline.
3. Publish every state to the broker when one is reachable, and print what
   a subscriber receives; without a broker, print the states directly.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from edgemon.data import CWRU_EXCERPT
from edgemon.replay import ReplayInput, replay_files

__all__ = [
    "DEMO_DEVICE",
    "DEMO_SENSOR",
    "TRAIN_SHARE",
    "demo_split",
    "run_demo",
    "train_demo_model",
]

logger = logging.getLogger(__name__)

DEMO_DEVICE = "demo"
DEMO_SENSOR = "de"
#: Share of the normal baseline used for training; the rest is replayed.
TRAIN_SHARE = 0.6
#: Seconds the demo waits for the broker to acknowledge its subscription.
SUBSCRIBE_TIMEOUT = 5.0


def demo_split(folder: Path = CWRU_EXCERPT, sample_rate: float = 12000.0):
    """Split the bundled excerpt into training recordings and held-out replay inputs.

    Returns
    -------
    train : list of LabelledRecording
        The 0 hp fault records and the first :data:`TRAIN_SHARE` of the normal
        baseline, resampled to ``sample_rate``.
    held_out : list of ReplayInput
        The rest of the normal baseline, then the 1 hp fault records.
    """
    from edgemon.training.datasets import load_dataset

    recordings = load_dataset("cwru", folder, channels=("DE",), sample_rate=sample_rate)
    train, held_out = [], []
    for item in recordings:
        if item.label == "normal":
            n_train = int(item.recording.n_samples * TRAIN_SHARE)
            head = replace(item.recording, samples=item.recording.samples[:n_train])
            train.append(replace(item, recording=head))
            held_out.insert(0, ReplayInput(item.path, start=n_train / sample_rate))
        elif item.attrs["load_hp"] == 0:
            train.append(item)
        else:
            held_out.append(ReplayInput(item.path))
    return train, held_out


def run_demo(
    mqtt_url: str, *, out: Path, speed: float, stop: threading.Event, stdout: TextIO | None = None
) -> int:
    """Run the demo; return the exit status.

    Parameters
    ----------
    mqtt_url : str
        Broker to publish to when it is reachable.
    out : Path
        Folder for the model file and the outbox.
    speed : float
        Replay speed: 1 real time, 0 as fast as possible.
    stop : threading.Event
        Set by Ctrl-C to end the replay early.
    """
    from edgemon.model import load_model
    from edgemon.publish.connect import broker_reachable
    from edgemon.publish.settings import MqttSettings
    from edgemon.summary import print_replay_summary

    stdout = stdout if stdout is not None else sys.stdout
    out.mkdir(parents=True, exist_ok=True)
    say = _printer(stdout)
    say(
        "edgemon demo: bearing-fault monitoring on the bundled CWRU excerpt (Case Western Reserve "
        "University Bearing Data Center)"
    )

    say("step 1/3: train on the 0 hp records and 60 % of the normal baseline")
    train, held_out = demo_split()
    model_path = out / "model.onnx"
    metadata = train_demo_model(train, model_path, progress=True)
    stdout.write(
        f"  model {metadata.model_id}: {metadata.algorithm}, {metadata.n_clusters} clusters, "
        f"{len(metadata.columns)} features, {metadata.training.n_windows} training windows "
        f"-> {model_path}\n"
    )
    model = load_model(model_path)

    settings = MqttSettings.from_url(mqtt_url)
    say(
        f"step 2/3: replay {len(held_out)} held-out recordings through the pipeline at "
        f"{_speed_text(speed)}"
    )
    watch_stop = threading.Event()
    watcher = None
    if broker_reachable(settings.url):
        sink, watcher = _publish_and_watch(settings, model, out / "state", watch_stop, stdout)
        say(
            f"publishing to {settings.url}; the lines below are what a subscriber receives on "
            f"{settings.topic_prefix}/{DEMO_DEVICE}/#"
        )
    else:
        from edgemon.publish.console import ConsoleSink

        say(
            f"no broker reachable at {settings.url}: states go to the console only (install and "
            "start mosquitto to see them published)"
        )
        sink = ConsoleSink(out=stdout)
    sink.start()
    try:
        results = replay_files(
            held_out, model, sink, stop, device=DEMO_DEVICE, sensor=DEMO_SENSOR, speed=speed
        )
    finally:
        if not sink.flush(10.0):
            logger.warning(
                "the broker did not acknowledge every state within 10 s; they stay in %s",
                out / "state",
            )
        sink.stop(10.0)
        if watcher is not None:
            # Let the last acknowledged messages reach the subscriber before it disconnects.
            watch_stop.wait(1.0)
            watch_stop.set()
            watcher.join(5.0)

    say("step 3/3: summary (each file's true condition comes from its CWRU name)")
    print_replay_summary(results, model, stdout)
    say(f"model: {model_path} (edgemon inspect {model_path})")
    say(
        f"next: start 'edgemon watch --mqtt {settings.url} --device {DEMO_DEVICE}' in another "
        "terminal, then run the demo again to watch the states arrive; "
        f"'edgemon replay --model {model_path} --input FILE.mat' replays any recording"
    )
    return 130 if stop.is_set() else 0


def train_demo_model(train, path: Path, *, progress: bool = False):
    """Train with the defaults of ``edgemon train`` and export to ``path``; return the metadata."""
    from edgemon.training.command import DATASET_SHAFT_RPM, train_preset

    _, metadata = train_preset(
        train, path, shaft_rpm=DATASET_SHAFT_RPM["cwru"], dataset="cwru", progress=progress
    )
    return metadata


def _publish_and_watch(
    settings, model, state_dir: Path, watch_stop: threading.Event, stdout: TextIO
):
    from edgemon.publish.client import MqttPublisher
    from edgemon.publish.watch import run_watch

    ready = threading.Event()
    watcher = threading.Thread(
        target=run_watch,
        kwargs={
            "settings": settings,
            "device": DEMO_DEVICE,
            "out": stdout,
            "stop": watch_stop,
            "ready": ready,
        },
        name="demo-watch",
        daemon=True,
    )
    watcher.start()
    if not ready.wait(SUBSCRIBE_TIMEOUT):
        logger.warning(
            "the demo's subscriber was not ready within %.0f s; early states may not be shown",
            SUBSCRIBE_TIMEOUT,
        )
    states = tuple(sorted(set(model.metadata.states) | {"unknown", "invalid"}))
    publisher = MqttPublisher(
        settings,
        DEMO_DEVICE,
        state_dir=state_dir,
        sensors={DEMO_SENSOR: states},
        model_ids={DEMO_SENSOR: model.metadata.model_id},
        window_periods={DEMO_SENSOR: model.metadata.hop / model.metadata.sample_rate},
    )
    return publisher, watcher


def _speed_text(speed: float) -> str:
    return "full speed" if speed == 0 else f"{speed:g}x real time"


def _printer(stdout: TextIO):
    def say(text: str) -> None:
        stdout.write(f"== {text}\n")
        stdout.flush()

    return say
