"""The generated great vessels, measured from their labels (anatomy.md: vessels and soft structures)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fluorosim.models.phantom.parts import Anchors, Grid, PatientParameters
from fluorosim.models.phantom.pelvis import ilia_part
from fluorosim.models.phantom.sacrum import sacrum_part
from fluorosim.models.phantom.vessels import (
    L5_HALF_DEPTH_MM,
    L5_HALF_WIDTH_MM,
    _spine_centres,
    vessel_tree,
    vessels_part,
)
from tests.models.phantom.test_sacrum import Painted, reference_anchors

VOXEL_MM = 1.0


def spine_anchors() -> Anchors:
    """Hand-made anchors: S1 at the origin (38° slope) and L1–L5 body centres stacked on it."""
    anchors = reference_anchors()
    centres = _spine_centres(anchors)
    for level, centre in centres.items():
        anchors.extra[f"{level}_body_center"] = centre
    axis = centres["L4"] - centres["L5"]
    axis /= np.linalg.norm(axis)
    anchors.extra["L4_inferior_endplate_center"] = centres["L4"] - 14.0 * axis
    anchors.extra["L5_axis"] = axis
    return anchors


def vessel_grid() -> Grid:
    return Grid.covering(
        np.array([-110.0, -140.0, -130.0]), np.array([110.0, 60.0, 230.0]), VOXEL_MM
    )


_CACHE: dict[int, tuple[Painted, list]] = {}


def build(seed: int = 0) -> tuple[Painted, list]:
    if seed not in _CACHE:
        grid = vessel_grid()
        params = PatientParameters(skeleton="primitive", seed=seed)
        anchors = spine_anchors()
        _CACHE[seed] = (
            Painted(grid, vessels_part(grid, params, anchors)),
            vessel_tree(params, anchors)[0],
        )
    return _CACHE[seed]


def l5_body_points(anchors: Anchors, voxel_mm: float = 1.0) -> np.ndarray:
    """A hand-made L5 body: the nominal cross-section (superellipse 2.3), 28 mm tall, on its axis."""
    centre = anchors.extra["L5_body_center"]
    axis = anchors.extra["L5_axis"]
    left = np.array([1.0, 0.0, 0.0])
    posterior = np.cross(axis, left)
    g = np.arange(-30.0, 30.0 + voxel_mm, voxel_mm)
    u, v, w = np.meshgrid(g, g, np.arange(-14.0, 14.0 + voxel_mm, voxel_mm), indexing="ij")
    inside = np.abs(u / L5_HALF_WIDTH_MM) ** 2.3 + np.abs(v / L5_HALF_DEPTH_MM) ** 2.3 <= 1.0
    u, v, w = u[inside], v[inside], w[inside]
    return centre + u[:, None] * left + v[:, None] * posterior + w[:, None] * axis


def equivalent_diameter_mm(painted: Painted, label: str, vessels: list) -> float:
    """Diameter of the cylinder with the label's volume along the middle 60 % of its centreline.

    Each labelled voxel is assigned to its nearest centreline sample; only voxels assigned to
    the middle of the vessel count, so end caps and the crossings at the ends do not bias it.
    """
    vessel = next(v for v in vessels if v.label == label)
    centers, _ = vessel.centerline(0.5)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(centers, axis=0), axis=1))]
    points = painted.points(label)
    nearest = cKDTree(centers).query(points)[1]
    middle = (arc[nearest] > 0.2 * arc[-1]) & (arc[nearest] < 0.8 * arc[-1])
    volume = float(middle.sum()) * VOXEL_MM**3
    return 2.0 * math.sqrt(volume / (0.6 * arc[-1]) / math.pi)


@pytest.mark.parametrize(
    ("label", "low", "high"),
    [
        ("common_iliac_artery_left", 10.0 - 1.0, 12.0 + 1.0),  # anatomy.md 10–12 mm
        ("common_iliac_artery_right", 10.0 - 1.0, 12.0 + 1.0),
        ("common_iliac_vein_left", 8.5 - 1.5, 8.5 + 1.5),  # ≈8.5 mm
        ("aorta", 16.0, 24.0),  # approx.
    ],
)
def test_vessel_diameters(label, low, high):
    painted, vessels = build()
    assert low <= equivalent_diameter_mm(painted, label, vessels) <= high


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_right_common_iliac_artery_about_7mm_from_l5(seed):
    """anatomy.md: the right common iliac artery lies on average 7 mm from the L5 body."""
    painted, _ = build(seed)
    body = l5_body_points(spine_anchors())
    artery = painted.points("common_iliac_artery_right")
    gap = float(cKDTree(body).query(artery)[0].min()) - VOXEL_MM  # voxel centres → surfaces
    assert 7.0 - 3.5 <= gap <= 7.0 + 3.5, gap
    # …and no other artery or vein is inside the L5 body.
    for name in painted.values:
        assert cKDTree(body).query(painted.points(name))[0].min() > 0.4, name


def test_aortic_bifurcation_at_l4():
    painted, _ = build()
    anchors = spine_anchors()
    bifurcation = painted.landmarks["aortic_bifurcation"]
    l4_low = anchors.extra["L4_inferior_endplate_center"][2]
    l4_centre = anchors.extra["L4_body_center"][2]
    assert l4_low - 8.0 <= bifurcation[2] <= l4_centre + 14.0
    aorta = painted.points("aorta")
    assert aorta[:, 2].min() == pytest.approx(bifurcation[2], abs=11.0)  # + the tube radius
    for side in ("left", "right"):  # both start at the bifurcation (within one CIA diameter)
        cia = painted.points(f"common_iliac_artery_{side}")
        assert np.linalg.norm(cia - bifurcation, axis=1).min() < 12.0


def test_iliac_arteries_divide_in_front_of_the_si_joints():
    grid = vessel_grid()
    params = PatientParameters(skeleton="primitive")
    anchors = spine_anchors()
    painted, _ = build()
    pelvis = Painted(grid, ilia_part(grid, params, anchors))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        joint = pelvis.landmarks[f"sij_center_{side}"]
        cia = painted.points(f"common_iliac_artery_{side}")
        end = cia[np.argmin(cia[:, 2])]  # the caudal end: the division
        assert end[1] < joint[1] - 20.0  # anterior to the joint
        assert abs(end[2] - joint[2]) < 45.0
        assert sign * end[0] > 25.0
        internal = painted.points(f"internal_iliac_artery_{side}")
        external = painted.points(f"external_iliac_artery_{side}")
        assert internal[:, 1].max() > external[:, 1].max() + 20.0  # internal dives posteriorly
        assert external[:, 2].min() < joint[2] - 40.0  # external runs down to the groin


def test_vessels_stay_out_of_the_pelvic_bones():
    grid = vessel_grid()
    params = PatientParameters(skeleton="primitive")
    anchors = spine_anchors()
    bones = [sacrum_part(grid, params, anchors), ilia_part(grid, params, anchors)]
    bone = np.zeros(grid.shape, dtype=bool)
    for result in bones:
        for piece in result.pieces:
            bone[piece.box] |= piece.mask
    for piece in vessels_part(grid, params, anchors).pieces:
        overlap = np.mean(bone[piece.box][piece.mask])
        assert overlap < 0.05, (piece.label, overlap)


def test_same_seed_same_vessels():
    grid = Grid.covering(np.array([-100.0, -120.0, -60.0]), np.array([100.0, 40.0, 120.0]), 3.0)
    a = vessels_part(grid, PatientParameters(skeleton="primitive", seed=9), spine_anchors())
    b = vessels_part(grid, PatientParameters(skeleton="primitive", seed=9), spine_anchors())
    assert [p.label for p in a.pieces] == [p.label for p in b.pieces]
    for pa, pb in zip(a.pieces, b.pieces, strict=True):
        assert pa.box == pb.box and np.array_equal(pa.mask, pb.mask)
    assert np.array_equal(a.landmarks["aortic_bifurcation"], b.landmarks["aortic_bifurcation"])


def test_all_contract_vessels_painted():
    painted, _ = build()
    names = {"aorta", "vena_cava"}
    for side in ("left", "right"):
        names |= {
            f"common_iliac_artery_{side}",
            f"internal_iliac_artery_{side}",
            f"external_iliac_artery_{side}",
            f"common_iliac_vein_{side}",
        }
    assert names <= set(painted.values)
