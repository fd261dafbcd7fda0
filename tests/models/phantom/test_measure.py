"""The label measurements on a vertebra whose right answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.patient import Patient
from fluorosim.models.phantom import measure

VOXEL_MM = 0.5
NAMES = ("L4_body", "L4_posterior_elements", "L4_pedicle_left", "L4_pedicle_right")


def block_vertebra(vein_channel: bool, right_pedicle: bool = True) -> Patient:
    """A block vertebra in LPS: body y −30…0, canal 0…15 (20 mm between the pedicles),
    posterior elements 15…25, pedicles at |x| 10…15 for y 0…15; all 24 mm tall around z = 0.
    With ``vein_channel`` the body holds a 1 mm non-bone slit across the midline at y −5 (a
    basivertebral vein channel, or a label edge at one grid phase); without ``right_pedicle`` the
    ring around the canal is open on the right."""
    table = {name: value for value, name in enumerate(NAMES, start=1)}
    shape = (80, 120, 60)
    origin = np.array([-20.0, -40.0, -15.0])
    x, y, z = (origin[a] + VOXEL_MM * np.arange(n) for a, n in enumerate(shape))
    xx, yy, zz = np.meshgrid(x, y, z, indexing="ij")
    tall = np.abs(zz) <= 12.0
    labels = np.zeros(shape, dtype=np.uint8)
    labels[tall & (np.abs(xx) <= 18.0) & (yy >= -30.0) & (yy < 0.0)] = table["L4_body"]
    if vein_channel:
        labels[(np.abs(xx) <= 3.0) & (yy >= -5.5) & (yy < -4.5)] = 0
    labels[tall & (np.abs(xx) <= 18.0) & (yy >= 15.0) & (yy < 25.0)] = table[
        "L4_posterior_elements"
    ]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        if side == "right" and not right_pedicle:
            continue
        pedicle = (sign * xx >= 10.0) & (sign * xx <= 15.0) & (yy >= 0.0) & (yy < 15.0)
        labels[tall & pedicle] = table[f"L4_pedicle_{side}"]
    lps_from_voxel = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    lps_from_voxel[:3, 3] = origin
    landmarks = {
        "L4_body_center": np.array([0.0, -15.0, 0.0]),
        "L4_superior_endplate_center": np.array([0.0, -15.0, 12.0]),
        "L4_inferior_endplate_center": np.array([0.0, -15.0, -12.0]),
        "L4_pedicle_center_left": np.array([12.5, 7.5, 0.0]),
        "L4_pedicle_center_right": np.array([-12.5, 7.5, 0.0]),
    }
    hu = np.where(labels > 0, 700, 40).astype(np.int16)
    return Patient(hu, labels, lps_from_voxel, table, landmarks)


@pytest.mark.parametrize("vein_channel", [False, True])
def test_the_canal_is_the_gap_behind_the_body_not_a_slit_inside_it(vein_channel):
    """The canal's depth is the 15 mm between the body's back and the posterior elements and its
    width the 20 mm between the pedicles, also when a 1 mm slit crosses the body on the way (the
    first gap along the walk read 1 mm: how the L4 canal of one patient read 0.25 mm instead of
    15 mm when its grid moved half a voxel)."""
    canal = measure.canal_dimensions(block_vertebra(vein_channel), "L4")
    assert canal.depth_mm == pytest.approx(15.0, abs=VOXEL_MM)
    assert canal.width_mm == pytest.approx(20.0, abs=VOXEL_MM + measure.CANAL_SECTION_STEP_MM)


@pytest.mark.parametrize("vein_channel", [False, True])
def test_an_open_ring_has_no_width_but_keeps_its_depth(vein_channel):
    """Where no axial section closes the canal (a mask with one pedicle missing), the width is
    not guessed (0.0) and the depth is the midsagittal gap between body and posterior elements."""
    canal = measure.canal_dimensions(block_vertebra(vein_channel, right_pedicle=False), "L4")
    assert canal.width_mm == 0.0
    assert canal.depth_mm == pytest.approx(15.0, abs=VOXEL_MM)


def test_the_longest_closed_gap_ignores_open_ends():
    inside = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    assert measure.longest_closed_gap(inside) == 3
    assert measure.longest_closed_gap(np.ones(5, dtype=bool)) == 0
    assert measure.longest_closed_gap(np.array([1, 0, 0], dtype=bool)) == 0
