"""``fluorosim render`` writes png/npy/json/nii that an independent ray caster can check."""

from __future__ import annotations

import json

import cv2
import nibabel as nib
import numpy as np
import pytest

from fluorosim.app import cli
from fluorosim.app.commands import render as render_command
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
        (["--instrument", "sij_implant:0,0,0:0,1,0:sixty", "--out", "x.png"], "the roll must"),
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


def test_an_instrument_may_carry_its_roll() -> None:
    from fluorosim.app.commands.render import parse_instrument

    assert parse_instrument("sij_implant:0,0,0:0,1,0:60").roll_deg == 60.0
    assert parse_instrument("sij_implant:0,0,0:0,1,0").roll_deg == 0.0


def test_bench_command_prints_json_of_the_chosen_benchmarks(capsys, monkeypatch):
    from fluorosim.render import bench

    monkeypatch.setattr(bench, "BENCHMARKS", [("fake", lambda: {"fake_figure": 3.0})])
    assert cli.main(["bench", "--only", "fake", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["fake_figure"] == 3.0 and printed["cpu_count"] >= 1
    assert cli.main(["bench", "--only", "nonesuch"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_unknown_patient_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLUOROSIM_PATIENTS_DIR", str(tmp_path / "patients"))
    out = str(tmp_path / "x.png")
    assert cli.main(["render", "--patient", "nobody", "--view", "ap", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--patient nobody: no stored patient" in err
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    assert cli.main(["render", "--patient", str(bad), "--view", "ap", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.nii.gz" in err


def test_real_ct_renders_at_every_named_view(tmp_path, monkeypatch, shared_data, capsys):
    """The stored real CT (phantom import) renders each named view: the C-arm sits on that view's
    target for THIS patient, and the picture is a fluoroscopy image (bone darker than the
    background, a circular field), not blank."""
    folder = shared_data / "real-anatomy" / "totalsegmentator-example"
    if not (folder / "example_ct.nii.gz").is_file():
        pytest.skip(f"{folder} not found")
    monkeypatch.setenv("FLUOROSIM_PATIENTS_DIR", str(tmp_path / "patients"))
    ct, masks = str(folder / "example_ct.nii.gz"), str(folder / "masks")
    assert cli.main(["phantom", "import", ct, "--labels", masks, "--name", "ts"]) == 0
    capsys.readouterr()
    from fluorosim.models.io.store import load_patient
    from fluorosim.render.views import view_spec

    patient = load_patient("ts")
    for view, extra in (
        ("ap", []),
        ("lateral", []),
        ("true_lateral_sacrum", []),
        ("inlet", []),
        ("outlet", []),
        ("oblique", ["--side", "left", "--level", "L4_L5"]),
        ("ferguson", ["--level", "L5_S1"]),
        ("contralateral_oblique", ["--side", "left"]),
    ):
        png, geometry = tmp_path / f"{view}.png", tmp_path / f"{view}.json"
        args = ["render", "--patient", "ts", "--view", view, *extra, "--size", "96"]
        assert cli.main([*args, "--out", str(png), "--geometry", str(geometry)]) == 0, view
        image = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        inside = image[40:56, 40:56].astype(float)
        assert image[0, 0] == 0 and inside.std() > 1.0 and 5.0 < inside.mean() < 250.0, view
        record = json.loads(geometry.read_text())
        options = dict(zip(extra[::2], extra[1::2], strict=True))
        spec = view_spec(patient, view, side=options.get("--side"), level=options.get("--level"))
        # the target projects onto the image centre (the view is centred on this patient)
        projected = np.array(record["pixel_from_lps"]) @ np.append(spec.target_lps_mm, 1.0)
        centre = (record["width_px"] - 1) / 2.0
        assert np.allclose(projected[:2] / projected[2], centre, atol=2.0), view
