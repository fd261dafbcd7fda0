"""``fluorosim render`` writes png/npy/json/nii that an independent ray caster can check."""

from __future__ import annotations

import json

import cv2
import nibabel as nib
import numpy as np
import pytest

from app import cli
from app.commands import render as render_command
from tests.render.synthetic_patient import make_synthetic_patient


@pytest.fixture
def patient(monkeypatch):
    synthetic = make_synthetic_patient()
    monkeypatch.setattr(render_command, "load_patient", lambda seed: synthetic)
    return synthetic


def independent_line_integral(mu_path, source_lps, end_lps, step_mm=0.2):
    """Nearest-voxel ray march through the NIfTI μ volume (RAS affine), written from scratch."""
    image = nib.load(str(mu_path))
    mu = np.asarray(image.dataobj, dtype=np.float64)
    voxel_from_ras = np.linalg.inv(image.affine)
    length = np.linalg.norm(end_lps - source_lps)
    t = (np.arange(int(length / step_mm)) + 0.5) * step_mm / length
    points_lps = source_lps + t[:, None] * (end_lps - source_lps)
    points_ras = points_lps * np.array([-1.0, -1.0, 1.0])
    ijk = np.rint(points_ras @ voxel_from_ras[:3, :3].T + voxel_from_ras[:3, 3]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(mu.shape)), axis=1)
    return float(mu[tuple(ijk[inside].T)].sum() * step_mm)


def test_render_writes_image_line_integrals_geometry_and_mu(tmp_path, patient, capsys):
    paths = {name: tmp_path / name for name in ("lat.png", "li.npy", "geom.json", "mu.nii.gz")}
    code = cli.main(
        [
            "render",
            "--view",
            "lateral",
            "--size",
            "96",
            "--exact",
            "--out",
            str(paths["lat.png"]),
            "--line-integrals",
            str(paths["li.npy"]),
            "--geometry",
            str(paths["geom.json"]),
            "--mu",
            str(paths["mu.nii.gz"]),
        ]
    )
    assert code == 0, capsys.readouterr().err
    image = cv2.imread(str(paths["lat.png"]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (96, 96) and image.dtype == np.uint8
    li = np.load(paths["li.npy"])
    assert li.shape == (96, 96) and li.dtype == np.float32
    record = json.loads(paths["geom.json"].read_text())
    pixel_from_lps = np.array(record["pixel_from_lps"])
    source = np.array(record["source_lps_mm"])
    assert record["joints"]["orbital_deg"] == pytest.approx(90.0)
    # the view's target landmark re-projects to the image centre through the JSON matrix
    target = patient.landmark("disc_L5_S1_center")
    homogeneous = pixel_from_lps @ np.append(target, 1.0)
    assert np.allclose(homogeneous[:2] / homogeneous[2], [47.5, 47.5], atol=1e-6)
    # and a pedicle lands where the JSON's detector description puts it
    pedicle = patient.landmark("L5_pedicle_center_left")
    homogeneous = pixel_from_lps @ np.append(pedicle, 1.0)
    col, row = homogeneous[:2] / homogeneous[2]
    origin = np.array(record["detector_origin_lps_mm"])
    u, v = np.array(record["detector_u_lps"]), np.array(record["detector_v_lps"])
    pixel_point = origin + (col * u + row * v) * record["pixel_mm"]
    ray = pixel_point - source
    assert (
        np.linalg.norm(np.cross(ray, pedicle - source)) / np.linalg.norm(ray) < 1e-3
    )  # mm off the ray
    # an independent ray caster through the written μ volume reproduces the written integrals
    for r, c in [(48, 48), (30, 60), (70, 40)]:
        end = origin + (c * u + r * v) * record["pixel_mm"]
        expected = independent_line_integral(paths["mu.nii.gz"], source, end)
        assert li[r, c] == pytest.approx(expected, rel=0.02, abs=0.02)
    assert "lateral →" in capsys.readouterr().out


def test_render_with_an_instrument_and_joint_values(tmp_path, patient):
    tip = patient.landmark("L4_pedicle_center_right") + [0.0, 5.0, 0.0]
    spec = f"guide_pin:{tip[0]},{tip[1]},{tip[2]}:0.2,1,0"
    common = ["render", "--carm", "orbital=0,tilt=5,table_long=-60", "--size", "64"]
    assert cli.main([*common, "--line-integrals", str(tmp_path / "a.npy")]) == 0
    assert (
        cli.main([*common, "--instrument", spec, "--line-integrals", str(tmp_path / "b.npy")]) == 0
    )
    difference = np.load(tmp_path / "b.npy") - np.load(tmp_path / "a.npy")
    assert difference.max() > 1.0 and difference.min() >= -1e-6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--carm", "orbit=3", "--out", "x.png"], "cannot read 'orbit=3'"),
        (["--carm", "orbital=200", "--out", "x.png"], "orbital_deg=200 outside its travel"),
        (["--view", "oblique", "--out", "x.png"], "needs --side"),
        (["--view", "ap", "--level", "L9", "--out", "x.png"], "unknown level 'L9'"),
        (["--instrument", "spoon:0,0,0:0,1,0", "--out", "x.png"], "unknown instrument 'spoon'"),
        (["--instrument", "guide_pin:0,0:0,1,0", "--out", "x.png"], "three numbers"),
        (["--view", "ap"], "nothing to write"),
        (["--view", "ap", "--kvp", "200", "--out", "x.png"], "kVp 200"),
        (["--view", "ap", "--model", "ii7", "--out", "x.png"], "unknown C-arm model 'ii7'"),
    ],
)
def test_bad_input_gives_a_clear_message_not_a_traceback(
    tmp_path, patient, capsys, arguments, message
):
    arguments = [a if a != "x.png" else str(tmp_path / "x.png") for a in arguments]
    assert cli.main(["render", *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_command_prints_json_of_the_chosen_benchmarks(capsys, monkeypatch):
    from render import bench

    monkeypatch.setattr(bench, "BENCHMARKS", [("fake", lambda: {"fake_ms": 3.0})])
    assert cli.main(["bench", "--only", "fake", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["fake_ms"] == 3.0 and printed["cpu_count"] >= 1
    assert cli.main(["bench", "--only", "nonesuch"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
