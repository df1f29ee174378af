"""Tests for edgemon.training.datasets and the bundled CWRU excerpt."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from edgemon.data import CWRU_EXCERPT
from edgemon.errors import RecordingError
from edgemon.training.datasets import LabelledRecording, load_dataset

EXCERPT_FILES = {
    "normal_0_97.mat": None,
    "12k_Drive_End_IR007_0_105.mat": 60000,
    "12k_Drive_End_IR007_1_106.mat": 60000,
    "12k_Drive_End_B007_0_118.mat": 60000,
    "12k_Drive_End_B007_1_119.mat": 60000,
    "12k_Drive_End_OR007@6_0_130.mat": 60000,
    "12k_Drive_End_OR007@6_1_131.mat": 60000,
}


def _by_name(items: list[LabelledRecording]) -> dict[str, LabelledRecording]:
    return {item.path.name: item for item in items}


# CWRU -------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_cwru_labels_and_attrs(cwru_dir: Path) -> None:
    items = load_dataset("cwru", cwru_dir, channels="DE")
    assert len(items) == 28
    assert Counter(item.label for item in items) == {
        "normal": 1,
        "inner_race": 9,
        "ball": 9,
        "outer_race": 9,
    }
    by_name = _by_name(items)

    outer = by_name["12k_Drive_End_OR014@6_1_198.mat"]
    assert outer.label == "outer_race"
    assert outer.attrs["position"] == "6:00"
    assert outer.attrs["record"] == 198
    assert outer.attrs["load_hp"] == 1
    assert outer.attrs["fault_diameter_in"] == 0.014
    assert outer.attrs["rpm"] == 1772.0
    assert outer.attrs["nominal_rpm"] == 1772

    inner = by_name["12k_Drive_End_IR021_2_211.mat"]
    assert inner.attrs["position"] is None
    assert inner.attrs["rpm"] == 1752.0
    assert inner.attrs["nominal_rpm"] == 1750

    normal = by_name["normal_0_97.mat"]
    assert normal.label == "normal"
    assert normal.attrs["fault_diameter_in"] is None
    assert normal.recording.sample_rate == 48000.0


@pytest.mark.shared_data
def test_cwru_resampled_to_12k(cwru_dir: Path) -> None:
    items = load_dataset("cwru", cwru_dir, channels=("DE", "FE"), sample_rate=12000)
    assert {item.recording.sample_rate for item in items} == {12000.0}
    normal = _by_name(items)["normal_0_97.mat"]
    assert normal.recording.n_samples == 60985
    assert normal.recording.attrs["resampled_from"] == 48000.0
    assert normal.recording.channels == ("DE", "FE")


@pytest.mark.shared_data
def test_cwru_load_filter(cwru_dir: Path) -> None:
    items = load_dataset("cwru", cwru_dir, channels="DE", loads=[0, 2])
    assert len(items) == 19
    assert {item.attrs["load_hp"] for item in items} == {0, 2}


@pytest.mark.shared_data
def test_cwru_held_out_load_absent(cwru_dir: Path) -> None:
    with pytest.raises(RecordingError, match=r"at load_hp 3; present: 0, 1, 2"):
        load_dataset("cwru", cwru_dir, channels="DE", loads=[3])


@pytest.mark.shared_data
def test_cwru_sha256_recorded(cwru_dir: Path) -> None:
    items = load_dataset("cwru", cwru_dir, channels="DE", loads=[1])
    for item in items:
        assert item.sha256 == hashlib.sha256(item.path.read_bytes()).hexdigest()


def test_cwru_unlabelled_file(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "105.mat", {"X105_DE_time": np.ones((4, 1))})
    with pytest.raises(RecordingError, match=r"cannot label 105\.mat: CWRU file names"):
        load_dataset("cwru", tmp_path, channels="DE")


def test_cwru_record_mismatch(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "12k_Drive_End_IR007_0_105.mat", {"X106_DE_time": np.ones((4, 1))})
    with pytest.raises(
        RecordingError,
        match=r"the name gives record 105 but the file contains "
        r"record 106",
    ):
        load_dataset("cwru", tmp_path, channels="DE")


def test_cwru_missing_channel() -> None:
    with pytest.raises(
        RecordingError,
        match=r"channel 'BA' not found in "
        r"12k_Drive_End_B007_0_118\.mat; available: DE, FE",
    ):
        load_dataset("cwru", CWRU_EXCERPT, channels=("DE", "BA"))


# The bundled excerpt ----------------------------------------------------------------------------


def test_excerpt_loads_at_12k() -> None:
    items = load_dataset("cwru", CWRU_EXCERPT, channels=("DE", "FE"), sample_rate=12000)
    assert sorted(item.path.name for item in items) == sorted(EXCERPT_FILES)
    assert {item.recording.sample_rate for item in items} == {12000.0}
    normal = _by_name(items)["normal_0_97.mat"]
    assert normal.recording.attrs["resampled_from"] == 48000.0
    assert normal.recording.n_samples == 60985
    for item in items:
        if item.label != "normal":
            assert item.recording.n_samples == 60000


@pytest.mark.parametrize("load", [0, 1])
def test_excerpt_has_every_condition(load: int) -> None:
    items = load_dataset("cwru", CWRU_EXCERPT, channels="DE", loads=[load])
    labels = Counter(item.label for item in items)
    expected = {"inner_race": 1, "ball": 1, "outer_race": 1}
    if load == 0:
        expected["normal"] = 1
    assert labels == expected
    assert {item.attrs["fault_diameter_in"] for item in items} - {None} == {0.007}


def test_excerpt_size_limit() -> None:
    files = [path for path in CWRU_EXCERPT.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) <= 4_000_000


def test_excerpt_readme_checksums() -> None:
    readme = (CWRU_EXCERPT / "README.md").read_text(encoding="utf-8")
    assert "Case Western Reserve University Bearing Data Center" in readme
    listed = dict(
        re.findall(
            r"^\| (\S+\.mat) \|.*`[0-9a-f]{64}` \| `([0-9a-f]{64})` \|$", readme, flags=re.MULTILINE
        )
    )
    assert sorted(listed) == sorted(EXCERPT_FILES)
    for name, sha in listed.items():
        assert hashlib.sha256((CWRU_EXCERPT / name).read_bytes()).hexdigest() == sha, name


@pytest.mark.shared_data
def test_excerpt_equals_source(cwru_dir: Path) -> None:
    for name, n_samples in EXCERPT_FILES.items():
        excerpt = scipy.io.loadmat(CWRU_EXCERPT / name)
        source = scipy.io.loadmat(cwru_dir / name)
        kept = sorted(key for key in excerpt if not key.startswith("__"))
        assert [key for key in kept if key.endswith("_time")] == sorted(
            key for key in source if key.endswith(("_DE_time", "_FE_time"))
        ), name
        for key in kept:
            expected = source[key] if key.endswith("RPM") else source[key][:n_samples]
            assert excerpt[key].dtype == expected.dtype, f"{name} {key}"
            np.testing.assert_array_equal(excerpt[key], expected, err_msg=f"{name} {key}")


@pytest.mark.shared_data
def test_excerpt_readme_source_checksums(cwru_dir: Path) -> None:
    readme = (CWRU_EXCERPT / "README.md").read_text(encoding="utf-8")
    listed = dict(
        re.findall(
            r"^\| (\S+\.mat) \|.*\| `([0-9a-f]{64})` \| `[0-9a-f]{64}` \|$",
            readme,
            flags=re.MULTILINE,
        )
    )
    assert sorted(listed) == sorted(EXCERPT_FILES)
    for name, sha in listed.items():
        assert hashlib.sha256((cwru_dir / name).read_bytes()).hexdigest() == sha, name


# MFPT and IMS -----------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_mfpt_labels_and_loads(mfpt_dir: Path) -> None:
    items = _by_name(load_dataset("mfpt", mfpt_dir, channels="gs"))
    assert len(items) == 10
    # The vload index means a different load for each fault type.
    assert items["InnerRaceFault_vload_1.mat"].attrs["load_lbs"] == 0.0
    assert items["OuterRaceFault_vload_1.mat"].attrs["load_lbs"] == 25.0
    assert items["OuterRaceFault_vload_7.mat"].label == "outer_race"
    assert items["InnerRaceFault_vload_4.mat"].label == "inner_race"
    assert items["InnerRaceFault_vload_4.mat"].attrs["shaft_hz"] == 25.0
    assert items["InnerRaceFault_vload_4.mat"].recording.sample_rate == 48828.0


@pytest.mark.shared_data
def test_mfpt_load_filter(mfpt_dir: Path) -> None:
    items = load_dataset("mfpt", mfpt_dir, channels="gs", loads=[50, 300], sample_rate=12000)
    assert Counter(item.label for item in items) == {"inner_race": 2, "outer_race": 2}
    assert {item.attrs["load_lbs"] for item in items} == {50.0, 300.0}
    assert {item.recording.n_samples for item in items} == {36000}


def test_mfpt_baseline_labelled_normal(tmp_path: Path) -> None:
    bearing = {
        "gs": np.ones((6, 1)),
        "sr": np.array([[97656]], dtype=np.uint32),
        "rate": np.array([[25]], dtype=np.uint8),
        "load": "270",
    }
    scipy.io.savemat(tmp_path / "baseline_1.mat", {"bearing": bearing})
    (item,) = load_dataset("mfpt", tmp_path, channels="gs")
    assert item.label == "normal"
    assert item.attrs["load_lbs"] == 270.0
    assert item.recording.sample_rate == 97656.0


@pytest.mark.shared_data
def test_ims_order_and_timestamps(ims_dir: Path) -> None:
    items = load_dataset("ims", ims_dir, channels=("ch5", "ch6"))
    assert len(items) == 18
    assert {item.label for item in items} == {"healthy"}
    assert [item.attrs["order"] for item in items] == list(range(18))
    assert items[0].attrs["timestamp"] == "2003-10-22T12:06:24"
    assert items[-1].attrs["timestamp"] == "2003-10-22T13:29:13"
    assert items[0].recording.channels == ("ch5", "ch6")
    assert items[0].recording.sample_rate == 20480.0


# Manifests --------------------------------------------------------------------------------------


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    """A folder with a CWRU excerpt file, a CSV recording and an .npy recording."""
    (tmp_path / "cwru").mkdir()
    source = CWRU_EXCERPT / "12k_Drive_End_IR007_0_105.mat"
    (tmp_path / "cwru" / source.name).write_bytes(source.read_bytes())
    (tmp_path / "pump.csv").write_text("# sample_rate=12000\ntime,x\n0,0.5\n1,-0.5\n2,0.25\n")
    np.save(tmp_path / "fan.npy", np.ones((24000, 2)))
    return tmp_path


def test_manifest_csv_good(manifest_dir: Path) -> None:
    (manifest_dir / "m.csv").write_text(
        "# Site survey, March\n"
        "file,label,channel,sample_rate,site\n"
        "cwru/12k_Drive_End_IR007_0_105.mat,inner_race,DE,,rig\n"
        "pump.csv,normal,x,,pump 3\n"
        f"{manifest_dir / 'fan.npy'},normal,ch2,24000,fan 1\n"
    )
    items = load_dataset("files", manifest_dir / "m.csv", channels="accel", sample_rate=12000)
    assert [item.label for item in items] == ["inner_race", "normal", "normal"]
    assert [item.attrs["site"] for item in items] == ["rig", "pump 3", "fan 1"]
    assert {item.recording.channels for item in items} == {("accel",)}
    assert {item.recording.sample_rate for item in items} == {12000.0}
    assert items[0].recording.attrs["file_channels"] == ("DE",)
    assert items[0].attrs["rpm"] == 1797.0
    assert items[2].recording.n_samples == 12000
    np.testing.assert_array_equal(items[1].recording.samples[:, 0], [0.5, -0.5, 0.25])


def test_manifest_toml_good(manifest_dir: Path) -> None:
    (manifest_dir / "m.toml").write_text(
        '[[recording]]\nfile = "cwru/12k_Drive_End_IR007_0_105.mat"\nlabel = "inner_race"\n'
        'channels = ["DE", "FE"]\nload_hp = 0\n\n'
        '[[recording]]\nfile = "fan.npy"\nlabel = "normal"\nsample_rate = 12000\n'
        'channels = ["ch1", "ch2"]\n'
    )
    items = load_dataset("files", manifest_dir / "m.toml", channels=("x", "y"))
    assert [item.label for item in items] == ["inner_race", "normal"]
    assert items[0].attrs["load_hp"] == 0
    assert items[0].recording.channels == ("x", "y")
    assert items[1].recording.sample_rate == 12000.0


def test_manifest_channels_by_name(manifest_dir: Path) -> None:
    (manifest_dir / "m.csv").write_text("file,label\ncwru/12k_Drive_End_IR007_0_105.mat,ir\n")
    (item,) = load_dataset("files", manifest_dir / "m.csv", channels=("FE",))
    assert item.recording.channels == ("FE",)
    assert "file_channels" not in item.recording.attrs


def test_manifest_csv_bad_rows(manifest_dir: Path) -> None:
    (manifest_dir / "m.csv").write_text(
        "file,label,channel,sample_rate\n"
        "cwru/12k_Drive_End_IR007_0_105.mat,inner_race,DE,\n"
        "missing.mat,normal,,\n"
        "pump.csv,,x,fast\n"
        "fan.npy,normal,ch1,\n"
        "cwru/12k_Drive_End_IR007_0_105.mat,inner_race,XY,\n"
        "pump.csv,normal,x,48000\n"
        "pump.csv,normal,x,,extra\n"
    )
    with pytest.raises(RecordingError) as caught:
        load_dataset("files", manifest_dir / "m.csv", channels="accel")
    message = str(caught.value)
    expected = [
        r"has 6 invalid rows",
        r"line 3: file not found: .*missing\.mat",
        r"line 4: 'label' is missing; sample_rate must be a positive number of Hz, got 'fast'",
        r"line 5: cannot determine the sample rate of fan\.npy",
        r"line 6: channel 'XY' not found in 12k_Drive_End_IR007_0_105\.mat; available: DE, FE",
        r"line 7: pump\.csv is sampled at 12000 Hz .* but sample_rate=48000 was given",
        r"line 8: more values than header columns: extra",
    ]
    for pattern in expected:
        assert re.search(pattern, message), pattern
    assert "line 2" not in message


def test_manifest_toml_bad_rows(manifest_dir: Path) -> None:
    (manifest_dir / "m.toml").write_text(
        '[[recording]]\nfile = "pump.csv"\n\n'
        '[[recording]]\nfile = "pump.csv"\nlabel = "normal"\nchannel = "x"\nchannels = ["x"]\n\n'
        '[[recording]]\nfile = "pump.csv"\nlabel = "normal"\nchannels = 3\n\n'
        '[[recording]]\nfile = "pump.csv"\nlabel = "normal"\nchannels = ["time", "x"]\n'
    )
    with pytest.raises(RecordingError) as caught:
        load_dataset("files", manifest_dir / "m.toml", channels="accel")
    message = str(caught.value)
    expected = [
        r"has 4 invalid rows",
        r"\[\[recording\]\] #1: 'label' is missing",
        r"\[\[recording\]\] #2: give 'channel' or 'channels', not both",
        r"\[\[recording\]\] #3: channels must be a name or a list of names, got 3",
        r"\[\[recording\]\] #4: pump\.csv: 2 file channels \(time, x\) for 1 requested \(accel\)",
    ]
    for pattern in expected:
        assert re.search(pattern, message), pattern


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.json", "{}", r"must end in \.csv or \.toml"),
        ("m.csv", "path,condition\nx,y\n", r"line 1: the header must name the columns 'file' and"),
        ("m.csv", "# nothing\n", r"is empty"),
        ("m.csv", "file,label\n", r"lists no recordings"),
        ("m.toml", "recording = 3\n", r"must contain \[\[recording\]\] tables"),
        ("m.toml", "[[recording]\n", r"is not valid TOML"),
    ],
)
def test_manifest_invalid(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(RecordingError, match=message):
        load_dataset("files", tmp_path / name, channels="x")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("file = 5\nlabel = 'normal'", r"1 invalid row:\n.*'file' must be a text string, got 5"),
        ("file = 'pump.csv'\nlabel = 7", r"'label' must be a text string, got 7"),
        ("label = 'normal'", r"'file' is missing"),
    ],
)
def test_manifest_toml_wrong_types(manifest_dir: Path, row: str, message: str) -> None:
    (manifest_dir / "m.toml").write_text(f"[[recording]]\n{row}\n")
    with pytest.raises(RecordingError, match=message):
        load_dataset("files", manifest_dir / "m.toml", channels="accel")


# Arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("hdf5", {}, r"unknown data set kind 'hdf5'; choose one of cwru, mfpt, ims, files"),
        ("cwru", {"channels": ()}, r"channels must name at least one channel"),
        ("cwru", {"sample_rate": 0}, r"sample_rate must be a positive number of Hz, got 0"),
        ("files", {"loads": [0]}, r"loads filters only the cwru \(hp\) and mfpt \(lbs\)"),
    ],
)
def test_load_dataset_invalid(kind: str, options: dict, message: str) -> None:
    arguments = {"channels": "DE", **options}
    with pytest.raises(RecordingError, match=message):
        load_dataset(kind, CWRU_EXCERPT, **arguments)


def test_load_dataset_missing_path(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"data set not found: .*nowhere"):
        load_dataset("cwru", tmp_path / "nowhere", channels="DE")


def test_load_dataset_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    items = load_dataset("cwru", CWRU_EXCERPT, channels="DE", loads=[1], progress=True)
    assert len(items) == 3
    assert "reading recordings" in capsys.readouterr().err
