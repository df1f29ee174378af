"""Tests for edgemon.recordings: formats, sample rates, channels, resampling and errors."""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import pickle
import re
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.signal import welch

from edgemon.data import CWRU_EXCERPT
from edgemon.errors import RecordingError
from edgemon.recordings import Recording, read_recording, resample

NORMAL_EXCERPT = CWRU_EXCERPT / "normal_0_97.mat"
FAULT_EXCERPT = CWRU_EXCERPT / "12k_Drive_End_IR007_0_105.mat"


def _readme_rows(readme: Path, folder: str) -> list[list[str]]:
    """Return the cells of the file table in the data README's section on ``folder``."""
    text = readme.read_text(encoding="utf-8")
    section = text.split(f"## {folder}/", 1)[1].split("\n## ", 1)[0]
    table = section.split("### Files", 1)[1]
    rows = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 3 and re.fullmatch(r"`[0-9a-f]{64}`", cells[-1]):
            rows.append(cells)
    return rows


def _write_wav(path: Path, counts: np.ndarray, width: int, rate: int) -> None:
    """Write integer ``counts`` of shape (n_samples, n_channels) as PCM WAV."""
    if width == 1:
        frames = (counts + 128).astype(np.uint8).tobytes()
    elif width == 3:
        frames = counts.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        frames = counts.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(counts.shape[1])
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)


# Real recordings --------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_cwru_files_match_readme(shared_readme: Path, cwru_dir: Path) -> None:
    rows = _readme_rows(shared_readme, "cwru")
    assert len(rows) == 28
    for name, record, _, _, _, rpm, rate, samples, channels, sha in rows:
        recording = read_recording(cwru_dir / name)
        assert recording.sha256 == sha.strip("`"), name
        assert recording.sample_rate == float(rate.split()[0]), name
        assert recording.n_samples == int(samples), name
        assert sorted(recording.channels) == channels.split(","), name
        assert recording.attrs["record"] == int(record), name
        assert recording.attrs["rpm"] == float(rpm.split("/")[1]), name


@pytest.mark.shared_data
def test_mfpt_files_match_readme(shared_readme: Path, mfpt_dir: Path) -> None:
    rows = _readme_rows(shared_readme, "mfpt")
    assert len(rows) == 10
    for name, _, load, shaft, rate, samples, sha in rows:
        recording = read_recording(mfpt_dir / name)
        assert recording.sha256 == sha.strip("`"), name
        assert recording.sample_rate == 48828.0, name
        assert recording.sample_rate == float(rate), name
        assert recording.n_samples == int(samples), name
        assert recording.channels == ("gs",), name
        assert recording.attrs["load_lbs"] == float(load), name
        assert recording.attrs["shaft_hz"] == float(shaft), name


@pytest.mark.shared_data
def test_ims_files_match_readme(shared_readme: Path, ims_dir: Path) -> None:
    rows = _readme_rows(shared_readme, "ims")
    assert len(rows) == 18
    for name, *_, sha in rows:
        recording = read_recording(ims_dir / name)
        assert recording.sha256 == sha.strip("`"), name
        assert recording.sample_rate == 20480.0, name
        assert recording.samples.shape == (20480, 8), name
        assert recording.channels == tuple(f"ch{i}" for i in range(1, 9)), name


@pytest.mark.shared_data
def test_cwru_normal_is_48k(cwru_dir: Path) -> None:
    recording = read_recording(cwru_dir / "normal_0_97.mat")
    assert recording.sample_rate == 48000.0
    assert recording.channels == ("DE", "FE")
    assert recording.duration == pytest.approx(5.082, abs=1e-3)


@pytest.mark.shared_data
def test_mfpt_resample_to_12k(mfpt_dir: Path) -> None:
    recording = read_recording(mfpt_dir / "OuterRaceFault_vload_1.mat")
    resampled = resample(recording, 12000)
    # 48,828 -> 12,000 Hz is 1000/4069, and 146,484 * 1000 / 4069 = 36,000.
    assert resampled.n_samples == 36000
    assert resampled.sample_rate == 12000.0
    assert resampled.attrs["resampled_from"] == 48828.0


# Channels ---------------------------------------------------------------------------------------


def test_channels_selected_by_name() -> None:
    everything = read_recording(FAULT_EXCERPT)
    selected = read_recording(FAULT_EXCERPT, channels=["FE", "DE"])
    assert everything.channels == ("DE", "FE")
    assert selected.channels == ("FE", "DE")
    np.testing.assert_array_equal(selected.samples[:, 0], everything.channel("FE"))
    np.testing.assert_array_equal(selected.samples[:, 1], everything.channel("DE"))


def test_recording_pickles() -> None:
    recording = read_recording(FAULT_EXCERPT, channels="DE")
    copy = pickle.loads(pickle.dumps(recording))
    assert copy.attrs == recording.attrs
    assert copy.sha256 == recording.sha256
    np.testing.assert_array_equal(copy.samples, recording.samples)


def test_channel_as_single_string() -> None:
    recording = read_recording(FAULT_EXCERPT, channels="FE")
    assert recording.channels == ("FE",)
    assert recording.samples.shape == (60000, 1)


def test_cwru_variables_found_by_pattern(tmp_path: Path) -> None:
    # Variables in another order and an unrelated extra variable.
    path = tmp_path / "12k_Drive_End_IR007_0_105.mat"
    de = np.arange(10.0).reshape(-1, 1)
    scipy.io.savemat(
        path,
        {
            "notes": np.array([[1.0]]),
            "X105RPM": np.array([[1797]], dtype=np.uint16),
            "X105_BA_time": -de,
            "X105_FE_time": 2 * de,
            "X105_DE_time": de,
        },
    )
    recording = read_recording(path)
    assert recording.channels == ("DE", "FE", "BA")
    np.testing.assert_array_equal(recording.channel("FE"), 2 * de.ravel())
    assert recording.attrs == {"record": 105, "rpm": 1797.0}


def test_cwru_second_record_ignored(tmp_path: Path) -> None:
    # Some CWRU files also contain another record's variables; the name decides.
    path = tmp_path / "normal_2_99.mat"
    scipy.io.savemat(
        path,
        {
            "X098_DE_time": np.zeros((5, 1)),
            "X099_DE_time": np.ones((8, 1)),
            "X099RPM": np.array([[1750]], dtype=np.uint16),
        },
    )
    recording = read_recording(path)
    assert recording.attrs["record"] == 99
    assert recording.n_samples == 8
    assert recording.sample_rate == 48000.0


def test_cwru_rate_from_caller(tmp_path: Path) -> None:
    path = tmp_path / "105.mat"
    scipy.io.savemat(path, {"X105_DE_time": np.ones((8, 1))})
    assert read_recording(path, sample_rate=12000).sample_rate == 12000.0


# Resampling -------------------------------------------------------------------------------------


def test_resample_normal_length() -> None:
    recording = read_recording(NORMAL_EXCERPT)
    resampled = resample(recording, 12000)
    assert recording.n_samples == 243938
    assert resampled.n_samples == math.ceil(243938 / 4)
    assert resampled.sample_rate == 12000.0
    assert resampled.channels == recording.channels
    assert resampled.sha256 == recording.sha256
    assert resampled.attrs["resampled_from"] == 48000.0


def test_resample_keeps_band_power() -> None:
    recording = read_recording(NORMAL_EXCERPT)
    resampled = resample(recording, 12000)
    freq_48k, power_48k = welch(recording.samples, fs=48000, nperseg=4096, axis=0)
    freq_12k, power_12k = welch(resampled.samples, fs=12000, nperseg=1024, axis=0)
    edges = np.arange(0, 5001, 500)
    for low, high in itertools.pairwise(edges):
        original = power_48k[(freq_48k >= low) & (freq_48k < high)].sum(axis=0) * freq_48k[1]
        kept = power_12k[(freq_12k >= low) & (freq_12k < high)].sum(axis=0) * freq_12k[1]
        np.testing.assert_allclose(kept, original, rtol=0.01, err_msg=f"{low}-{high} Hz")


def test_resample_same_rate_unchanged() -> None:
    recording = read_recording(FAULT_EXCERPT)
    assert resample(recording, 12000) is recording


def test_resample_upsamples() -> None:
    recording = Recording(np.sin(np.arange(100.0) / 5)[:, None], 1000.0, ("x",))
    resampled = resample(recording, 3000)
    assert resampled.n_samples == 300
    np.testing.assert_allclose(
        resampled.samples[30:270:3, 0], recording.samples[10:90, 0], atol=0.01
    )


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_resample_invalid_rate(rate: float) -> None:
    recording = Recording(np.zeros((10, 1)), 1000.0, ("x",))
    with pytest.raises(RecordingError, match="sample_rate must be a positive number of Hz"):
        resample(recording, rate)


@settings(max_examples=30, deadline=None)
@given(
    n_samples=st.integers(min_value=1, max_value=3000),
    source_rate=st.sampled_from([8000, 12000, 20480, 44100, 48000, 48828]),
    target_rate=st.sampled_from([1000, 12000, 16000, 25600, 48000]),
)
def test_resample_length_property(n_samples: int, source_rate: int, target_rate: int) -> None:
    recording = Recording(np.ones((n_samples, 2)), source_rate, ("a", "b"))
    resampled = resample(recording, target_rate)
    expected = (
        n_samples
        if source_rate == target_rate
        else math.ceil(n_samples * target_rate / source_rate)
    )
    assert resampled.n_samples == expected
    assert resampled.sample_rate == target_rate


# Round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wav_round_trip(tmp_path: Path, width: int) -> None:
    full_scale = 2 ** (8 * width - 1)
    counts = np.array([[0, -full_scale], [full_scale - 1, 1], [-1, full_scale // 2]])
    path = tmp_path / "signal.wav"
    _write_wav(path, counts, width, 25600)
    recording = read_recording(path)
    assert recording.sample_rate == 25600.0
    assert recording.channels == ("ch1", "ch2")
    assert recording.attrs["sample_width_bits"] == 8 * width
    np.testing.assert_array_equal(recording.samples, counts / full_scale)
    assert recording.samples.min() >= -1.0
    assert recording.samples.max() < 1.0


@settings(max_examples=25, deadline=None)
@given(counts=hnp.arrays(np.int16, st.tuples(st.integers(1, 200), st.integers(1, 3))))
def test_wav_int16_exact(counts: np.ndarray) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(counts.shape[1])
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(counts.astype("<i2").tobytes())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.wav"
        path.write_bytes(buffer.getvalue())
        recording = read_recording(path)
    np.testing.assert_array_equal(recording.samples * 32768, counts)


def test_csv_round_trip(tmp_path: Path) -> None:
    samples = np.random.default_rng(0).normal(size=(50, 3))
    path = tmp_path / "run.csv"
    np.savetxt(path, samples, delimiter=",", header="x, y ,z", comments="", fmt="%.17g")
    text = path.read_text()
    path.write_text("# sample_rate = 25600\n# site=pump 3\n# free text\n" + text)
    recording = read_recording(path)
    assert recording.sample_rate == 25600.0
    assert recording.channels == ("x", "y", "z")
    assert recording.attrs == {"site": "pump 3"}
    np.testing.assert_array_equal(recording.samples, samples)
    assert recording.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_rate_from_caller(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_text("time,accel\n0,0.5\n1,0.25\n")
    recording = read_recording(path, channels="accel", sample_rate=1000)
    assert recording.sample_rate == 1000.0
    np.testing.assert_array_equal(recording.samples[:, 0], [0.5, 0.25])


def test_npy_round_trip(tmp_path: Path) -> None:
    samples = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    path = tmp_path / "run.npy"
    np.save(path, samples)
    recording = read_recording(path, sample_rate=4000)
    assert recording.samples.dtype == np.float64
    assert recording.channels == ("ch1", "ch2")
    np.testing.assert_array_equal(recording.samples, samples)


def test_npy_one_dimensional(tmp_path: Path) -> None:
    path = tmp_path / "run.npy"
    np.save(path, np.arange(5, dtype=np.int16))
    recording = read_recording(path, sample_rate=100)
    assert recording.samples.shape == (5, 1)


def test_ims_layout_detected(tmp_path: Path) -> None:
    path = tmp_path / "2004.02.12.10.32.39"
    path.write_text("0.1\t-0.2\t0.3\t0.4\n-0.5\t0.6\t0.7\t0.8\n")
    recording = read_recording(path)
    assert recording.sample_rate == 20480.0
    assert recording.channels == ("ch1", "ch2", "ch3", "ch4")
    assert read_recording(path, sample_rate=20000).sample_rate == 20000.0


# Errors -----------------------------------------------------------------------------------------


def _cwru_lengths(path: Path) -> None:
    scipy.io.savemat(
        path / "12k_Drive_End_B007_0_118.mat",
        {"X118_DE_time": np.ones((10, 1)), "X118_FE_time": np.ones((9, 1))},
    )


def _cwru_nan(path: Path) -> None:
    signal = np.ones((10, 1))
    signal[7] = np.nan
    scipy.io.savemat(
        path / "12k_Drive_End_B007_0_118.mat",
        {"X118_DE_time": np.ones((10, 1)), "X118_FE_time": signal},
    )


def _cwru_empty(path: Path) -> None:
    scipy.io.savemat(path / "12k_Drive_End_B007_0_118.mat", {"X118_DE_time": np.zeros((0, 1))})


def _cwru_no_rate(path: Path) -> None:
    scipy.io.savemat(path / "118.mat", {"X118_DE_time": np.ones((10, 1))})


def _cwru_conflicting_rate(path: Path) -> None:
    scipy.io.savemat(path / "12k_normal_0_97.mat", {"X097_DE_time": np.ones((10, 1))})


def _other_mat(path: Path) -> None:
    scipy.io.savemat(path / "x.mat", {"signal": np.ones((10, 1))})


def _truncated_mat(path: Path) -> None:
    (path / "x.mat").write_bytes(NORMAL_EXCERPT.read_bytes()[:5000])


def _v73_mat(path: Path) -> None:
    (path / "x.mat").write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512))


def _empty_file(path: Path) -> None:
    (path / "x.csv").write_bytes(b"")


def _garbage(path: Path) -> None:
    (path / "x.bin").write_bytes(bytes(range(256)) * 4)


def _csv_no_rate(path: Path) -> None:
    (path / "x.csv").write_text("a,b\n1,2\n")


def _csv_bad_rate(path: Path) -> None:
    (path / "x.csv").write_text("# sample_rate=fast\na,b\n1,2\n")


def _csv_inf(path: Path) -> None:
    (path / "x.csv").write_text("# sample_rate=100\na,b\n1,2\n3,inf\n")


def _csv_ragged(path: Path) -> None:
    (path / "x.csv").write_text("# sample_rate=100\na,b\n1,2\n3\n")


def _csv_no_header(path: Path) -> None:
    (path / "x.csv").write_text("# sample_rate=100\n1,2\n3,4\n")


def _csv_header_only(path: Path) -> None:
    (path / "x.csv").write_text("# sample_rate=100\na,b\n")


def _npy_no_rate(path: Path) -> None:
    np.save(path / "x.npy", np.ones(5))


def _npy_nan(path: Path) -> None:
    np.save(path / "x.npy", np.array([[1.0, 2.0], [3.0, np.nan], [np.nan, 1.0]]))


def _npy_strings(path: Path) -> None:
    np.save(path / "x.npy", np.array(["a", "b"]))


def _wav_float(path: Path) -> None:
    # A WAVE_FORMAT_IEEE_FLOAT (3) header, which the stdlib reader rejects.
    data = np.zeros(4, dtype="<f4").tobytes()
    fmt = (
        b"fmt "
        + (16).to_bytes(4, "little")
        + (3).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + (8000).to_bytes(4, "little")
        + (32000).to_bytes(4, "little")
        + (4).to_bytes(2, "little")
        + (32).to_bytes(2, "little")
    )
    body = b"WAVE" + fmt + b"data" + len(data).to_bytes(4, "little") + data
    (path / "x.wav").write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)


ERROR_CASES = [
    # (writer, file name, read_recording options, message pattern)
    (None, "missing.mat", {}, r"recording not found: .*missing\.mat"),
    (_empty_file, "x.csv", {}, r"x\.csv is empty \(0 bytes\)"),
    (
        _cwru_lengths,
        "12k_Drive_End_B007_0_118.mat",
        {},
        r"channels have different lengths \(DE: 10, FE: 9\)",
    ),
    (
        _cwru_nan,
        "12k_Drive_End_B007_0_118.mat",
        {},
        r"channel FE has 1 NaN or Inf values, the first at sample 7",
    ),
    (_cwru_empty, "12k_Drive_End_B007_0_118.mat", {}, r"contains no samples"),
    (
        _cwru_no_rate,
        "118.mat",
        {},
        r"cannot determine the sample rate of 118\.mat.*pass sample_rate",
    ),
    (
        _cwru_conflicting_rate,
        "12k_normal_0_97.mat",
        {},
        r"the name gives 12000 Hz but record 97 is a normal baseline recorded at 48000 Hz",
    ),
    (
        _cwru_lengths,
        "12k_Drive_End_B007_0_118.mat",
        {"sample_rate": 48000},
        r"sampled at 12000 Hz \(from its name\), but sample_rate=48000 was given",
    ),
    (_other_mat, "x.mat", {}, r"neither CWRU variables .* it contains: signal"),
    (_truncated_mat, "x.mat", {}, r"cannot read x\.mat as a MATLAB file"),
    (_v73_mat, "x.mat", {}, r"MATLAB v7\.3 \(HDF5\) file, which is not supported"),
    (_garbage, "x.bin", {}, r"cannot determine the format of x\.bin; supported formats: cwru, "),
    (_csv_no_rate, "x.csv", {}, r"add a line '# sample_rate=<Hz>' before the header"),
    (_csv_bad_rate, "x.csv", {}, r"x\.csv line 1: sample_rate must be a positive number"),
    (_csv_inf, "x.csv", {}, r"channel b has 1 NaN or Inf values, the first at sample 1"),
    (_csv_ragged, "x.csv", {}, r"cannot read x\.csv as CSV"),
    (_csv_no_header, "x.csv", {}, r"line 2: expected a header row of channel names"),
    (_csv_header_only, "x.csv", {}, r"x\.csv contains no samples"),
    (_csv_no_rate, "x.csv", {"sample_rate": -5}, r"sample_rate must be a positive number"),
    (_csv_no_rate, "x.csv", {"format": "xlsx"}, r"unknown format 'xlsx'; supported formats"),
    (_npy_no_rate, "x.npy", {}, r"\.npy files do not store one; pass sample_rate"),
    (
        _npy_nan,
        "x.npy",
        {"sample_rate": 10},
        r"channel ch1 has 1 NaN or Inf values, the first at sample 2",
    ),
    (_npy_strings, "x.npy", {"sample_rate": 10}, r"expected a real array"),
    (_wav_float, "x.wav", {}, r"cannot read x\.wav as WAV \(only integer PCM is supported\)"),
]


@pytest.mark.parametrize(
    ("writer", "name", "options", "message"),
    ERROR_CASES,
    ids=[f"{case[1]}-{case[3][:30]}" for case in ERROR_CASES],
)
def test_read_errors(tmp_path: Path, writer, name: str, options: dict, message: str) -> None:
    if writer is not None:
        writer(tmp_path)
    with pytest.raises(RecordingError, match=message):
        read_recording(tmp_path / name, **options)


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        ("XY", r"channel 'XY' not found in 12k_Drive_End_IR007_0_105\.mat; available: DE, FE"),
        (["DE", "DE"], r"channel 'DE' requested more than once"),
        ([], r"no channels requested"),
    ],
)
def test_channel_errors(channels, message: str) -> None:
    with pytest.raises(RecordingError, match=message):
        read_recording(FAULT_EXCERPT, channels=channels)


def test_nan_outside_selection_allowed(tmp_path: Path) -> None:
    _cwru_nan(tmp_path)
    recording = read_recording(tmp_path / "12k_Drive_End_B007_0_118.mat", channels="DE")
    assert recording.n_samples == 10


@pytest.mark.parametrize(
    ("samples", "channels", "rate", "message"),
    [
        (np.zeros(5), ("x",), 10.0, r"shape \(n_samples, n_channels\)"),
        (np.zeros((5, 2)), ("x",), 10.0, r"1 channel names given for 2 columns"),
        (np.zeros((5, 1)), ("x",), 0.0, r"sample_rate must be a positive number of Hz, got 0"),
    ],
)
def test_recording_invalid(samples, channels, rate: float, message: str) -> None:
    with pytest.raises(RecordingError, match=message):
        Recording(samples, rate, channels)


# Imports ----------------------------------------------------------------------------------------


def test_import_loads_no_scipy() -> None:
    code = (
        "import sys, edgemon.recordings; "
        "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_csv_read_loads_no_scipy(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_text("# sample_rate=100\na\n1\n2\n")
    code = (
        "import sys; from edgemon.recordings import read_recording; "
        f"read_recording({str(path)!r}); "
        "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
