"""The automatic dose-rate control: the metered thickness against analytic slabs, the tube current
it settles at, and the dose of a lateral against an AP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluorosim.models.materials import mu_per_mm
from fluorosim.render import dose
from fluorosim.render.attenuation import effective_energy_kev, hu_to_mu
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.metering import DoseRateControl, metered_water_mm
from tests.render.test_dose import geometry

ENERGY_KEV = effective_energy_kev(75.0)
MU_WATER = float(mu_per_mm("water", ENERGY_KEV))
VOXEL_MM = 2.0


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
def test_a_water_slab_meters_its_own_thickness(thickness_mm):
    """Rays within 10° of the axis cross a slab of thickness L over L/cos θ: the metered water
    thickness is L to within the obliquity (< 1.5 %) and a voxel."""
    volume, affine = slab_volume(thickness_mm)
    metered = metered_water_mm(volume, affine, ap_geometry(), ENERGY_KEV, MU_WATER, 57.5)
    assert thickness_mm - VOXEL_MM <= metered <= thickness_mm * 1.015 + VOXEL_MM


def test_bone_meters_as_more_water_by_its_attenuation_ratio():
    """100 mm of 1000 HU meters as 100 mm × μ(1000 HU)/μ(water)."""
    volume, affine = slab_volume(100.0, hu=1000.0)
    metered = metered_water_mm(volume, affine, ap_geometry(), ENERGY_KEV, MU_WATER, 20.0)
    ratio = float(hu_to_mu(np.array([1000.0]), ENERGY_KEV)[0]) / MU_WATER
    assert metered == pytest.approx(100.0 * ratio, rel=0.03)


def test_the_mean_transmission_not_the_mean_thickness_is_metered():
    """Half the disc behind 100 mm of water, half behind 300 mm: the control sees the mean
    signal, −ln((e^(−100μ) + e^(−300μ)) / 2) / μ ≈ 123 mm — far below the mean thickness 200."""
    volume, affine = slab_volume(300.0)
    x_mm = (np.arange(volume.shape[0]) - (volume.shape[0] - 1) / 2) * VOXEL_MM
    y_mm = (np.arange(volume.shape[1]) - (volume.shape[1] - 1) / 2) * VOXEL_MM
    thin = (x_mm[:, None] < 0) & (np.abs(y_mm[None, :]) >= 50.0)
    volume[thin] = -1000  # x < 0: only the middle 100 mm remain
    metered = metered_water_mm(
        volume, affine, ap_geometry(), ENERGY_KEV, MU_WATER, 57.5, rays_across=14
    )
    expected = -math.log((math.exp(-100 * MU_WATER) + math.exp(-300 * MU_WATER)) / 2) / MU_WATER
    assert metered == pytest.approx(expected, rel=0.05)
    assert metered < 150.0


def test_air_and_a_ray_that_misses_the_volume_meter_zero():
    volume, affine = slab_volume(0.0)
    assert metered_water_mm(volume, affine, ap_geometry(), ENERGY_KEV, MU_WATER, 50.0) == 0.0
    far = affine.copy()
    far[0, 3] += 5000.0  # the volume far to the side of the beam
    assert metered_water_mm(volume, far, ap_geometry(), ENERGY_KEV, MU_WATER, 50.0) == 0.0


def test_the_control_holds_the_signal_between_its_floor_and_the_rate_limit():
    field_mm, kvp, distance = 230.0, 75.0, 700.0
    typical = dose.typical_tube_current_ma(field_mm, kvp)
    at_reference = dose.automatic_tube_current_ma(
        field_mm, kvp, dose.REFERENCE_WATER_MM, MU_WATER, distance
    )
    assert at_reference == pytest.approx(typical)
    thicker = dose.automatic_tube_current_ma(
        field_mm, kvp, dose.REFERENCE_WATER_MM + 20.0, MU_WATER, distance
    )
    assert thicker == pytest.approx(typical * math.exp(20.0 * MU_WATER))  # same signal
    limited = dose.automatic_tube_current_ma(field_mm, kvp, 450.0, MU_WATER, distance)
    rate = dose.continuous_rate_mgy_per_min(kvp, limited, distance)
    assert rate == pytest.approx(dose.AIR_KERMA_RATE_LIMIT_MGY_PER_MIN)
    thin = dose.automatic_tube_current_ma(field_mm, kvp, 20.0, MU_WATER, distance)
    assert thin == pytest.approx(dose.ADRC_MIN_FRACTION * typical)


def test_the_control_meters_each_pose_once():
    volume, affine = slab_volume(220.0)
    control = DoseRateControl(volume, affine, size=2)
    built: list[str] = []

    def pose(name: str):
        def geometry() -> ProjectionGeometry:
            built.append(name)
            return ap_geometry()

        return geometry

    first = control.current_ma("ap", pose("ap"), 75.0, 230.0)
    assert control.current_ma("ap", pose("ap"), 75.0, 230.0) == first
    assert built == ["ap"]
    control.current_ma("b", pose("b"), 75.0, 230.0)
    control.current_ma("c", pose("c"), 75.0, 230.0)  # the oldest ("ap") is forgotten
    control.current_ma("ap", pose("ap"), 75.0, 230.0)
    assert built == ["ap", "b", "c", "ap"]
