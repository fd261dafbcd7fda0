"""FluoroRenderer: cached anatomy, instruments added as line integrals, image chain, dose, monitor."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.instruments import InstrumentPose
from fluorosim.render.carm import CArmJoints, MonitorOrientation
from fluorosim.render.drr_exact import line_integrals_exact
from fluorosim.render.renderer import FluoroFrame, FluoroRenderer, plain_display
from fluorosim.render.views import ideal_joints
from tests.render.synthetic_patient import (
    default_patient,
    make_synthetic_patient,
    phantom_available,
)


@pytest.fixture(scope="module")
def patient():
    return make_synthetic_patient()


@pytest.fixture(scope="module")
def renderer(patient):
    return FluoroRenderer(patient, model="ii9", display_px=192)


def test_anatomy_is_cached_per_pose_and_matches_the_exact_reference(renderer, patient):
    joints = ideal_joints(patient, "lateral")
    geometry, li = renderer.anatomy_line_integrals(joints)
    again_geometry, again = renderer.anatomy_line_integrals(CArmJoints(**joints.as_dict()))
    assert again is li and again_geometry is geometry
    assert li.shape == (192, 192) and li.dtype == np.float32 and not li.flags.writeable
    other = renderer.anatomy_line_integrals(joints.moved(orbital_deg=80.0))[1]
    assert other is not li
    exact = line_integrals_exact(renderer.volume, geometry)
    assert np.corrcoef(li.ravel(), exact.ravel())[0, 1] > 0.99
    significant = exact > 0.1 * exact.max()
    assert np.mean(np.abs(li - exact)[significant] / exact[significant]) < 0.02


def test_anatomy_resolution_follows_the_volume(renderer):
    # 2 mm voxels × 1.67 magnification → 3.3 mm on the 230 mm field → 69 px, × 1.5 → 112
    assert renderer.anatomy_px == 112
    fine = FluoroRenderer(renderer.patient, display_px=512, volume=renderer.volume, anatomy_px=None)
    assert fine.supported_px(oversample=1.0) == 80


def test_instrument_adds_its_line_integral_where_it_projects(renderer, patient):
    joints = ideal_joints(patient, "ap", level="L4")
    tip = patient.landmark("L4_pedicle_center_left") + np.array([0.0, 10.0, 0.0])
    pin = InstrumentPose("guide_pin", tip, np.array([0.0, 1.0, 0.0]) + [0.3, 0.0, 0.2])
    frame = renderer.render_frame(joints, [pin], rng=np.random.default_rng(1))
    assert isinstance(frame, FluoroFrame)
    assert frame.image.shape == (192, 192) and frame.image.dtype == np.uint8
    metal = frame.line_integrals - frame.anatomy_line_integrals
    col, row = np.rint(frame.geometry.project(tip)).astype(int)
    assert metal[row, col] > 1.0  # steel: μ ≈ 1.65 mm⁻¹ at 50 keV over a 3.2 mm pin
    assert metal.min() >= 0.0
    assert np.count_nonzero(metal > 0.01) < 0.2 * metal.size
    without = renderer.render_frame(joints, [], rng=np.random.default_rng(1))
    assert np.array_equal(without.line_integrals, without.anatomy_line_integrals)
    # dense metal is dark on the monitor
    assert int(frame.image[row, col]) < int(without.image[row, col])


def test_monitor_orientation_flips_the_shown_image(patient):
    joints = ideal_joints(patient, "ap")
    plain = FluoroRenderer(patient, display_px=96)
    flipped = FluoroRenderer(
        patient,
        display_px=96,
        volume=plain.volume,
        orientation=MonitorOrientation(flip_horizontal=True),
    )
    a = plain.render_frame(joints, rng=np.random.default_rng(3))
    b = flipped.render_frame(joints, rng=np.random.default_rng(3))
    assert np.array_equal(b.image, a.image[:, ::-1])
    assert np.array_equal(b.line_integrals, a.line_integrals)  # raw data keep detector order


def test_preview_is_a_display_sized_image(renderer, patient):
    image = renderer.preview(ideal_joints(patient, "outlet"))
    assert image.shape == (192, 192) and image.dtype == np.uint8
    assert image.max() > image.min()
    assert image[0, 0] == 0  # outside the intensifier's round field


def test_exposure_gives_a_dose_record(renderer, patient):
    from fluorosim.render.exposure import Exposure

    frame = renderer.render_frame(
        ideal_joints(patient, "ap"),
        exposure=Exposure(kvp=75.0, ma=2.0),
        rng=np.random.default_rng(0),
    )
    assert frame.dose is not None
    assert frame.dose.air_kerma_mgy > 0 and frame.dose.kap_gycm2 > 0
    # without an exposure: continuous fluoroscopy at the renderer's kVp, still dosed
    default = renderer.render_frame(ideal_joints(patient, "ap"), rng=np.random.default_rng(0))
    assert default.dose.kvp == renderer.kvp and default.dose.mode == "continuous"
    with pytest.raises(ValueError, match="kVp 200"):
        FluoroRenderer(patient, kvp=200.0, volume=renderer.volume)


def test_plain_display_maps_dense_to_dark():
    li = np.tile(np.linspace(0.0, 5.0, 50, dtype=np.float32), (10, 1))
    image = plain_display(li)
    assert image[0, 0] > image[0, -1]
    assert plain_display(li, invert=True)[0, 0] < plain_display(li, invert=True)[0, -1]


def test_benchmark_registry_merges_figures_and_reports_failures(patient):
    from fluorosim.render import bench

    saved = list(bench.BENCHMARKS)
    try:
        bench.register_benchmark("fake", lambda: {"fake_ms": 1.5})
        bench.register_benchmark("broken", lambda: 1 / 0)
        bench.register_benchmark("fake", lambda: {"fake_ms": 2.5})  # replaces, keeps one entry
        results = bench.run_benchmarks(["fake", "broken"])
        assert results["fake_ms"] == 2.5 and "renderer" not in results
        assert results["broken_error"].startswith("ZeroDivisionError")
        assert [name for name, _ in bench.BENCHMARKS].count("fake") == 1
    finally:
        bench.BENCHMARKS[:] = saved
    # the renderer benchmark itself, tiny: every contracted key is present and sane
    figures = bench.renderer_benchmark(patient=patient, display_px=64, poses=2)
    for key in ("new_pose_ms", "instrument_frame_ms", "preview_fps", "exact_ms", "ncc_vs_exact"):
        assert figures[key] > 0
    assert figures["ncc_vs_exact"] > 0.99
    assert figures["diffdrr_drr"] in ("installed", "not installed")


def test_the_frame_is_the_exposure_beams_transmission_of_the_water_and_bone_paths(
    renderer, patient
):
    """The two paths recombine to the single-energy ∫μ dl at the volume's energy, the bone path
    matches the exact integral of the bone-fraction volume, and the frame's anatomy is the
    exposure's beam's −ln T of those paths."""
    from fluorosim.models.materials import mu_per_mm
    from fluorosim.render.attenuation import build_bone_volume
    from fluorosim.render.spectrum import beam

    joints = ideal_joints(patient, "lateral")
    geometry, li = renderer.anatomy_line_integrals(joints)
    _, water, bone = renderer.anatomy_paths(joints)
    energy = renderer.volume.energy_kev
    recombined = water * mu_per_mm("water", energy) + bone * mu_per_mm("cortical_bone", energy)
    crossed = water > 1.0  # where no interpolation overshoot clipped the water path
    np.testing.assert_allclose(recombined[crossed], li[crossed], rtol=1e-4, atol=1e-5)
    exact_bone = line_integrals_exact(build_bone_volume(patient), geometry, model="trilinear")
    assert bone.max() > 20.0  # the lateral crosses both ilia and the spine
    significant = exact_bone > 0.1 * exact_bone.max()
    assert np.mean(np.abs(bone - exact_bone)[significant] / exact_bone[significant]) < 0.02

    exposure = renderer.default_exposure(joints)
    frame = renderer.render_frame(joints, exposure=exposure, rng=np.random.default_rng(0))
    expected = beam(exposure.kvp).transmission_line_integrals(water, bone)
    np.testing.assert_allclose(frame.anatomy_line_integrals, expected, rtol=1e-6)
    assert frame.kvp == exposure.kvp and frame.dose is not None and frame.dose.kvp == exposure.kvp


@pytest.mark.skipif(not phantom_available(), reason="needs the patient generator")
def test_a_lateral_through_the_pelvis_raises_the_kvp_and_an_ap_does_not():
    """The default patient's lateral is too thick for the current alone at the rate limit: the
    dose-rate control raises the kVp (and the frame and its dose say so); the AP stays at the
    renderer's kVp with a current under the limit."""
    from fluorosim.render import dose

    patient = default_patient()
    renderer = FluoroRenderer(patient, display_px=128)
    ap = renderer.default_exposure(ideal_joints(patient, "ap"))
    lateral_joints = ideal_joints(patient, "true_lateral_sacrum")
    lateral = renderer.default_exposure(lateral_joints)
    assert ap.kvp == renderer.kvp == 75.0
    distance = dose.reference_distance_mm(renderer.geometry(lateral_joints))
    assert dose.continuous_rate_mgy_per_min(ap.kvp, ap.ma, distance) < 88.0
    assert lateral.kvp >= 95.0
    frame = renderer.render_frame(lateral_joints, rng=np.random.default_rng(0))
    assert frame.kvp == lateral.kvp and frame.dose is not None and frame.dose.kvp == lateral.kvp
