"""``fluorosim phantom build|show|export`` through the real CLI entry point (no Qt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluorosim.app.cli import main

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


@pytest.fixture
def stored_ct(tmp_path, monkeypatch, shared_data, capsys):
    """The real CT imported with ``phantom import`` into a temporary patient store."""
    folder = shared_data / "real-anatomy" / "totalsegmentator-example"
    if not (folder / "example_ct.nii.gz").is_file():
        pytest.skip(f"{folder} not found")
    monkeypatch.setenv("FLUOROSIM_PATIENTS_DIR", str(tmp_path / "patients"))
    ct, masks = str(folder / "example_ct.nii.gz"), str(folder / "masks")
    assert main(["phantom", "import", ct, "--labels", masks, "--name", "ts"]) == 0
    return capsys.readouterr().out


def test_import_stores_the_ct_and_says_what_it_can_be_used_for(stored_ct, tmp_path, capsys):
    out = stored_ct
    assert "as patient 'ts'" in out and "ct-sha256:" in out
    assert "vertebrae_L4 → L4_body: whole L4 vertebra" in out
    assert "approximated — " in out and "S1_foramen_anterior_side" in out
    for drill in ("drill-inlet", "drill-outlet", "drill-true-lateral", "drill-ferguson-l5s1"):
        assert f"  {drill}: ready" in out
    teld = next(line for line in out.splitlines() if line.startswith("  teld-l4l5:"))
    assert "not available" in teld and "root_L4_left" in teld and "kambin_L4_L5_left_apex" in teld
    assert (tmp_path / "patients" / "ts" / "patient.json").is_file()
    assert main(["phantom", "list"]) == 0 and capsys.readouterr().out.strip() == "ts"


@pytest.mark.parametrize(
    "drill", ["drill-inlet", "drill-outlet", "drill-true-lateral", "drill-ferguson-l5s1"]
)
def test_drills_run_headless_on_the_real_ct(stored_ct, drill, tmp_path, capsys):
    """The expert attempt computed for the CT passes with no view error; the default patient's
    pose, replayed on the CT, is scored against the CT's own view (a non-zero angle error)."""
    import json

    assert main(["replay", "--make-script", drill, "--patient", "ts"]) == 0
    script = json.loads(capsys.readouterr().out)
    assert script["patient"] == {"ct": "ts"}
    path = tmp_path / "expert.json"
    path.write_text(json.dumps(script))
    code = main(["replay", "--no-images", "--json", str(path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"], report["findings"]
    angles = [m["value"] for name, m in report["metrics"].items() if name.endswith("angle_deg")]
    assert angles and max(angles) < 0.01
    assert main(["replay", "--make-script", drill]) == 0
    default = json.loads(capsys.readouterr().out)
    path.write_text(json.dumps(default))
    main(["replay", "--no-images", "--json", "--patient", "ts", str(path)])
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    view = drill.removeprefix("drill-").replace("-l5s1", "").replace("-", "_")
    view = "true_lateral_sacrum" if view == "true_lateral" else view
    assert metrics[f"{view}.view_angle_deg"]["value"] > 0.5


def test_scenario_needing_roots_says_which_up_front(stored_ct, capsys):
    assert main(["replay", "--make-script", "teld-l4l5", "--patient", "ts"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "teld-l4l5 needs structures root_L4_left" in err and "thecal_sac" in err
    assert "kambin_L4_L5_left_center" in err and "patient ts" in err


def test_import_problems_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLUOROSIM_PATIENTS_DIR", str(tmp_path / "patients"))
    assert main(["phantom", "import", str(tmp_path / "none.nii.gz"), "--name", "x"]) == 2
    assert "none.nii.gz: file or folder not found" in capsys.readouterr().err
    assert main(["phantom", "import", str(tmp_path), "--name", "bad/name"]) == 2
    assert "patient name 'bad/name'" in capsys.readouterr().err
    assert main(["phantom", "import", "--name", "x"]) == 2
    assert "give the CT" in capsys.readouterr().err


def _bad_inputs(folder):
    """(CT, labels, landmarks, expected file, expected words) for each corrupt or foreign file."""
    import json

    import numpy as np

    from fluorosim.models.io.nifti import write_nifti
    from tests.models.io.conftest import make_patient

    patient = make_patient()
    ct = write_nifti(folder / "ct.nii.gz", patient.hu, patient.lps_from_voxel)
    labels = patient.labels
    affine = patient.lps_from_voxel
    cases = {}

    def nifti(name, data, matrix=affine):
        return write_nifti(folder / name, data, matrix)

    cases["mr"] = (
        nifti("t1.nii.gz", np.full(labels.shape, 300, np.int16)),
        None,
        None,
        "t1.nii.gz",
        "not look like a CT",
    )
    cases["mask as ct"] = (
        nifti("mask.nii.gz", labels),
        None,
        None,
        "mask.nii.gz",
        "not look like a CT",
    )
    (folder / "garbage.nii.gz").write_bytes(b"\x1f\x8b\x08 not really gzip" * 4)
    cases["garbage ct"] = (folder / "garbage.nii.gz", None, None, "garbage.nii.gz", "")
    raw = ct.read_bytes()
    (folder / "cut.nii.gz").write_bytes(raw[: len(raw) // 3])
    cases["truncated ct"] = (folder / "cut.nii.gz", None, None, "cut.nii.gz", "")
    (folder / "scan.mha").write_bytes(b"ObjectType = Image\n")
    cases["foreign format"] = (folder / "scan.mha", None, None, "scan.mha", "unknown volume format")
    moved = affine.copy()
    moved[0, 3] += 6.0
    cases["labels elsewhere"] = (
        ct,
        nifti("seg.nii.gz", labels, moved),
        None,
        "seg.nii.gz",
        "6.000 mm away",
    )
    cases["labels 300"] = (
        ct,
        nifti("big.nii.gz", labels.astype(np.int16) * 100),
        None,
        "big.nii.gz",
        "outside 0–255",
    )
    cases["labels fractional"] = (
        ct,
        nifti("frac.nii.gz", labels * 0.5),
        None,
        "frac.nii.gz",
        "whole numbers",
    )
    nifti("seg_names.nii.gz", labels)
    (folder / "seg_names.json").write_text("{broken")
    cases["label names"] = (
        ct,
        folder / "seg_names.nii.gz",
        None,
        "seg_names.json",
        "not valid JSON",
    )
    (folder / "empty").mkdir()
    cases["empty mask folder"] = (ct, folder / "empty", None, "empty", "no mask files")
    (folder / "nanmasks").mkdir()
    write_nifti(
        folder / "nanmasks" / "sacrum.nii.gz", np.full(labels.shape, np.nan, np.float32), affine
    )
    cases["nan mask"] = (ct, folder / "nanmasks", None, "sacrum.nii.gz", "finite")
    (folder / "lm.json").write_text("{not json")
    cases["landmarks json"] = (ct, None, folder / "lm.json", "lm.json", "")
    (folder / "far.json").write_text(
        json.dumps(
            {"landmarks": {"a": [900, 9, 9], "b": [0, 900, 40], "c": [[0, 0, 40], [0, 0, -500]]}}
        )
    )
    cases["foreign landmarks"] = (
        ct,
        None,
        folder / "far.json",
        "far.json",
        "outside the CT volume",
    )
    exported = folder / "exported"
    exported.mkdir()
    write_nifti(exported / "hu.nii.gz", patient.hu, affine)
    (exported / "patient.json").write_text(json.dumps({"format": "someone-else"}))
    cases["foreign export"] = (exported, None, None, "patient.json", "expected 'fluorosim-patient'")
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "mr", "mask as ct", "garbage ct", "truncated ct", "foreign format", "labels elsewhere",
        "labels 300", "labels fractional", "label names", "empty mask folder", "nan mask",
        "landmarks json", "foreign landmarks", "foreign export",
    ],
)  # fmt: skip
def test_corrupt_or_foreign_files_are_one_line_naming_the_file(case, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLUOROSIM_PATIENTS_DIR", str(tmp_path / "patients"))
    ct, labels, landmarks, filename, words = _bad_inputs(tmp_path)[case]
    args = ["phantom", "import", str(ct), "--name", "x"]
    args += ["--labels", str(labels)] if labels else []
    args += ["--landmarks", str(landmarks)] if landmarks else []
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert filename in err and words in err, err
    assert not (tmp_path / "patients" / "x").exists()  # nothing half-stored


def test_run_refuses_an_unusable_patient_before_opening_a_window(stored_ct, capsys):
    assert main(["run", "--patient", "nobody", "--scenario", "drill-inlet", "--trainee", "t"]) == 2
    assert "--patient nobody: no stored patient" in capsys.readouterr().err
    assert main(["run", "--patient", "ts", "--scenario", "teld-l4l5", "--trainee", "t"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "root_L4_left" in err and "patient ts" in err


def test_run_trains_on_the_stored_ct_and_records_it_by_name_and_digest(stored_ct, tmp_path):
    """A smoke run of the window (offscreen) on the imported CT: one shot is shown and the
    attempt file names the patient and its volume digest, so it replays on the same CT."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        FLUOROSIM_DB_URL=f"sqlite:///{tmp_path / 'records.sqlite'}",
        FLUOROSIM_ATTEMPTS_DIR=str(tmp_path / "attempts"),
        HOME=str(tmp_path),
    )
    args = ["run", "--scenario", "drill-inlet", "--trainee", "t1", "--patient", "ts"]
    result = subprocess.run(
        [sys.executable, "-m", "fluorosim.app.cli", *args, "--quit-after", "0.5"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    assert "shot 1 shown, 512x512" in output, output[-2000:]
    attempt = next((tmp_path / "attempts").glob("*.jsonl"))
    header = json.loads(attempt.read_text().splitlines()[0])
    digest = next(line for line in stored_ct.splitlines() if "ct-sha256:" in line)
    assert header["patient"] == {"ct": "ts"} and header["patient_version"] in digest
