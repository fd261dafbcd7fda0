"""Facet joints turned to their drawn angles (Jentzsch 2013) on the warped meshes: on target, both
processes together (the joint stays congruent), and a twist never folds. L5/S1 too: L5's inferior
process and the sacrum's superior one (after the pelvic map), the hip bones untouched."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fluorosim.models.phantom.parts import PatientParameters
from fluorosim.models.template.asset import DEFAULT_TEMPLATE_PATH, BoneTemplate, load_template
from fluorosim.models.template.facet import JointTwist, joint_angle_deg
from fluorosim.models.template.targets import patient_targets
from fluorosim.models.template.warp import PatientWarp, patient_warp

#: Measured: seed 8 (female), L2/3 right, drawn 41.1° (+10.7° over Jentzsch's mean) turns to 38.0°
#: and the fit's refits close no more (0.1° each: the facing pairs change as the turn grows); every
#: other joint of these patients lands within 2°.
TOLERANCE_DEG = 3.5
PATIENTS = [(seed, sex) for seed in (0, 3, 8) for sex in ("male", "female")]


@pytest.fixture(scope="module")
def template() -> BoneTemplate:
    if not DEFAULT_TEMPLATE_PATH.exists():
        pytest.skip(f"template asset not built yet: {DEFAULT_TEMPLATE_PATH}")
    return load_template()


def warps(template: BoneTemplate, seed: int, sex: str) -> tuple[PatientWarp, PatientWarp]:
    """(turned, un-turned) warps of one patient."""
    targets = patient_targets(PatientParameters(seed=seed, sex=sex))
    return patient_warp(template, targets), patient_warp(
        template, replace(targets, facet_angles_deg={})
    )


def measured_deg(warp: PatientWarp, joint: str, side: str) -> float:
    upper, lower = joint.split("_")
    marks = warp.landmarks
    axis = marks[f"{upper}_inferior_endplate_center"] - marks[f"{lower}_superior_endplate_center"]
    lower_bone = warp.warp_bone("sacrum" if lower == "S1" else lower)
    return joint_angle_deg(warp.warp_bone(upper), lower_bone, marks[f"facet_{joint}_{side}"], axis)


def facing_gap_mm(warp: PatientWarp, joint: str, side: str) -> float:
    """Median distance from the lower process's vertices within 8 mm of the joint centre that face
    the upper process (within 5 mm of it) to the upper bone's nearest vertex."""
    upper, lower = joint.split("_")
    centre = warp.landmarks[f"facet_{joint}_{side}"]
    low = warp.warp_bone("sacrum" if lower == "S1" else lower).vertices_mm
    low = low[np.linalg.norm(low - centre, axis=1) < 8.0]
    distance, _ = cKDTree(warp.warp_bone(upper).vertices_mm).query(low)
    return float(np.median(distance[distance < 5.0]))


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = (np.asarray(vertices)[faces[:, k]] for k in range(3))
    return np.cross(b - a, c - a)


def test_a_twist_turns_its_core_rigidly_keeps_volume_and_stays_local() -> None:
    twist = JointTwist(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0]), 30.0)
    rng = np.random.default_rng(0)
    core = twist.centre_mm + rng.uniform(-5.0, 5.0, (50, 3))
    turned = twist(core)
    angle = math.radians(30.0)
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]]
    )
    expected = (core - twist.centre_mm) @ rotation.T + twist.centre_mm
    np.testing.assert_allclose(turned, expected, atol=1e-9)
    far = twist.centre_mm + np.array([[0.0, 30.0, 0.0], [25.0, 0.0, 5.0]])
    np.testing.assert_allclose(twist(far), far)
    # in the fade the Jacobian determinant stays 1 (a twist keeps volume)
    points = twist.centre_mm + rng.uniform(-20.0, 20.0, (400, 3))
    jacobian = np.empty((len(points), 3, 3))
    for k in range(3):
        step = np.zeros(3)
        step[k] = 1e-4
        jacobian[:, :, k] = (twist(points + step) - twist(points - step)) / 2e-4
    np.testing.assert_allclose(np.linalg.det(jacobian), 1.0, atol=1e-5)


@pytest.mark.parametrize(("seed", "sex"), PATIENTS)
def test_joints_reach_their_drawn_angles_and_stay_congruent(template, seed, sex) -> None:
    turned, plain = warps(template, seed, sex)
    for joint, sides in turned.targets.facet_angles_deg.items():
        for side, target in sides.items():
            angle = measured_deg(turned, joint, side)
            assert abs(angle - target) <= TOLERANCE_DEG, (joint, side, angle, target)
            gap_before = facing_gap_mm(plain, joint, side)
            gap_after = facing_gap_mm(turned, joint, side)
            assert abs(gap_after - gap_before) < 0.3, (joint, side, gap_before, gap_after)


def test_the_turn_leaves_l1_l2_the_bodies_and_the_hips_alone(template) -> None:
    turned, plain = warps(template, 0, "male")
    assert turned.vertebra_maps["L1"].facet_turn is None
    assert plain.sacral_turn is None and turned.sacral_turn is not None
    for side in ("left", "right"):
        angle, before = measured_deg(turned, "L1_L2", side), measured_deg(plain, "L1_L2", side)
        assert abs(angle - before) < 1.0, (side, angle, before)
    for level in ("L2", "L3", "L4", "L5", "S1"):
        before = plain.warp_body(level).vertices_mm
        after = turned.warp_body(level).vertices_mm
        moved = np.linalg.norm(after - before, axis=1)
        assert moved.max() < 0.5, (level, moved.max())
    # the sacral twist is the sacrum's alone: the SI joints stay congruent
    for bone in ("hip_left", "hip_right", "coccyx"):
        np.testing.assert_array_equal(
            turned.warp_bone(bone).vertices_mm, plain.warp_bone(bone).vertices_mm
        )


@pytest.mark.parametrize(("seed", "sex"), [(0, "male"), (8, "male")])
def test_the_sacrum_is_turned_alike_everywhere_and_never_folds(template, seed, sex) -> None:
    """Seed 8 draws L5/S1 at 61°, the template's 31–36° turned by 26–30°. Every face of L5 and the
    sacrum keeps its orientation; "S1", the sacrum, the joint's landmark and space near the
    sacral process all see the turned sacrum."""
    turned, plain = warps(template, seed, sex)
    for bone in ("L5", "sacrum"):
        mesh, before = turned.warp_bone(bone), plain.warp_bone(bone)
        faces = np.asarray(mesh.faces)
        dots = np.einsum(
            "fk,fk->f",
            face_normals(mesh.vertices_mm, faces),
            face_normals(before.vertices_mm, faces),
        )
        assert (dots > 0).all(), (bone, int((dots <= 0).sum()))
    sacrum = np.asarray(template.bones["sacrum"].vertices_mm)
    for side in ("left", "right"):
        name = f"facet_L5_S1_{side}"
        mark = np.asarray(template.landmarks[name], float)
        near = sacrum[np.linalg.norm(sacrum - mark, axis=1) < 6.0]
        np.testing.assert_allclose(
            turned.warp_points("S1", near), turned.warp_points("sacrum", near), atol=1e-9
        )
        moved = np.linalg.norm(
            turned.warp_points("sacrum", near) - plain.warp_points("sacrum", near), axis=1
        )
        assert moved.max() > 0.5, (side, moved.max())
        expected = 0.5 * (
            turned.warp_points("L5", mark[None])[0] + turned.warp_points("sacrum", mark[None])[0]
        )
        np.testing.assert_allclose(turned.landmarks[name], expected, atol=1e-9)
        # space (soft tissue, the joint's capsule) follows the turned bones, not the plain ones
        space_moved = np.linalg.norm(turned.warp_space(near) - plain.warp_space(near), axis=1)
        assert np.median(space_moved) > 0.5 * np.median(moved), (side, space_moved, moved)


def test_processes_turn_whole_within_the_core(template) -> None:
    """Every vertex of both processes within the core turns by the joint's one angle."""
    turned, plain = warps(template, 0, "male")
    twist = turned.vertebra_maps["L4"].facet_turn.twists[-1]  # L4-L5, right
    placed = turned.vertebra_maps["L4"].final_from_local
    centre = placed[:3, :3] @ twist.centre_mm + placed[:3, 3]
    for bone in ("L4", "L5"):
        before = plain.warp_bone(bone).vertices_mm
        after = turned.warp_bone(bone).vertices_mm
        core = np.linalg.norm(before - centre, axis=1) < twist.full_radius_mm - 1.0
        # distances to the centre are kept: a rotation about an axis through it
        np.testing.assert_allclose(
            np.linalg.norm(after[core] - centre, axis=1),
            np.linalg.norm(before[core] - centre, axis=1),
            atol=1e-6,
        )
