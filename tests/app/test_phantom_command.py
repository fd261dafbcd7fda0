"""``fluorosim phantom build|show|export`` through the real CLI entry point (no Qt)."""

from __future__ import annotations

import pytest

from app.cli import main

FAST = ["--voxel-mm", "3"]


@pytest.fixture
def cache_args(tmp_path):
    return ["--cache-dir", str(tmp_path / "cache")]


def test_build_reports_the_cache_file(cache_args, capsys):
    assert main(["phantom", "build", *FAST, *cache_args]) == 0
    out = capsys.readouterr().out
    assert "patient seed 0" in out and "cached as" in out and ".npz" in out


def test_show_prints_parameters_and_measured_dimensions(cache_args, capsys):
    assert main(["phantom", "show", "--seed", "2", "--age", "70", *FAST, *cache_args]) == 0
    out = capsys.readouterr().out
    assert "age_years" in out and "70.0" in out
    assert "measured on the label volume" in out
    for row in ("L1", "L5", "L4_L5", "L5_S1"):
        assert f"\n{row}" in out


def test_random_prints_the_seed_to_rebuild_with(cache_args, capsys):
    assert main(["phantom", "build", "--random", *FAST, *cache_args]) == 0
    out = capsys.readouterr().out
    assert "random seed:" in out and "--seed" in out


def test_bad_parameter_is_a_message_not_a_traceback(cache_args, capsys):
    assert main(["phantom", "build", "--bmi", "80", *FAST, *cache_args]) == 2
    err = capsys.readouterr().err
    assert "bmi" in err and "16–45" in err


def test_export_without_folder_explains(cache_args, capsys):
    assert main(["phantom", "export", *FAST, *cache_args]) == 2
    assert "OUT_DIR" in capsys.readouterr().err


def test_export_writes_the_patient_files(tmp_path, cache_args, capsys):
    out_dir = tmp_path / "export"
    assert main(["phantom", "export", str(out_dir), *FAST, *cache_args]) == 0
    assert (out_dir / "hu.nii.gz").is_file()
    assert (out_dir / "labels.nii.gz").is_file()
    assert "exported patient seed 0" in capsys.readouterr().out
