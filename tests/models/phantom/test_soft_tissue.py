"""The generated body outline and soft tissue, measured from the labels."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.phantom.parts import Grid, PatientParameters
from fluorosim.models.phantom.pelvis import ilia_part
from fluorosim.models.phantom.sacrum import sacral_shape
from fluorosim.models.phantom.soft_tissue import (
    BOWEL_GAS_HU,
    body_box_mm,
    fat_thickness_mm,
    soft_tissue_part,
)
from tests.models.phantom.test_sacrum import Painted
from tests.models.phantom.test_vessels import spine_anchors

VOXEL_MM = 2.0
_CACHE: dict[tuple, Painted] = {}


def build(**kwargs) -> Painted:
    key = tuple(sorted(kwargs.items()))
    if key not in _CACHE:
        params = PatientParameters(skeleton="primitive", **kwargs)
        anchors = spine_anchors()
        low, high = body_box_mm(params, anchors)
        grid = Grid.covering(low - 6.0, high + 6.0, VOXEL_MM)
        _CACHE[key] = Painted(grid, soft_tissue_part(grid, params, anchors))
    return _CACHE[key]


def run_along(painted: Painted, start, direction, length_mm: float = 150.0) -> list[str]:
    """Label names met along a ray, one per 0.5 mm (background excluded)."""
    names = {v: n for n, v in painted.values.items()}
    steps = np.arange(0.0, length_mm, 0.5)[:, None]
    values = painted.label_at(np.asarray(start) + steps * np.asarray(direction))
    return [names.get(int(v), "background") for v in values]


def thickness_mm(labels: list[str], name: str) -> float:
    """Length of the first run of ``name`` along a ray (0.5 mm steps)."""
    inside = [i for i, n in enumerate(labels) if n == name]
    if not inside:
        return 0.0
    end = inside[0]
    while end + 1 < len(labels) and labels[end + 1] == name:
        end += 1
    return (end - inside[0] + 1) * 0.5


def posterior_fat_mm(painted: Painted) -> float:
    """Subcutaneous fat over the L4 spinous level, midline, from the back skin inward."""
    l4 = spine_anchors().extra["L4_body_center"]
    start = np.array([0.0, painted.grid.y_mm[-1], l4[2]])
    return thickness_mm(run_along(painted, start, [0.0, -1.0, 0.0]), "fat")


def flank_fat_mm(painted: Painted) -> float:
    l4 = spine_anchors().extra["L4_body_center"]
    start = np.array([painted.grid.x_mm[-1], l4[1] - 20.0, l4[2]])
    return thickness_mm(run_along(painted, start, [-1.0, 0.0, 0.0]), "fat")


def test_fat_thickness_grows_with_bmi():
    bmis = (18.0, 25.0, 32.0, 40.0)
    posterior = [posterior_fat_mm(build(bmi=b)) for b in bmis]
    flank = [flank_fat_mm(build(bmi=b)) for b in bmis]
    assert all(b > a for a, b in zip(posterior, posterior[1:], strict=False)), posterior
    assert all(b > a for a, b in zip(flank, flank[1:], strict=False)), flank
    # Measured matches the rule within two voxels (plus the 2 mm skin it sits under).
    for bmi, measured in zip(bmis, posterior, strict=True):
        assert measured == pytest.approx(fat_thickness_mm(bmi), abs=2 * VOXEL_MM + 1.0)


def test_layers_from_the_back_skin_inward():
    labels = run_along(build(), [0.0, build().grid.y_mm[-1], 60.0], [0.0, -1.0, 0.0])
    met = [n for i, n in enumerate(labels) if i == 0 or labels[i - 1] != n]
    met = [n for n in met if n != "background"]
    assert met[:3] == ["skin", "fat", "muscle"], met
    skin = thickness_mm(labels, "skin")
    assert 1.0 <= skin <= 2.0 + VOXEL_MM


def test_outline_encloses_spine_sacrum_and_iliac_crests_with_margin():
    params = PatientParameters(skeleton="primitive")
    anchors = spine_anchors()
    painted = build()
    grid = painted.grid
    pelvis = ilia_part(grid, params, anchors).landmarks
    shape = sacral_shape(params)
    from fluorosim.models.phantom.sacrum import PelvicFrame

    frame = PelvicFrame.from_anchors(anchors)
    tip = frame.lps_from_ref(shape.point_ref(0.0, 0.0, shape.length_mm + shape.coccyx_length_mm))
    l1 = anchors.extra["L1_body_center"]
    probes = [l1 + [0, 0, 20.0], tip + [0, 0, -20.0], tip + [0, 20.0, 0]]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        crest = pelvis[f"iliac_crest_top_{side}"]
        asis = pelvis[f"asis_{side}"]
        probes += [
            crest + [sign * 20.0, 0, 0],
            crest + [0, 0, 20.0],
            asis + [sign * 20.0, -20.0, 0],
        ]
    labels = painted.label_at(np.array(probes))
    assert np.all(labels != 0), labels


@pytest.mark.parametrize(
    ("kwargs", "bigger"), [({"bmi": 35.0}, True), ({"body_scale": 1.15}, True)]
)
def test_body_size_follows_bmi_and_body_scale(kwargs, bigger):
    base = build()
    other = build(**kwargs)

    def extent(painted):
        pts = painted.points("skin")
        return np.ptp(pts[:, 0]), np.ptp(pts[:, 1])

    (w0, d0), (w1, d1) = extent(base), extent(other)
    assert (w1 > w0 + 10.0) == bigger and (d1 > d0 + 5.0) == bigger


def bowel_beside_psoas(painted, bowel: np.ndarray, l4: np.ndarray, side: str) -> np.ndarray:
    """Bowel points at the level of L4 (± 3 mm) within 40 mm lateral of the psoas's lateral edge
    (from 10 mm inside it) and anterior to the vertebral body centre ``l4``."""
    sign = 1.0 if side == "left" else -1.0
    psoas = painted.points(f"psoas_{side}")
    level = psoas[np.abs(psoas[:, 2] - l4[2]) < 3.0]
    assert len(level), f"no {side} psoas at L4"
    lateral_edge = np.max(sign * level[:, 0])
    return bowel[
        (np.abs(bowel[:, 2] - l4[2]) < 3.0)
        & (sign * bowel[:, 0] > lateral_edge - 10.0)
        & (sign * bowel[:, 0] < lateral_edge + 40.0)
        & (bowel[:, 1] < l4[1])
    ]


def test_bowel_lies_anterolateral_to_the_psoas_with_gas_pockets():
    painted = build()
    l4 = spine_anchors().extra["L4_body_center"]
    bowel = painted.points("bowel")
    for side in ("left", "right"):
        assert len(bowel_beside_psoas(painted, bowel, l4, side)) > 20, side
    hu = painted.hu_at(bowel)
    gas_fraction = float(np.mean(hu == BOWEL_GAS_HU))
    assert 0.03 < gas_fraction < 0.30, gas_fraction


def test_psoas_widens_caudally_and_paraspinals_lie_behind_the_spine():
    painted = build()
    anchors = spine_anchors()
    for side in ("left", "right"):
        psoas = painted.points(f"psoas_{side}")
        areas = []
        for level in ("L1", "L4"):
            z = anchors.extra[f"{level}_body_center"][2]
            areas.append(np.sum(np.abs(psoas[:, 2] - z) < VOXEL_MM / 2) * VOXEL_MM**2)
        assert areas[1] > 2.5 * areas[0], areas
        para = painted.points(f"paraspinal_{side}")
        l3 = anchors.extra["L3_body_center"]
        at_l3 = para[np.abs(para[:, 2] - l3[2]) < VOXEL_MM / 2]
        assert at_l3[:, 1].min() > l3[1] + 20.0  # behind the body
        assert 400.0 < len(at_l3) * VOXEL_MM**2 < 3500.0  # mm², approx. erector + multifidus


def test_same_seed_same_soft_tissue_other_seed_differs():
    anchors = spine_anchors()
    params = PatientParameters(skeleton="primitive", seed=3)
    low, high = body_box_mm(params, anchors)
    grid = Grid.covering(low, high, 4.0)
    a = soft_tissue_part(grid, params, anchors)
    b = soft_tissue_part(grid, PatientParameters(skeleton="primitive", seed=3), anchors)
    for pa, pb in zip(a.pieces, b.pieces, strict=True):
        assert pa.label == pb.label and pa.box == pb.box
        assert np.array_equal(pa.mask, pb.mask) and np.array_equal(pa.hu, pb.hu)
    c, d = build(seed=3), build(seed=4)
    assert not np.array_equal(c.points("bowel"), d.points("bowel"))
    assert np.array_equal(c.points("skin"), d.points("skin"))  # the outline is not random
