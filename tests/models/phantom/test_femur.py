"""The generated proximal femora, measured from their painted labels (head, neck, trochanters)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluorosim.models.landmarks import landmark_names
from fluorosim.models.phantom import PatientParameters, load_or_build_patient
from fluorosim.models.phantom.femur import CORTICAL_HU, MARROW_HU, femur_part, femur_shapes
from fluorosim.models.phantom.parts import Grid
from fluorosim.models.phantom.pelvis import ilia_part
from tests.models.phantom.test_pelvis import Combined
from tests.models.phantom.test_sacrum import Painted, reference_anchors

VOXEL_MM = 1.0
SIDES = ("left", "right")


def hip_grid(voxel_mm: float = VOXEL_MM) -> Grid:
    """Both hips, from above the acetabular roof to ≈130 mm below the head centres."""
    return Grid.covering(
        np.array([-165.0, -90.0, -240.0]), np.array([165.0, 40.0, -50.0]), voxel_mm
    )


def build(seed: int = 0, slope_deg: float = 38.0) -> Painted:
    grid = hip_grid()
    params = PatientParameters(seed=seed)
    anchors = reference_anchors(slope_deg)
    return Combined(
        grid, ilia_part(grid, params, anchors), femur_part(grid, params, anchors)
    ).painted


@pytest.fixture(scope="module")
def hips() -> Painted:
    return build()


def ray_directions(side: str, n: int = 400) -> np.ndarray:
    """Unit directions into the acetabular dome: superior and medial of the head centre."""
    rng = np.random.default_rng(7)
    d = rng.standard_normal((n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    medial = -1.0 if side == "left" else 1.0
    keep = (d[:, 2] > 0.3) & (d[:, 0] * medial > 0.0)
    return d[keep]


def head_rays(hips: Painted, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Per ray from the head centre: distance where the femur label ends, and where ilium starts."""
    centre = hips.landmarks[f"femoral_head_center_{side}"]
    steps = np.arange(0.0, 45.0, 0.25)
    exits, hits = [], []
    for direction in ray_directions(side):
        labels = hips.label_at(centre + steps[:, None] * direction)
        femur = labels == hips.value(f"femur_{side}")
        ilium = labels == hips.value(f"ilium_{side}")
        if not femur[0] or not ilium.any():
            continue
        exit_index = int(np.argmin(femur))  # first non-femur sample
        exits.append(steps[exit_index])
        hits.append(steps[int(np.argmax(ilium))])
    return np.array(exits), np.array(hits)


@pytest.mark.parametrize("side", SIDES)
def test_head_radius_and_joint_space_to_the_acetabulum(hips, side):
    exits, hits = head_rays(hips, side)
    assert exits.size > 50, "too few rays reach the acetabulum from the head centre"
    radius = float(np.median(exits))
    assert 21.0 <= radius <= 26.0, f"femoral head radius {radius:.1f} mm"
    gaps = hits - exits
    assert 1.5 <= float(np.median(gaps)) <= 4.0, f"hip joint space {np.median(gaps):.2f} mm"
    assert gaps.min() > 0.0, "the femoral head touches the ilium"


def femur_points(hips: Painted, side: str) -> np.ndarray:
    return hips.points(f"femur_{side}")


def shaft_axis(points: np.ndarray, z_low: float, z_high: float) -> np.ndarray:
    """Unit direction (pointing distally) of the line through the axial-slice centroids."""
    zs = np.unique(points[:, 2])
    zs = zs[(zs >= z_low) & (zs <= z_high)]
    centroids = np.array([points[points[:, 2] == z].mean(axis=0) for z in zs])
    assert len(centroids) >= 10
    centred = centroids - centroids.mean(axis=0)
    direction = np.linalg.svd(centred)[2][0]
    return direction if direction[2] < 0 else -direction


@pytest.mark.parametrize("side", SIDES)
def test_neck_shaft_angle(hips, side):
    points = femur_points(hips, side)
    centre = hips.landmarks[f"femoral_head_center_{side}"]
    exits, _ = head_rays(hips, side)
    radius = float(np.median(exits))
    # Shaft: axial slices 85–125 mm below the head centre (below the lesser trochanter).
    distal = shaft_axis(points, centre[2] - 125.0, centre[2] - 85.0)
    # Neck: the femur in a spherical shell just outside the head, short of the trochanters.
    distance = np.linalg.norm(points - centre, axis=1)
    shell = points[(distance > radius + 3.0) & (distance < radius + 11.0)]
    assert len(shell) > 200
    to_head = centre - shell.mean(axis=0)
    to_head /= np.linalg.norm(to_head)
    angle = math.degrees(math.acos(float(np.dot(to_head, distal))))
    assert 120.0 <= angle <= 140.0, f"neck-shaft angle {angle:.1f}°"
    # The neck runs medially and superiorly to the head, and the head is anteverted (anterior).
    medial = -1.0 if side == "left" else 1.0
    assert to_head[0] * medial > 0.5 and to_head[2] > 0.3
    assert to_head[1] < 0.0, "the femoral neck is not anteverted"


@pytest.mark.parametrize("side", SIDES)
def test_greater_trochanter_tip_lateral_at_head_height(hips, side):
    points = femur_points(hips, side)
    centre = hips.landmarks[f"femoral_head_center_{side}"]
    lateral = 1.0 if side == "left" else -1.0
    # The greater trochanter: femur voxels well lateral to the head (beyond the neck's middle).
    beyond = points[(points[:, 0] - centre[0]) * lateral > 40.0]
    tip = beyond[np.argmax(beyond[:, 2])]
    assert abs(tip[2] - centre[2]) <= 20.0, f"trochanter tip {tip[2] - centre[2]:+.1f} mm"
    assert (tip[0] - centre[0]) * lateral > 40.0
    landmark = hips.landmarks[f"greater_trochanter_tip_{side}"]
    assert hips.label_at(landmark) == hips.value(f"femur_{side}")
    assert abs(landmark[2] - tip[2]) <= 3.0
    assert (landmark[0] - centre[0]) * lateral > 40.0


@pytest.mark.parametrize("side", SIDES)
def test_lesser_trochanter_is_a_posteromedial_bump(hips, side):
    points = femur_points(hips, side)
    centre = hips.landmarks[f"femoral_head_center_{side}"]
    shape = femur_shapes(PatientParameters(), reference_anchors())[side]
    distal = shaft_axis(points, centre[2] - 125.0, centre[2] - 85.0)
    # Reach of the femur from the shaft axis, posteromedially and anteromedially, per axial slice.
    medial = np.array([-1.0 if side == "left" else 1.0, 0.0, 0.0])
    post_med = (medial + np.array([0.0, 1.0, 0.0])) / math.sqrt(2.0)
    ant_med = (medial - np.array([0.0, 1.0, 0.0])) / math.sqrt(2.0)

    def reach(z: float, direction: np.ndarray) -> float:
        slab = points[np.abs(points[:, 2] - z) < 0.5]
        axis_point = shape.junction + distal * (z - shape.junction[2]) / distal[2]
        return float(np.max((slab - axis_point) @ direction))

    at = float(shape.lesser_trochanter_center[2])
    bump = reach(at, post_med)
    assert bump > reach(at, ant_med) + 5.0, "no lesser trochanter: the shaft is round there"
    assert bump > reach(at - 30.0, post_med) + 6.0, "no lesser trochanter above the diaphysis"


def test_left_and_right_are_mirror_images(hips):
    left = hips.landmarks["femoral_head_center_left"]
    right = hips.landmarks["femoral_head_center_right"]
    assert abs(left[0] + right[0]) < 8.0 and np.allclose(left[1:], right[1:], atol=5.0)
    n_left = len(femur_points(hips, "left"))
    n_right = len(femur_points(hips, "right"))
    assert abs(n_left - n_right) / n_left < 0.12


def test_true_lateral_superimposes_the_trochanters(hips):
    """A beam along x sees both trochanter tips within a few mm of each other (and both heads)."""
    for name in ("greater_trochanter_tip", "femoral_head_center"):
        left = hips.landmarks[f"{name}_left"]
        right = hips.landmarks[f"{name}_right"]
        assert np.linalg.norm(left[1:] - right[1:]) < 6.0, name
    # On labels: the (y, z) silhouettes of both greater trochanters, seen along x, overlap.
    footprints = []
    for side in SIDES:
        points = femur_points(hips, side)
        centre = hips.landmarks[f"femoral_head_center_{side}"]
        lateral = 1.0 if side == "left" else -1.0
        region = points[
            ((points[:, 0] - centre[0]) * lateral > 40.0) & (points[:, 2] > centre[2] - 25.0)
        ]
        footprints.append({(round(y), round(z)) for y, z in region[:, 1:]})
    overlap = len(footprints[0] & footprints[1]) / len(footprints[0] | footprints[1])
    assert overlap > 0.7, f"trochanter silhouettes overlap {overlap:.2f} on a true lateral"


def test_hu_cortical_shell_cancellous_head_and_marrow_canal(hips):
    for side in SIDES:
        centre = hips.landmarks[f"femoral_head_center_{side}"]
        assert 100.0 < float(hips.hu_at(centre)) < 400.0  # cancellous head (age 50)
        exits, _ = head_rays(hips, side)
        top = centre + (float(np.median(exits)) - 0.6) * np.array([0.0, 0.0, 1.0])
        assert float(hips.hu_at(top)) == pytest.approx(CORTICAL_HU)
        shape = femur_shapes(PatientParameters(), reference_anchors())[side]
        canal = shape.junction - 110.0 * shape.shaft_up
        assert float(hips.hu_at(canal)) == pytest.approx(MARROW_HU)
        assert float(hips.hu_at(canal)) < 100.0  # marrow, not cancellous bone
        wall = canal + 12.0 * shape.lateral
        assert float(hips.hu_at(wall)) == pytest.approx(CORTICAL_HU)


def test_same_seed_identical_femora_other_seed_differs():
    grid = Grid.covering(np.array([40.0, -70.0, -200.0]), np.array([165.0, 30.0, -60.0]), 2.0)
    anchors = reference_anchors()
    a = femur_part(grid, PatientParameters(seed=3), anchors)
    b = femur_part(grid, PatientParameters(seed=3), anchors)
    c = femur_part(grid, PatientParameters(seed=4), anchors)
    assert [p.label for p in a.pieces] == ["femur_left"]
    assert np.array_equal(a.pieces[0].mask, b.pieces[0].mask)
    assert np.array_equal(a.pieces[0].hu, b.pieces[0].hu)
    assert all(np.array_equal(a.landmarks[k], b.landmarks[k]) for k in a.landmarks)
    assert not np.allclose(
        a.landmarks["femoral_head_center_left"], c.landmarks["femoral_head_center_left"]
    )


@pytest.mark.parametrize("slope_deg", [28.0, 50.0])
def test_heads_stay_in_the_acetabula_when_the_pelvis_turns(slope_deg):
    """The head follows the hip bone's socket; the shaft stays along the table (legs extended)."""
    hips = build(slope_deg=slope_deg)
    for side in SIDES:
        exits, hits = head_rays(hips, side)
        assert exits.size > 50
        assert 1.5 <= float(np.median(hits - exits)) <= 4.0
        assert (hits - exits).min() > 0.0
        shape = femur_shapes(PatientParameters(), reference_anchors(slope_deg))[side]
        assert shape.shaft_up[1] == 0.0 and shape.shaft_up[2] > 0.99


def test_default_patient_has_both_femora_and_their_landmarks():
    patient = load_or_build_patient(PatientParameters())
    for side in SIDES:
        value = patient.label_value(f"femur_{side}")
        assert (patient.labels == value).sum() > 50_000
        for name in ("femoral_head_center", "greater_trochanter_tip"):
            point = patient.landmark(f"{name}_{side}")
            assert patient.labels_at(point[None, :])[0] == value, name
    assert {f"femoral_head_center_{s}" for s in SIDES} <= set(landmark_names("femur"))
