"""Readers of the recorded file formats: detection, parsing and the stated sample rates.

Each reader takes the file's bytes and returns the signals by channel name,
the sample rate in Hz and the file's attributes.
:func:`edgemon.recordings.read_recording` then selects the channels, checks
the values and builds the :class:`~edgemon.recordings.Recording`.
"""

from __future__ import annotations

import io
import math
import re
import wave
import zlib
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edgemon.errors import RecordingError

__all__ = [
    "CWRU_BASELINE_RECORDS",
    "FORMATS",
    "IMS_SAMPLE_RATE",
    "READERS",
    "Signals",
    "detect_format",
    "stack_channels",
]

FORMATS = ("cwru", "mfpt", "ims", "csv", "wav", "npy")

#: Hz. The IMS readme gives both "20 kHz" and 1-second files of 20,480 points;
#: the point count fixes the rate used here.
IMS_SAMPLE_RATE = 20480.0

#: CWRU normal baseline records (0-3 hp) and their sample rate in Hz. They
#: were recorded at 48 kHz although they are often filed beside 12 kHz data.
CWRU_BASELINE_RECORDS = MappingProxyType({97: 48000.0, 98: 48000.0, 99: 48000.0, 100: 48000.0})

_CWRU_SIGNAL = re.compile(r"X(\d+)_(DE|FE|BA)_time")
_CWRU_RPM = re.compile(r"X(\d+)RPM")
_CWRU_RATE_PREFIX = re.compile(r"(12|48)k_")
_CWRU_CHANNEL_ORDER = ("DE", "FE", "BA")
_CSV_META_LINE = re.compile(r"#\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_WAV_SCALE = {1: 2.0**7, 2: 2.0**15, 3: 2.0**23, 4: 2.0**31}


def detect_format(path: Path, data: bytes) -> str:
    if data.startswith(b"MATLAB 5.0 MAT-file"):
        return _detect_mat_flavour(path, data)
    if data.startswith(b"MATLAB 7.3 MAT-file"):
        raise RecordingError(
            f"{path.name} is a MATLAB v7.3 (HDF5) file, which is not supported; "
            "save it with save(..., '-v7') in MATLAB"
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if path.suffix.lower() == ".csv":
        return "csv"
    first_line = _first_text_line(data)
    if first_line is not None:
        if _is_numeric_row(first_line.split()):
            return "ims"
        if first_line.startswith("#") or "," in first_line:
            return "csv"
    raise RecordingError(
        f"cannot determine the format of {path.name}; supported formats: {', '.join(FORMATS)} "
        "(MATLAB 5 .mat from CWRU or MFPT, IMS text, CSV with a header row, PCM WAV, .npy); "
        "convert the file, or name its format with the file source's format option "
        "(format= in Python)"
    )


def _detect_mat_flavour(path: Path, data: bytes) -> str:
    names = set(_mat_variable_names(path, data))
    if "bearing" in names:
        return "mfpt"
    if any(_CWRU_SIGNAL.fullmatch(name) for name in names):
        return "cwru"
    raise RecordingError(
        f"{path.name} is a .mat file with neither CWRU variables (X<record>_DE_time ...) "
        f"nor an MFPT 'bearing' struct; it contains: {', '.join(sorted(names)) or 'nothing'}"
    )


def _first_text_line(data: bytes) -> str | None:
    head = data[:4096]
    if len(data) > len(head) and b"\n" in head:
        head = head[: head.rfind(b"\n")]  # do not cut a UTF-8 character in two
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def _is_numeric_row(fields: Iterable[str]) -> bool:
    fields = list(fields)
    if not fields:
        return False
    try:
        for value in fields:
            float(value)
    except ValueError:
        return False
    return True


# Readers: each returns ({channel: 1-D float64 array}, sample rate in Hz, attrs) ----------------

Signals = dict[str, np.ndarray]


def _mat_errors() -> tuple[type[Exception], ...]:
    from scipy.io.matlab import MatReadError

    # What scipy.io raises on truncated, corrupt or unsupported MATLAB files.
    return (
        MatReadError,
        ValueError,
        TypeError,
        IndexError,
        OSError,
        NotImplementedError,
        zlib.error,
    )


def _mat_variable_names(path: Path, data: bytes) -> list[str]:
    import scipy.io

    try:
        return [entry[0] for entry in scipy.io.whosmat(io.BytesIO(data))]
    except _mat_errors() as exc:
        raise RecordingError(f"cannot read {path.name} as a MATLAB file: {exc}") from exc


def _load_mat(path: Path, data: bytes, variable_names: list[str] | None = None) -> dict[str, Any]:
    import scipy.io

    try:
        return scipy.io.loadmat(io.BytesIO(data), variable_names=variable_names)
    except _mat_errors() as exc:
        raise RecordingError(f"cannot read {path.name} as a MATLAB file: {exc}") from exc


def _read_cwru(path: Path, data: bytes, sample_rate: float | None) -> tuple[Signals, float, dict]:
    variables = _load_mat(path, data)
    found: dict[int, dict[str, str]] = {}
    for name in variables:
        match = _CWRU_SIGNAL.fullmatch(name)
        if match:
            found.setdefault(int(match[1]), {})[match[2]] = name
    if not found:
        names = ", ".join(sorted(k for k in variables if not k.startswith("__")))
        raise RecordingError(
            f"{path.name} has no CWRU signal variables (X<record>_DE_time, _FE_time or "
            f"_BA_time); it contains: {names or 'nothing'}"
        )
    record = _cwru_record(path, sorted(found))

    signals = {
        channel: _column(path, variables[found[record][channel]], found[record][channel])
        for channel in _CWRU_CHANNEL_ORDER
        if channel in found[record]
    }
    attrs: dict[str, Any] = {"record": record}
    for name, value in variables.items():
        match = _CWRU_RPM.fullmatch(name)
        if match and int(match[1]) == record:
            attrs["rpm"] = float(np.asarray(value, dtype=np.float64).ravel()[0])
    rate = _cwru_sample_rate(path, record, sample_rate)
    return signals, rate, attrs


def _cwru_record(path: Path, records: list[int]) -> int:
    if len(records) == 1:
        return records[0]
    # Some CWRU files also contain a second record's variables, so the
    # number at the end of the file name decides which record the file is.
    match = re.search(r"(\d+)$", path.stem)
    if match and int(match[1]) in records:
        return int(match[1])
    raise RecordingError(
        f"{path.name} contains variables of records {', '.join(map(str, records))} and its name "
        "does not end in one of them; rename it to end in the record number, e.g. '_105.mat'"
    )


def _cwru_sample_rate(path: Path, record: int, sample_rate: float | None) -> float:
    prefix = _CWRU_RATE_PREFIX.match(path.name)
    from_name = float(prefix[1]) * 1000.0 if prefix else None
    from_record = CWRU_BASELINE_RECORDS.get(record)
    if from_name is not None and from_record is not None and from_name != from_record:
        raise RecordingError(
            f"{path.name}: the name gives {from_name:g} Hz but record {record} is a normal "
            f"baseline recorded at {from_record:g} Hz; rename the file"
        )
    stated = from_name if from_name is not None else from_record
    if stated is None:
        if sample_rate is None:
            raise RecordingError(
                f"cannot determine the sample rate of {path.name}: the name has no 12k_ or 48k_ "
                f"prefix and record {record} is not a normal baseline (97-100); "
                "pass sample_rate"
            )
        return float(sample_rate)
    source = "its name" if from_name is not None else f"normal baseline record {record}"
    return _check_stated_rate(path, stated, source, sample_rate)


def _read_mfpt(path: Path, data: bytes, sample_rate: float | None) -> tuple[Signals, float, dict]:
    variables = _load_mat(path, data, variable_names=["bearing"])
    try:
        bearing = variables["bearing"][0, 0]
        signal = bearing["gs"]
        stated = float(np.asarray(bearing["sr"], dtype=np.float64).ravel()[0])
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise RecordingError(
            f"{path.name}: the 'bearing' struct lacks a 'gs' signal or an 'sr' sample rate"
        ) from exc
    attrs: dict[str, Any] = {}
    fields = bearing.dtype.names or ()
    if "load" in fields:
        # Stored as text, e.g. '250' (lbs).
        text = str(np.asarray(bearing["load"]).ravel()[0]).strip()
        try:
            attrs["load_lbs"] = float(text)
        except ValueError:
            raise RecordingError(f"{path.name}: bearing.load is {text!r}, not a number") from None
    if "rate" in fields:
        attrs["shaft_hz"] = float(np.asarray(bearing["rate"], dtype=np.float64).ravel()[0])
    rate = _check_stated_rate(path, stated, "bearing.sr", sample_rate)
    return {"gs": _column(path, signal, "bearing.gs")}, rate, attrs


def _read_ims(path: Path, data: bytes, sample_rate: float | None) -> tuple[Signals, float, dict]:
    try:
        table = np.loadtxt(io.BytesIO(data), ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise RecordingError(f"cannot read {path.name} as IMS text: {exc}") from exc
    signals = {f"ch{i + 1}": table[:, i] for i in range(table.shape[1])}
    return signals, float(sample_rate or IMS_SAMPLE_RATE), {}


def _read_csv(path: Path, data: bytes, sample_rate: float | None) -> tuple[Signals, float, dict]:
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{path.name} is not UTF-8 text: {exc}") from exc

    attrs: dict[str, Any] = {}
    stated = None
    row = 0
    while row < len(lines) and (not lines[row].strip() or lines[row].lstrip().startswith("#")):
        match = _CSV_META_LINE.fullmatch(lines[row].strip())
        if match and match[1] == "sample_rate":
            stated = _parse_rate(path, match[2], row + 1)
        elif match:
            attrs[match[1]] = match[2]
        row += 1
    if row == len(lines):
        raise RecordingError(f"{path.name} has no header row of channel names")

    header_line = row + 1
    names = [name.strip() for name in lines[row].split(",")]
    if not all(names):
        raise RecordingError(f"{path.name} line {header_line}: empty channel name in header")
    if _is_numeric_row(names):
        raise RecordingError(
            f"{path.name} line {header_line}: expected a header row of channel names, "
            f"got numbers ({lines[row].strip()[:40]})"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RecordingError(f"{path.name} line {header_line}: channel {repeated[0]!r} repeated")
    data_lines = lines[row + 1 :]
    if not any(line.strip() and not line.lstrip().startswith("#") for line in data_lines):
        raise RecordingError(f"{path.name} contains no samples after its header")
    try:
        table = np.loadtxt(data_lines, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise RecordingError(
            f"cannot read {path.name} as CSV (in the data after the header on line "
            f"{header_line}): {exc}"
        ) from exc
    if table.shape[1] != len(names):
        raise RecordingError(
            f"{path.name}: the header names {len(names)} channels but rows have "
            f"{table.shape[1]} values"
        )
    signals = {name: table[:, i] for i, name in enumerate(names)}

    if stated is not None:
        rate = _check_stated_rate(path, stated, "its '# sample_rate=' line", sample_rate)
    elif sample_rate is not None:
        rate = float(sample_rate)
    else:
        raise RecordingError(
            f"cannot determine the sample rate of {path.name}: add a line '# sample_rate=<Hz>' "
            "before the header, or give the rate: --file-sample-rate for edgemon replay, a "
            "sample_rate column in a manifest, file_sample_rate in a file source's config, "
            "sample_rate= in Python"
        )
    return signals, rate, attrs


def _read_wav(path: Path, data: bytes, sample_rate: float | None) -> tuple[Signals, float, dict]:
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            n_channels = reader.getnchannels()
            width = reader.getsampwidth()
            stated = float(reader.getframerate())
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise RecordingError(
            f"cannot read {path.name} as WAV (only integer PCM is supported): {exc}"
        ) from exc
    if width not in _WAV_SCALE:
        raise RecordingError(f"{path.name}: {8 * width}-bit WAV samples are not supported")
    usable = len(frames) - len(frames) % (width * n_channels)
    table = (_wav_counts(frames[:usable], width) / _WAV_SCALE[width]).reshape(-1, n_channels)
    signals = {f"ch{i + 1}": table[:, i] for i in range(n_channels)}
    rate = _check_stated_rate(path, stated, "the WAV header", sample_rate)
    return signals, rate, {"sample_width_bits": 8 * width}


def _wav_counts(frames: bytes, width: int) -> np.ndarray:
    """Decode little-endian PCM sample bytes to integer counts as float64."""
    if width == 1:
        return np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128.0  # unsigned
    if width in (2, 4):
        return np.frombuffer(frames, dtype=f"<i{width}").astype(np.float64)
    # 24-bit: place the three bytes at the top of an int32 so that the sign
    # bit lands in place, then shift back down by one byte.
    raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
    padded = np.zeros((raw.shape[0], 4), dtype=np.uint8)
    padded[:, 1:] = raw
    return padded.view("<i4").ravel().astype(np.float64) / 256.0


def _read_npy(path: Path, data: bytes, sample_rate: float | None) -> tuple[Signals, float, dict]:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RecordingError(f"cannot read {path.name} as .npy: {exc}") from exc
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise RecordingError(
            f"{path.name}: expected a real array of shape (n_samples,) or "
            f"(n_samples, n_channels), got {array.dtype} of shape {array.shape}"
        )
    if sample_rate is None:
        raise RecordingError(
            f"cannot determine the sample rate of {path.name}: .npy files do not store one; "
            "pass sample_rate"
        )
    signals = {f"ch{i + 1}": array[:, i] for i in range(array.shape[1])}
    return signals, float(sample_rate), {}


READERS = {
    "cwru": _read_cwru,
    "mfpt": _read_mfpt,
    "ims": _read_ims,
    "csv": _read_csv,
    "wav": _read_wav,
    "npy": _read_npy,
}


# Checks ----------------------------------------------------------------------------------------


def _check_stated_rate(path: Path, stated: float, source: str, given: float | None) -> float:
    if given is not None and float(given) != stated:
        raise RecordingError(
            f"{path.name} is sampled at {stated:g} Hz (from {source}), but sample_rate={given:g} "
            f"was given (--file-sample-rate, file_sample_rate or a manifest's sample_rate); give "
            f"its own rate {stated:g} or leave the rate out. To train at another rate, pass "
            "--sample-rate to edgemon train (in Python, call edgemon.recordings.resample())"
        )
    return stated


def _parse_rate(path: Path, text: str, line: int) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise RecordingError(
            f"{path.name} line {line}: sample_rate must be a positive number of Hz, got {text!r}"
        )
    return rate


def _column(path: Path, value: Any, variable: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2 or 1 not in array.shape or not np.issubdtype(array.dtype, np.number):
        raise RecordingError(
            f"{path.name}: variable {variable} should be a numeric vector, "
            f"got {array.dtype} of shape {array.shape}"
        )
    return array.astype(np.float64, copy=False).ravel()


def stack_channels(path: Path, signals: Signals) -> np.ndarray:
    lengths = {name: len(values) for name, values in signals.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise RecordingError(f"{path.name}: channels have different lengths ({described})")
    if not signals or not next(iter(lengths.values())):
        raise RecordingError(f"{path.name} contains no samples")
    return np.column_stack(list(signals.values())).astype(np.float64, copy=False)
