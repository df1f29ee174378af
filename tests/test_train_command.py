"""``edgemon train`` and ``edgemon replay`` from the command line: clusters, help, errors."""

from __future__ import annotations

import logging

import pytest
from synthetic_models import exported_model

from edgemon.cli import main
from edgemon.data import CWRU_EXCERPT
from edgemon.model import load_model

NORMAL_48K = CWRU_EXCERPT / "normal_0_97.mat"
INNER_12K = CWRU_EXCERPT / "12k_Drive_End_IR007_0_105.mat"


def _train(tmp_path, *options: str) -> tuple[int, str]:
    out = tmp_path / "model.onnx"
    argv = ["train", "--dataset", "cwru", "--data", str(CWRU_EXCERPT), "--loads", "0"]
    return main([*argv, "--out", str(out), "--quiet", *options]), str(out)


def test_train_default_clusters_capped(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        status, out = _train(tmp_path)
    assert status == 0
    selection = load_model(out).metadata.selection
    # The 0 hp excerpt gives 221 windows: 11 clusters of at least 20 windows.
    assert "fitting 11 clusters instead of the preset's 32: 221 training windows" in caplog.text
    assert load_model(out).metadata.n_clusters == 11
    assert selection.method == "preset"
    assert "preset of 32 clusters" in selection.note
    assert "221 windows allow 11" in selection.note


def test_train_given_clusters_not_capped(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        status, out = _train(tmp_path, "--clusters", "24")
    assert status == 0
    metadata = load_model(out).metadata
    assert "instead of" not in caplog.text
    assert metadata.n_clusters == 24
    assert metadata.selection.method == "user"


def test_train_mixed_rates_name_option(tmp_path, caplog):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"file,label\n{NORMAL_48K},normal\n{INNER_12K},inner_race\n")
    argv = ["train", "--dataset", "files", "--data", str(manifest), "--channel", "DE"]
    with caplog.at_level(logging.INFO):
        status = main([*argv, "--shaft-rpm", "1797", "--out", str(tmp_path / "m.onnx")])
    assert status == 2
    assert "loaded 2 recordings from manifest" in caplog.text
    assert "pass --sample-rate HZ" in caplog.text
    assert "12k_Drive_End_IR007_0_105.mat at 12000 Hz" in caplog.text
    assert "sample_rate=" not in caplog.text
    assert "fitting" not in caplog.text


def test_train_missing_data_names_option(tmp_path, caplog):
    missing = tmp_path / "shared" / "cwru"
    with caplog.at_level(logging.ERROR):
        status = main(
            ["train", "--dataset", "cwru", "--data", str(missing), "--out", str(tmp_path / "m")]
        )
    assert status == 2
    assert f"data set not found: {missing}; pass --data with" in caplog.text
    assert "CWRU Bearing Data Center .mat files" in caplog.text
    assert str(CWRU_EXCERPT) in caplog.text


def test_train_help_lists_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ch5 and ch6 for ims; required for files" in text
    assert "required for files unless --features leaves out env.*" in text
    assert "With --dataset files, also pass --channel, --shaft-rpm" in text


def test_replay_channel_mismatch_names_option(tmp_path, caplog):
    path, _trained = exported_model(tmp_path)
    argv = ["replay", "--model", str(path), "--input", str(INNER_12K), "--channel", "FE"]
    with caplog.at_level(logging.ERROR):
        status = main(argv)
    assert status == 2
    assert "--channel FE gives the channels ['FE'], but the model was trained" in caplog.text
    assert "pass --channel DE" in caplog.text
    assert "configure the source" not in caplog.text
