"""Facet joints turned to their drawn angles (Jentzsch 2013) on the warped meshes: on target, both
processes together (the joint stays congruent), and a twist never folds."""

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
    low = warp.warp_bone(lower).vertices_mm
    low = low[np.linalg.norm(low - centre, axis=1) < 8.0]
    distance, _ = cKDTree(warp.warp_bone(upper).vertices_mm).query(low)
    return float(np.median(distance[distance < 5.0]))


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


def test_the_turn_leaves_l1_l2_l5_s1_and_the_bodies_alone(template) -> None:
    turned, plain = warps(template, 0, "male")
    assert turned.vertebra_maps["L1"].facet_turn is None
    for joint in ("L1_L2", "L5_S1"):
        for side in ("left", "right"):
            assert abs(measured_deg(turned, joint, side) - measured_deg(plain, joint, side)) < 1.0
    for level in ("L2", "L3", "L4", "L5"):
        before = plain.warp_body(level).vertices_mm
        after = turned.warp_body(level).vertices_mm
        moved = np.linalg.norm(after - before, axis=1)
        assert moved.max() < 0.5, (level, moved.max())


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
