"""The automatic dose-rate control: the metered water and bone paths against analytic slabs, the
kVp and tube current it settles at, and the signal it holds."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.materials import mu_per_mm
from fluorosim.render import dose
from fluorosim.render.attenuation import bone_fraction, hu_to_mu
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.metering import (
    METERING_ENERGY_KEV,
    DoseRateControl,
    metered_paths,
    metered_technique,
)
from fluorosim.render.spectrum import beam
from tests.render.test_dose import geometry

VOXEL_MM = 2.0
FIELD_MM, DISTANCE_MM = 230.0, 700.0


def ap_geometry() -> ProjectionGeometry:
    """Source 600 mm in front of the origin (−y, anterior), SID 1000; 64² pixels of 3.6 mm."""
    return geometry(size=64, pixel_mm=3.6)


def slab_volume(thickness_mm: float, hu: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A volume 400 mm wide (x, z) and 400 mm deep (y) with a centred slab of ``hu`` across y."""
    shape = (200, 200, 200)
    volume = np.full(shape, -1000, np.int16)
    y_mm = (np.arange(shape[1]) - (shape[1] - 1) / 2) * VOXEL_MM
    volume[:, np.abs(y_mm) < thickness_mm / 2, :] = hu
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    affine[:3, 3] = -(np.array(shape) - 1) / 2 * VOXEL_MM
    return volume, affine


@pytest.mark.parametrize("thickness_mm", [100.0, 220.0, 360.0])
def test_a_water_slab_meters_its_own_thickness_of_water_and_no_bone(thickness_mm):
    """Rays within 10° of the axis cross a slab of thickness L over L/cos θ: each ray's water path
    is L to within the obliquity (< 1.5 %) and a voxel, its bone path 0."""
    volume, affine = slab_volume(thickness_mm)
    water, bone = metered_paths(volume, affine, ap_geometry(), 57.5)
    assert water.size > 100
    assert np.all(thickness_mm - VOXEL_MM <= water)
    assert np.all(water <= thickness_mm * 1.015 + VOXEL_MM)
    assert np.all(bone == 0.0)


@pytest.mark.parametrize("hu", [226.0, 1000.0, 1560.0])
def test_bone_splits_into_cortical_bone_and_water_that_recombine_to_its_attenuation(hu):
    """100 mm of bone of ``hu``: 100 mm × its cortical fraction of cortical bone, and a water
    path such that water · μ_water + bone · μ_cortical = 100 mm · μ(hu) at the split's energy."""
    volume, affine = slab_volume(100.0, hu=hu)
    water, bone = metered_paths(volume, affine, ap_geometry(), 20.0)
    fraction = float(bone_fraction(np.array([hu]))[0])
    assert np.median(bone) == pytest.approx(100.0 * fraction, rel=0.03)
    energy = METERING_ENERGY_KEV
    recombined = water * mu_per_mm("water", energy) + bone * mu_per_mm("cortical_bone", energy)
    expected = 100.0 * float(hu_to_mu(np.array([hu]), energy)[0])
    assert np.median(recombined) == pytest.approx(expected, rel=0.03)


def test_the_mean_transmission_not_the_mean_thickness_is_metered():
    """Half the disc behind 100 mm of water, half behind 300 mm: the control's technique is the
    one for the mean transmission (T(100) + T(300)) / 2 of the beam, not for 200 mm."""
    volume, affine = slab_volume(300.0)
    x_mm = (np.arange(volume.shape[0]) - (volume.shape[0] - 1) / 2) * VOXEL_MM
    y_mm = (np.arange(volume.shape[1]) - (volume.shape[1] - 1) / 2) * VOXEL_MM
    thin = (x_mm[:, None] < 0) & (np.abs(y_mm[None, :]) >= 50.0)
    volume[thin] = -1000  # x < 0: only the middle 100 mm remain
    water, _ = metered_paths(volume, affine, ap_geometry(), 57.5, rays_across=14)
    assert np.count_nonzero(water < 150.0) == np.count_nonzero(water > 250.0)
    technique = metered_technique(volume, affine, ap_geometry(), 75.0, 2 * 57.5 / 0.5)
    halves = beam(technique.kvp).transmission(np.array([100.0, 300.0]))
    expected = dose.automatic_technique(
        2 * 57.5 / 0.5,
        75.0,
        lambda kvp: float(np.mean(beam(kvp).transmission([100.0, 300.0]))),
        dose.reference_distance_mm(ap_geometry()),
    )
    assert technique.kvp == expected.kvp
    assert technique.ma == pytest.approx(expected.ma, rel=0.08)
    assert float(np.mean(halves)) > 5 * float(beam(technique.kvp).transmission(200.0))


def test_air_and_a_ray_that_misses_the_volume_meter_nothing():
    volume, affine = slab_volume(0.0)
    for paths in metered_paths(volume, affine, ap_geometry(), 50.0):
        assert np.all(paths == 0.0)
    far = affine.copy()
    far[0, 3] += 5000.0  # the volume far to the side of the beam
    for paths in metered_paths(volume, far, ap_geometry(), 50.0):
        assert np.all(paths == 0.0)


def _through_water(water_mm: float, bone_mm: float = 0.0):
    return lambda kvp: float(beam(kvp).transmission(water_mm, bone_mm))


def _signal(technique: dose.Technique, water_mm: float, bone_mm: float = 0.0) -> float:
    per_ma = dose.photons_per_ma(
        technique.kvp, _through_water(water_mm, bone_mm)(technique.kvp), DISTANCE_MM
    )
    return technique.ma * per_ma


def test_the_control_holds_the_signal_with_the_current_first_then_the_kvp():
    typical = dose.typical_tube_current_ma(FIELD_MM, 75.0)
    at_reference = dose.automatic_technique(
        FIELD_MM,
        75.0,
        _through_water(dose.REFERENCE_WATER_MM, dose.REFERENCE_BONE_MM),
        DISTANCE_MM,
    )
    assert at_reference == dose.Technique(75.0, pytest.approx(typical))
    reference_signal = _signal(at_reference, dose.REFERENCE_WATER_MM, dose.REFERENCE_BONE_MM)
    # 70 mm more water instead of the bone: more current at the same kVp, the same signal
    thicker = dose.automatic_technique(
        FIELD_MM, 75.0, _through_water(dose.REFERENCE_WATER_MM + 70.0), DISTANCE_MM
    )
    assert thicker.kvp == 75.0
    assert thicker.ma > 2.0 * typical
    assert _signal(thicker, dose.REFERENCE_WATER_MM + 70.0) == pytest.approx(reference_signal)
    # 350 mm: the current reaches the 88 mGy/min limit, so the kVp rises until the limit's
    # current gives the signal — and not a kilovolt further
    lateral = dose.automatic_technique(FIELD_MM, 75.0, _through_water(350.0), DISTANCE_MM)
    assert 75.0 < lateral.kvp < dose.ADRC_MAX_KVP
    rate = dose.continuous_rate_mgy_per_min(lateral.kvp, lateral.ma, DISTANCE_MM)
    assert rate <= dose.AIR_KERMA_RATE_LIMIT_MGY_PER_MIN * (1 + 1e-9)
    assert _signal(lateral, 350.0) == pytest.approx(reference_signal)
    one_kv_less = dose.Technique(
        lateral.kvp - 1.0,
        dose.AIR_KERMA_RATE_LIMIT_MGY_PER_MIN
        / dose.continuous_rate_mgy_per_min(lateral.kvp - 1.0, 1.0, DISTANCE_MM),
    )
    assert _signal(one_kv_less, 350.0) < reference_signal
    # beyond what even the highest kVp at the limit can give: the limit at ADRC_MAX_KVP
    obese = dose.automatic_technique(FIELD_MM, 75.0, _through_water(600.0), DISTANCE_MM)
    assert obese.kvp == dose.ADRC_MAX_KVP
    rate = dose.continuous_rate_mgy_per_min(obese.kvp, obese.ma, DISTANCE_MM)
    assert rate == pytest.approx(dose.AIR_KERMA_RATE_LIMIT_MGY_PER_MIN)
    # a thin limb: the floor, at the session's kVp
    thin = dose.automatic_technique(FIELD_MM, 75.0, _through_water(20.0), DISTANCE_MM)
    assert thin == dose.Technique(75.0, pytest.approx(dose.ADRC_MIN_FRACTION * typical))
    # a higher starting kVp is never lowered
    assert dose.automatic_technique(FIELD_MM, 90.0, _through_water(20.0), DISTANCE_MM).kvp == 90.0


def test_the_control_meters_each_pose_once():
    volume, affine = slab_volume(220.0)
    control = DoseRateControl(volume, affine, size=2)
    built: list[str] = []

    def pose(name: str):
        def geometry() -> ProjectionGeometry:
            built.append(name)
            return ap_geometry()

        return geometry

    first = control.technique("ap", pose("ap"), 75.0, 230.0)
    assert control.technique("ap", pose("ap"), 75.0, 230.0) == first
    assert built == ["ap"]
    control.technique("b", pose("b"), 75.0, 230.0)
    control.technique("c", pose("c"), 75.0, 230.0)  # the oldest ("ap") is forgotten
    control.technique("ap", pose("ap"), 75.0, 230.0)
    assert built == ["ap", "b", "c", "ap"]


def test_float_ct_numbers_meter_as_their_integer_twins():
    """A floating-point CT (numpy sampling) meters the same paths as its int16 twin (numba)."""
    volume, affine = slab_volume(150.0, hu=400.0)
    volume[:, :, 100:] = 0  # half the disc behind soft tissue only
    integer = metered_paths(volume, affine, ap_geometry(), 40.0)
    floating = metered_paths(volume.astype(np.float32), affine, ap_geometry(), 40.0)
    for ours, twin in zip(integer, floating, strict=True):
        np.testing.assert_allclose(ours, twin, rtol=1e-5, atol=1e-6)
    assert integer[1].max() > 10.0 and integer[1].min() == 0.0
