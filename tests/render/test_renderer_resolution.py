"""Per-pose anatomy resolution, bicubic upsampling and the windowed-then-resized preview."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fluorosim.render.attenuation import water_equivalent_mm
from fluorosim.render.drr_exact import line_integrals_exact
from fluorosim.render.drr_fast import upsample
from fluorosim.render.renderer import FluoroRenderer, field_mask, plain_display
from fluorosim.render.spectrum import beam
from fluorosim.render.views import ideal_joints
from tests.render.synthetic_patient import make_synthetic_patient


@pytest.fixture(scope="module")
def patient():
    return make_synthetic_patient()


@pytest.fixture(scope="module")
def renderer(patient):
    return FluoroRenderer(patient, model="ii9", display_px=192)


def test_oblique_poses_render_at_the_oblique_resolution(renderer, patient):
    # 2 mm voxels: 69 px per field; × 1.5 → 112 along an axis, × 1.25 → 96 when oblique
    assert (renderer.anatomy_px, renderer.oblique_anatomy_px) == (112, 96)
    ap = ideal_joints(patient, "ap")
    assert renderer.anatomy_px_for(renderer.geometry(ap)) == 112
    assert renderer.anatomy_px_for(renderer.geometry(ap.moved(orbital_deg=15.0))) == 112
    assert renderer.anatomy_px_for(renderer.geometry(ap.moved(orbital_deg=35.0))) == 96
    assert renderer.anatomy_px_for(renderer.geometry(ap.moved(angular_deg=-30.0))) == 96
    explicit = FluoroRenderer(patient, display_px=192, volume=renderer.volume, anatomy_px=64)
    assert explicit.anatomy_px_for(explicit.geometry(ap.moved(orbital_deg=35.0))) == 64


def test_oblique_anatomy_still_matches_the_exact_reference(renderer, patient):
    joints = ideal_joints(patient, "ap").moved(orbital_deg=30.0, angular_deg=-20.0)
    geometry, li = renderer.anatomy_line_integrals(joints)
    assert li.shape == (192, 192)
    exact = line_integrals_exact(renderer.volume, geometry, model="trilinear")
    assert np.corrcoef(li.ravel(), exact.ravel())[0, 1] > 0.998
    significant = exact > 0.1 * exact.max()
    assert np.mean(np.abs(li - exact)[significant] / exact[significant]) < 0.01


def test_bicubic_upsampling_keeps_pixel_centres_and_never_goes_negative():
    # a linear ramp comes back as the ramp on the fine grid, up to OpenCV's a = −0.75 ripple
    # (≤ 5 % of a coarse step, zero on average): the coarse pixel centres sit where
    # geometry.resized puts them (a half fine pixel shift would bias the mean by 1/128)
    coarse_px, fine_px = 16, 64
    ramp = np.tile((np.arange(coarse_px) + 0.5) / coarse_px, (coarse_px, 1)).astype(np.float32)
    fine = upsample(ramp, fine_px, fine_px)
    expected = np.tile((np.arange(fine_px) + 0.5) / fine_px, (fine_px, 1))
    error = (fine - expected)[8:-8, 8:-8]
    assert np.abs(error).max() < 0.06 / coarse_px
    assert abs(error.mean()) < 1e-3
    step = np.zeros((16, 16), np.float32)
    step[:, 8:] = 5.0  # a hard edge: cubic overshoots below zero unless clipped
    assert upsample(step, 64, 64).min() == 0.0


def test_preview_windows_at_its_own_resolution_then_resizes(patient):
    renderer = FluoroRenderer(patient, model="ii9", display_px=192, preview_px=64)
    joints = ideal_joints(patient, "lateral")
    image = renderer.preview(joints)
    assert image.shape == (192, 192) and image.dtype == np.uint8 and image[0, 0] == 0
    geometry, li, _ = renderer.preview_line_integrals(joints)
    assert (geometry.width_px, geometry.height_px) == (64, 64)
    small = plain_display(li, field_mask(renderer.model, 64))
    assert small.max() > small.min()
    # the same picture as the 64² window, shown at 192² (inside the round field)
    reduced = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA).astype(float)
    expected = renderer.orientation.apply(small).astype(float)
    inside = renderer.orientation.apply(field_mask(renderer.model, 64))
    inside &= cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.abs(reduced - expected)[inside].mean() < 6


def test_preview_goes_through_the_full_frames_beam(patient):
    # the preview's −ln T is the beam's for the water and bone paths of the coarse volumes, at the
    # kVp the dose-rate control meters for the pose (the full frame's technique)
    renderer = FluoroRenderer(patient, model="ii9", display_px=192, preview_px=64)
    joints = ideal_joints(patient, "ap")
    geometry, li, kvp = renderer.preview_line_integrals(joints)
    assert kvp == renderer.default_exposure(joints).kvp
    mu, bone = renderer.preview_drr.line_integrals(geometry)
    water = water_equivalent_mm(mu, bone, renderer.preview_drr.primary.volume.energy_kev)
    np.testing.assert_allclose(li, beam(kvp).transmission_line_integrals(water, bone), rtol=1e-6)


def test_preview_bone_contrast_falls_as_the_kvp_rises(patient):
    # bone's attenuation falls faster with energy than water's: at 120 kV the bony pixels stand
    # out less from soft tissue than at 70 kV, in the preview as in a full frame
    joints = ideal_joints(patient, "ap")
    low = FluoroRenderer(patient, model="ii9", display_px=192, preview_px=64, kvp=70.0)
    high = FluoroRenderer(
        patient, model="ii9", display_px=192, preview_px=64, kvp=120.0, volume=low.volume
    )
    geometry, low_li, low_kvp = low.preview_line_integrals(joints)
    _, high_li, high_kvp = high.preview_line_integrals(joints)
    assert low_kvp < high_kvp
    _, bone = low.preview_drr.line_integrals(geometry)
    inside = field_mask(low.model, 64)
    bony = inside & (bone > 0.5 * bone[inside].max())
    soft = inside & (bone < 0.5) & (low_li > 0.5 * low_li[inside].max())
    assert bony.sum() > 20 and soft.sum() > 20

    def contrast(li):  # how much more the bony pixels attenuate than the soft ones
        return li[bony].mean() / li[soft].mean() - 1.0

    assert 0 < contrast(high_li) < 0.85 * contrast(low_li)
    assert not np.array_equal(low.preview(joints), high.preview(joints))
