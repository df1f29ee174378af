"""Labelled data sets for training and evaluation: CWRU, MFPT, IMS and manifests.

Each loader takes its labels from the data set's own file naming and returns
one :class:`LabelledRecording` per file, in a stable order (sorted by file
name; IMS by timestamp). Every recording keeps the sha256 of its file, which
training writes into the model metadata.

=========  ========================================  ===============================================
kind       files                                     labels and attrs
=========  ========================================  ===============================================
``cwru``   ``12k_Drive_End_IR014_1_170.mat``,        ``normal``, ``inner_race``, ``ball``,
           ``normal_0_97.mat`` (every ``.mat``)      ``outer_race``; record, load_hp,
                                                     fault_diameter_in, position, rpm, nominal_rpm
``mfpt``   ``InnerRaceFault_vload_1.mat``,           ``inner_race``, ``outer_race``, ``normal``;
           ``baseline_1.mat`` (every ``.mat``)       load_lbs, shaft_hz, vload
``ims``    ``2003.10.22.12.06.24`` (names that are   ``healthy``; timestamp, order
           timestamps)
``files``  a CSV or TOML manifest                    the manifest's ``label`` column
=========  ========================================  ===============================================
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from edgemon.errors import RecordingError
from edgemon.recordings import Recording, read_recording, resample

__all__ = [
    "DATASET_CONTENTS",
    "DATASET_KINDS",
    "LabelledRecording",
    "label_from_name",
    "load_dataset",
]

logger = logging.getLogger(__name__)

DATASET_KINDS = ("cwru", "mfpt", "ims", "files")
#: The expected content of each data set kind's path, for error messages.
DATASET_CONTENTS = {
    "cwru": "a folder of CWRU Bearing Data Center .mat files named like "
    "12k_Drive_End_IR007_0_105.mat and normal_0_97.mat",
    "mfpt": "a folder of MFPT bearing .mat files named like baseline_1.mat and "
    "InnerRaceFault_vload_1.mat",
    "ims": "a folder of IMS snapshot files named by their timestamp, like 2003.10.22.12.06.24",
    "files": "a CSV or TOML manifest with a file and a label for each recording",
}

# Nominal motor speed (rpm) per motor load (hp), as the CWRU Bearing Data Center lists them.
_CWRU_NOMINAL_RPM = {0: 1797, 1: 1772, 2: 1750, 3: 1730}
_CWRU_FAULT = re.compile(
    r"(?P<rate>12|48)k_(?P<end>Drive|Fan)_End_(?P<fault>IR|B|OR)(?P<size>\d{3})"
    r"(?:@(?P<position>\d+))?_(?P<load>\d)_(?P<record>\d+)\.mat"
)
_CWRU_NORMAL = re.compile(r"normal_(?P<load>\d)_(?P<record>\d+)\.mat", re.IGNORECASE)
_CWRU_LABELS = {"IR": "inner_race", "B": "ball", "OR": "outer_race"}
_MFPT_FAULT = re.compile(r"(?P<fault>Inner|Outer)RaceFault_vload_(?P<vload>\d+)\.mat")
_MFPT_BASELINE = re.compile(r"baseline_(?P<index>\d+)\.mat")
_IMS_NAME = re.compile(r"\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}")
_MANIFEST_KEYS = ("file", "label", "sample_rate", "channel", "channels", "format")

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class LabelledRecording:
    """A recording with the condition label its data set gives it.

    Parameters
    ----------
    recording : Recording
        The signal, already resampled when :func:`load_dataset` was given a
        ``sample_rate``.
    label : str
        Condition name, e.g. ``"normal"`` or ``"inner_race"``.
    attrs : mapping
        Facts about the recording from its data set (load, fault size, rpm,
        timestamp); see the module docstring for the keys of each kind.
    """

    recording: Recording
    label: str
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", dict(self.attrs))

    @property
    def sha256(self) -> str | None:
        """Hex sha256 of the source file's bytes."""
        return self.recording.sha256

    @property
    def path(self) -> Path | None:
        """The source file."""
        return self.recording.path


@dataclass(frozen=True)
class _Entry:
    """One file to read, with its label and attrs, before it is read."""

    path: Path
    label: str
    attrs: dict[str, Any]
    file_channels: tuple[str, ...] | None = None
    sample_rate: float | None = None
    format: str | None = None


def load_dataset(
    kind: str,
    path: str | os.PathLike[str],
    *,
    channels: str | Sequence[str],
    sample_rate: float | None = None,
    loads: Iterable[float] | None = None,
    progress: bool = False,
) -> list[LabelledRecording]:
    """Read a labelled data set.

    Parameters
    ----------
    kind : {"cwru", "mfpt", "ims", "files"}
        Which naming scheme gives the labels. ``files`` reads a manifest.
    path : str or path-like
        A folder of the data set's files (or one of its files), or for
        ``files`` the manifest (``.csv`` or ``.toml``).
    channels : str or sequence of str
        Channel names to read, in this order, e.g. ``("DE",)`` for CWRU,
        ``("gs",)`` for MFPT, ``("ch1", "ch2")`` for IMS. In a manifest, a
        row's ``channel`` entry may name the file's own channels instead;
        they are then renamed to these.
    sample_rate : float, optional
        Hz. Resample every recording to this rate (the 48 kHz CWRU normal
        baseline becomes 12 kHz, for example). Default: keep each file's rate.
    loads : iterable of float, optional
        Keep only these loads: motor load in hp for CWRU, radial load in lbs
        for MFPT. Use it to hold a load out of training.
    progress : bool, default False
        Show a tqdm progress bar while reading.

    Returns
    -------
    list of LabelledRecording
        One per file, in file-name order (IMS: timestamp order).

    Raises
    ------
    RecordingError
        If a file cannot be read or labelled, a channel is missing, no file
        matches, or a manifest has invalid rows (all of them are listed).
    """
    if kind not in DATASET_KINDS:
        raise RecordingError(
            f"unknown data set kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}"
        )
    if sample_rate is not None and not (math.isfinite(sample_rate) and sample_rate > 0):
        raise RecordingError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    names = (channels,) if isinstance(channels, str) else tuple(channels)
    if not names:
        raise RecordingError("channels must name at least one channel, got none")
    load_filter = None if loads is None else {float(load) for load in loads}
    if load_filter is not None and kind not in ("cwru", "mfpt"):
        raise RecordingError(
            f"loads filters only the cwru (hp) and mfpt (lbs) data sets, not {kind!r}"
        )
    path = Path(path)
    if not path.exists():
        raise RecordingError(
            f"data set not found: {path}; kind {kind!r} reads {DATASET_CONTENTS[kind]}"
        )

    if kind == "files":
        items = _load_manifest(path, names, sample_rate, progress)
    else:
        if kind == "cwru":
            entries = _filter_loads(_cwru_entries(path), "load_hp", load_filter, path)
        elif kind == "mfpt":
            entries = _mfpt_entries(path)
        else:
            entries = _ims_entries(path)
        items = [_read_entry(entry, names, sample_rate) for entry in _progress(entries, progress)]
        if kind == "mfpt":
            items = _filter_loads(items, "load_lbs", load_filter, path)
    if kind == "files":
        logger.info("loaded %d recordings from manifest %s", len(items), path)
    else:
        logger.info("loaded %d %s recordings from %s", len(items), kind.upper(), path)
    return items


# Data set naming -------------------------------------------------------------------------------


def label_from_name(path: str | Path) -> str | None:
    """Return the condition label that a CWRU or MFPT file name states, or None.

    For example ``inner_race`` for ``12k_Drive_End_IR014_1_170.mat``; used to
    score replays of files whose condition is known.
    """
    name = Path(path).name
    if fault := _CWRU_FAULT.fullmatch(name):
        return _CWRU_LABELS[fault["fault"]]
    if _CWRU_NORMAL.fullmatch(name) or _MFPT_BASELINE.fullmatch(name):
        return "normal"
    if fault := _MFPT_FAULT.fullmatch(name):
        return "inner_race" if fault["fault"] == "Inner" else "outer_race"
    return None


def _data_files(path: Path, accept: Any) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(child for child in path.iterdir() if child.is_file() and accept(child))


def _cwru_entries(path: Path) -> list[_Entry]:
    entries = []
    for file in _data_files(path, lambda child: child.suffix.lower() == ".mat"):
        fault = _CWRU_FAULT.fullmatch(file.name)
        normal = _CWRU_NORMAL.fullmatch(file.name)
        if fault:
            load = int(fault["load"])
            attrs = {
                "record": int(fault["record"]),
                "load_hp": load,
                "fault_diameter_in": int(fault["size"]) / 1000,
                "position": f"{int(fault['position'])}:00" if fault["position"] else None,
                "fault_end": "drive_end" if fault["end"] == "Drive" else "fan_end",
                "nominal_rpm": _CWRU_NOMINAL_RPM.get(load),
            }
            entries.append(_Entry(file, _CWRU_LABELS[fault["fault"]], attrs))
        elif normal:
            load = int(normal["load"])
            attrs = {
                "record": int(normal["record"]),
                "load_hp": load,
                "fault_diameter_in": None,
                "position": None,
                "fault_end": None,
                "nominal_rpm": _CWRU_NOMINAL_RPM.get(load),
            }
            entries.append(_Entry(file, "normal", attrs))
        else:
            raise RecordingError(
                f"cannot label {file.name}: CWRU file names must look like "
                "12k_Drive_End_IR014_1_170.mat or normal_0_97.mat"
            )
    if not entries:
        raise RecordingError(f"no CWRU .mat files in {path}")
    return entries


def _mfpt_entries(path: Path) -> list[_Entry]:
    entries = []
    for file in _data_files(path, lambda child: child.suffix.lower() == ".mat"):
        fault = _MFPT_FAULT.fullmatch(file.name)
        baseline = _MFPT_BASELINE.fullmatch(file.name)
        if fault:
            label = "inner_race" if fault["fault"] == "Inner" else "outer_race"
            entries.append(_Entry(file, label, {"vload": int(fault["vload"])}))
        elif baseline:
            entries.append(_Entry(file, "normal", {"vload": None}))
        else:
            raise RecordingError(
                f"cannot label {file.name}: MFPT file names must look like "
                "InnerRaceFault_vload_1.mat, OuterRaceFault_vload_1.mat or baseline_1.mat"
            )
    if not entries:
        raise RecordingError(f"no MFPT .mat files in {path}")
    return entries


def _ims_entries(path: Path) -> list[_Entry]:
    files = _data_files(path, lambda child: _IMS_NAME.fullmatch(child.name) is not None)
    if not files:
        raise RecordingError(
            f"no IMS files in {path}; their names are timestamps like 2003.10.22.12.06.24"
        )
    stamped = []
    for file in files:
        try:
            stamped.append((datetime.strptime(file.name, "%Y.%m.%d.%H.%M.%S"), file))
        except ValueError:
            raise RecordingError(f"{file.name} is not a valid IMS timestamp name") from None
    stamped.sort()
    # NOTE: every file is labelled healthy; the loader does not know when a
    # run-to-failure test degrades, so label late snapshots through a manifest.
    return [
        _Entry(file, "healthy", {"timestamp": stamp.isoformat(), "order": order}, format="ims")
        for order, (stamp, file) in enumerate(stamped)
    ]


def _filter_loads(items: list, key: str, loads: set[float] | None, path: Path) -> list:
    if loads is None:
        return items
    selected = [item for item in items if item.attrs.get(key) in loads]
    if not selected:
        present = sorted({item.attrs.get(key) for item in items if item.attrs.get(key) is not None})
        raise RecordingError(
            f"no recordings in {path} at {key} {', '.join(f'{x:g}' for x in sorted(loads))}; "
            f"present: {', '.join(f'{x:g}' for x in present)}"
        )
    return selected


# Manifests -------------------------------------------------------------------------------------


def _load_manifest(
    path: Path, channels: tuple[str, ...], sample_rate: float | None, progress: bool
) -> list[LabelledRecording]:
    """Read every recording a CSV or TOML manifest lists, reporting all invalid rows at once.

    Relative ``file`` paths resolve against the manifest's folder. Keys other
    than ``file``, ``label``, ``sample_rate``, ``channel``/``channels`` and
    ``format`` go into the recording's attrs.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read manifest {path}: {exc}") from exc
    if path.suffix.lower() == ".toml":
        rows = _toml_rows(path, text)
    elif path.suffix.lower() == ".csv":
        rows = _csv_rows(path, text)
    else:
        raise RecordingError(f"manifest {path.name} must end in .csv or .toml")

    items: list[LabelledRecording] = []
    problems: list[str] = []
    for where, row in _progress(rows, progress):
        try:
            entry = _manifest_entry(path.parent, row)
            items.append(_read_entry(entry, channels, sample_rate))
        except RecordingError as exc:
            problems.append(f"  {where}: {exc}")
    if problems:
        raise RecordingError(
            f"manifest {path} has {len(problems)} invalid "
            f"{'row' if len(problems) == 1 else 'rows'}:\n" + "\n".join(problems)
        )
    if not items:
        raise RecordingError(f"manifest {path} lists no recordings")
    return items


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    # Parse line by line so that every row keeps its line number. A quoted
    # field therefore cannot span lines.
    parsed = [
        (number, [value.strip() for value in next(csv.reader([line]))])
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not parsed:
        raise RecordingError(f"manifest {path} is empty")
    header_line, header = parsed[0]
    if "file" not in header or "label" not in header:
        raise RecordingError(
            f"manifest {path.name} line {header_line}: the header must name the columns "
            f"'file' and 'label', got {', '.join(header)}"
        )
    rows: list[tuple[str, dict[str, Any]]] = []
    for number, values in parsed[1:]:
        if len(values) > len(header):
            row: dict[str, Any] = {"__extra__": values[len(header) :]}
        else:
            # A short row leaves its last columns out, and the row check reports them as missing.
            row = {key: value for key, value in zip(header, values, strict=False) if value != ""}
        rows.append((f"line {number}", row))
    return rows


def _toml_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecordingError(f"manifest {path.name} is not valid TOML: {exc}") from exc
    tables = document.get("recording")
    if not isinstance(tables, list):
        raise RecordingError(
            f"manifest {path.name} must contain [[recording]] tables with file and label keys"
        )
    return [(f"[[recording]] #{index}", table) for index, table in enumerate(tables, start=1)]


def _manifest_entry(folder: Path, row: Mapping[str, Any]) -> _Entry:
    if not isinstance(row, Mapping):
        raise RecordingError(f"must be a table, got {row!r}")
    if "__extra__" in row:
        raise RecordingError(f"more values than header columns: {', '.join(row['__extra__'])}")
    problems = []
    file = row.get("file")
    label = row.get("label")
    for key, value in (("file", file), ("label", label)):
        if value is None or value == "":
            problems.append(f"'{key}' is missing")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"'{key}' must be a text string, got {value!r}")

    rate = row.get("sample_rate")
    if rate is not None:
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            problems.append(
                f"sample_rate must be a positive number of Hz, got {row['sample_rate']!r}"
            )

    if "channel" in row and "channels" in row:
        problems.append("give 'channel' or 'channels', not both")
    file_channels = _manifest_channels(row.get("channels", row.get("channel")), problems)

    path = None
    if isinstance(file, str) and file:
        path = Path(file) if Path(file).is_absolute() else folder / file
        if not path.is_file():
            problems.append(f"file not found: {path}")
    if problems:
        raise RecordingError("; ".join(problems))

    attrs = {key: value for key, value in row.items() if key not in _MANIFEST_KEYS}
    return _Entry(path, label.strip(), attrs, file_channels, rate, row.get("format"))


def _manifest_channels(value: Any, problems: list[str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        names = tuple(name.strip() for name in value.split(";"))
    elif isinstance(value, list) and all(isinstance(name, str) for name in value):
        names = tuple(name.strip() for name in value)
    else:
        problems.append(f"channels must be a name or a list of names, got {value!r}")
        return None
    if not names or not all(names):
        problems.append(f"empty channel name in {value!r}")
        return None
    return names


# Reading ---------------------------------------------------------------------------------------


def _read_entry(
    entry: _Entry, channels: tuple[str, ...], sample_rate: float | None
) -> LabelledRecording:
    file_channels = entry.file_channels or channels
    if len(file_channels) != len(channels):
        raise RecordingError(
            f"{entry.path.name}: {len(file_channels)} file channels "
            f"({', '.join(file_channels)}) for {len(channels)} requested ({', '.join(channels)})"
        )
    recording = read_recording(
        entry.path, channels=file_channels, format=entry.format, sample_rate=entry.sample_rate
    )
    if file_channels != channels:
        recording = Recording(
            recording.samples,
            recording.sample_rate,
            channels,
            recording.path,
            recording.sha256,
            {**recording.attrs, "file_channels": file_channels},
        )
    attrs = dict(entry.attrs)
    attrs.update(_attrs_from_file(entry, recording))
    if sample_rate is not None:
        recording = resample(recording, sample_rate)
    return LabelledRecording(recording, entry.label, attrs)


def _attrs_from_file(entry: _Entry, recording: Recording) -> dict[str, Any]:
    """Take the values the file itself states, and check them against the name."""
    attrs: dict[str, Any] = {}
    file_record = recording.attrs.get("record")
    named_record = entry.attrs.get("record")
    if file_record is not None and named_record is not None and file_record != named_record:
        raise RecordingError(
            f"{entry.path.name}: the name gives record {named_record} but the file "
            f"contains record {file_record}"
        )
    for key in ("rpm", "load_lbs", "shaft_hz"):
        if key in recording.attrs:
            attrs[key] = recording.attrs[key]
    return attrs


def _progress(items: list[_T], enabled: bool) -> Iterable[_T]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="reading recordings", unit="file")
