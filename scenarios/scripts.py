"""Scripted attempts built from the patient's landmarks: an expert one per scenario and one per
failure mode of procedures.md (also used by the GUI demo).

An expert attempt follows each step's planned corridor (entry → target resolved on THIS patient),
enters from the skin, advances in ≈20 mm increments with a shot in two views after each advance,
confirms the final tip on every required view, then places the implant; a view drill goes straight
to the ideal joints of the view for this patient and takes one shot. A failure attempt perturbs the
expert one the way the failure mode describes, aiming at the nearest voxel of the structure at risk
(so it fails on every patient for the right reason): e.g. ``foraminal_breach`` aims the second S1
pin at the S1 root in its foramen, ``wrong_level`` docks at L4-5 instead of L5-S1.

The output is the scripted-attempt JSON of ``fluorosim replay``::

    {"format": "fluorosim-script", "scenario": ID, "patient": {...}, "mode": "learning",
     "steps": [{"t_s": 0.0, "carm": {"view": "inlet"}}, {"t_s": 2.0, "shot": 1}, ...]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.patient import Patient
from fluorosim.render import views as render_views
from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.points import landmark_point
from fluorosim.scenarios.scoring.breaches import depths_along_shaft, resolve_risks
from fluorosim.scenarios.scoring.steps import step_geometry
from fluorosim.scenarios.scoring.views import view_level, view_side
from fluorosim.scenarios.spec import Scenario, Step

SCRIPT_FORMAT = "fluorosim-script"
ADVANCE_INCREMENT_MM = 20.0
#: Clearance from every risk structure beyond which the expert prefers staying on the plan (mm).
ENOUGH_CLEARANCE_MM = 4.0

#: Failure mode → the scenario it is scripted on (procedures.md failure modes + issue #6 list).
FAILURES: dict[str, str] = {
    "foraminal_breach": "sij-lateral",
    "ventral_ala_breach": "sij-lateral",
    "pin_into_pelvis": "sij-lateral",
    "joint_not_crossed": "sij-lateral",
    "implants_too_close": "sij-lateral",
    "no_confirming_view": "sij-lateral",
    "excessive_shots": "sij-lateral",
    "root_contact": "teld-l4l5",
    "bowel": "teld-l4l5",
    "dural_breach": "ield-l5s1",
    "wrong_level": "ield-l5s1",
    "missed_joint": "sij-posterior",
    "pin_past_midline": "sij-lateral",
    "anterior_breach": "sij-posterior",
    "too_cranial": "sij-posterior",
    "drill_excessive_shots": "drill-inlet",
}


class ScriptError(ValueError):
    """A script cannot be built for this scenario/patient (message says why)."""


@dataclass
class ScriptBuilder:
    """Accumulates timed actions."""

    t_s: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, action: dict[str, Any], dt_s: float = 2.0) -> None:
        self.t_s += dt_s
        self.steps.append({"t_s": round(self.t_s, 3), **action})

    def view(self, name: str) -> None:
        self.add({"carm": {"view": name}}, 3.0)

    def shot(self) -> None:
        self.add({"shot": 1}, 1.0)

    def pose(
        self, instrument: str, tip: NDArray[np.float64], direction: NDArray[np.float64]
    ) -> None:
        self.add(
            {
                "instrument": instrument,
                "tip_mm": [round(float(v), 3) for v in tip],
                "direction": [round(float(v), 6) for v in direction],
            },
            3.0,
        )


def skin_point(
    patient: Patient, target: NDArray[np.float64], direction: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Where the line toward ``target`` along ``direction`` enters the body (0.5 mm steps)."""
    distances = np.arange(0.0, 600.0, 0.5)
    points = target[None, :] - distances[:, None] * direction[None, :]
    outside = np.nonzero(patient.labels_at(points) == 0)[0]
    if len(outside) == 0:
        raise ScriptError("the planned line never leaves the body within 600 mm")
    return points[max(int(outside[0]) - 1, 0)]


def nearest_voxel(
    patient: Patient, label_pattern: str, side: str | None, point: NDArray[np.float64]
) -> NDArray[np.float64]:
    """LPS centre of the voxel of a label (``*`` allowed) nearest to ``point``."""
    names = vocabulary.matching_labels(
        vocabulary.expand(label_pattern, side), set(patient.label_table)
    )
    values = [patient.label_table[n] for n in names]
    ijk = np.argwhere(np.isin(patient.labels, values))
    if len(ijk) == 0:
        raise ScriptError(f"this patient has no voxel of {label_pattern}")
    lps = ijk @ patient.lps_from_voxel[:3, :3].T + patient.lps_from_voxel[:3, 3]
    return lps[int(np.argmin(np.linalg.norm(lps - point, axis=1)))]


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    return v / np.linalg.norm(v)


def _advance_views(scenario: Scenario, step: Step) -> list[str]:
    views = list(step.confirm_views) or list(scenario.views)
    for view in scenario.views:
        if len(views) >= 2:
            break
        if view not in views:
            views.append(view)
    return views[:2]


def insert(
    b: ScriptBuilder,
    scenario: Scenario,
    patient: Patient,
    step: Step,
    target: NDArray[np.float64],
    direction: NDArray[np.float64],
    confirm: bool = True,
    check_views: list[str] | None = None,
) -> None:
    """Enter at the skin on the line to ``target`` and advance to it, checking on two views."""
    assert step.instrument is not None
    entry = skin_point(patient, target, direction)
    start = entry - 2.0 * direction
    views = check_views or _advance_views(scenario, step)
    b.view(views[0])
    b.pose(step.instrument, start, direction)
    b.shot()
    depth = float(np.dot(target - start, direction))
    count = max(2, math.ceil(depth / ADVANCE_INCREMENT_MM))
    for k in range(1, count + 1):
        b.pose(step.instrument, start + direction * depth * k / count, direction)
        for view in views:
            b.view(view)
            b.shot()
    if confirm:
        for view in step.confirm_views:
            if view not in views:
                b.view(view)
                b.shot()


def _rotations(max_deg: float, step_deg: float) -> list[NDArray[np.float64]]:
    """Small rotation matrices about x and z (pitch/yaw grid) within ±max_deg."""
    angles = np.arange(-max_deg, max_deg + 1e-9, step_deg)
    result = []
    for a in angles:
        for b in angles:
            ca, sa = math.cos(math.radians(a)), math.sin(math.radians(a))
            cb, sb = math.cos(math.radians(b)), math.sin(math.radians(b))
            rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
            rz = np.array([[cb, -sb, 0], [sb, cb, 0], [0, 0, 1]])
            result.append(rz @ rx)
    return result


def safe_corridor(
    scenario: Scenario,
    patient: Patient,
    step: Step,
    target: NDArray[np.float64],
    direction: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The expert's plan: the corridor within half the step's tolerances farthest from danger.

    Candidates move the target by up to half ``tolerance_mm`` and turn the direction by up to
    half ``angle_tolerance_deg``; a candidate is admissible when its shaft (tip → skin) enters no
    risk structure, its tip lies in the step's safe labels and it crosses the labels it must
    cross. Among admissible ones the largest clearance to the risk structures wins (exact EDT of
    their union on a crop around the corridor) up to :data:`ENOUGH_CLEARANCE_MM`; beyond that
    the candidate closest to the plan wins.
    """
    risks = resolve_risks(scenario, patient)
    # structures to keep clear of (exit risks are cortices: checked along the shaft below)
    risk_values = sorted({v for r in risks if r.risk.kind == "enter" for v in r.label_values})
    safe = {
        patient.label_table[n]
        for pattern in step.end_labels
        for n in vocabulary.matching_labels(
            vocabulary.expand(pattern, scenario.side), set(patient.label_table)
        )
    }
    cross = [
        {
            patient.label_table[n]
            for n in vocabulary.matching_labels(
                vocabulary.expand(c, scenario.side), set(patient.label_table)
            )
        }
        for c in step.must_cross
    ]
    half_mm = step.metric("tip_to_target_mm").allowed() / 2.0
    offsets = np.array([-half_mm, 0.0, half_mm])
    half_deg = step.metric("trajectory_axial_deg").allowed() / 2.0
    rotations = _rotations(half_deg, half_deg)
    entry = skin_point(patient, target, direction)
    corridor = np.stack([target, entry])
    distance_map, voxel_from_lps, shape = _risk_distance_map(patient, corridor, risk_values)
    best = None
    for dx in offsets:
        for dy in offsets:
            for dz in offsets:
                t = target + np.array([dx, dy, dz])
                for rotation in rotations:
                    d = rotation @ direction
                    points = _shaft(patient, t, d)
                    labels = patient.labels_at(points)
                    if risk_values and np.isin(labels, risk_values).any():
                        continue
                    if depths_along_shaft(patient, points, risks):
                        continue
                    if safe and int(labels[0]) not in safe:
                        continue
                    if any(not (values & set(labels.tolist())) for values in cross):
                        continue
                    clearance = _clearance(distance_map, voxel_from_lps, shape, points)
                    moved = float(np.linalg.norm(t - target)) + 0.01 * float(
                        np.linalg.norm(d - direction)
                    )
                    key = (round(min(clearance, ENOUGH_CLEARANCE_MM), 1), -moved)
                    if best is None or key > best[0]:
                        best = (key, t, d)
    if best is None:
        raise ScriptError(
            f"no safe corridor for step {step.id!r} within its tolerances on this patient"
        )
    return best[1], best[2]


def _shaft(
    patient: Patient, tip: NDArray[np.float64], direction: NDArray[np.float64]
) -> NDArray[np.float64]:
    distances = np.arange(0.0, 300.0, 0.5)
    points = tip[None, :] - distances[:, None] * direction[None, :]
    outside = np.nonzero(patient.labels_at(points) == 0)[0]
    return points[: max(1, int(outside[0]))] if len(outside) else points


def _risk_distance_map(patient: Patient, corridor: NDArray[np.float64], values: list[int]):
    from scipy import ndimage

    ijk = corridor @ patient.voxel_from_lps[:3, :3].T + patient.voxel_from_lps[:3, 3]
    pad = np.ceil(40.0 / patient.spacing_mm).astype(int)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + pad + 1, np.array(patient.shape))
    crop = patient.labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    mask = np.isin(crop, values) if values else np.zeros(crop.shape, bool)
    if not mask.any():
        distance = np.full(crop.shape, 40.0)
    else:
        distance = ndimage.distance_transform_edt(~mask, sampling=patient.spacing_mm)
    shift = np.eye(4)
    shift[:3, 3] = -lo
    return distance, shift @ patient.voxel_from_lps, np.array(crop.shape)


def _clearance(distance, voxel_from_lps, shape, points) -> float:
    ijk = np.rint(points @ voxel_from_lps[:3, :3].T + voxel_from_lps[:3, 3]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < shape), axis=1)
    if not inside.any():
        return 40.0
    ijk = ijk[inside]
    return float(min(40.0, distance[ijk[:, 0], ijk[:, 1], ijk[:, 2]].min()))


def _view_joints(scenario: Scenario, patient: Patient, step: Step) -> dict[str, float]:
    assert step.view is not None  # a view step names its view (the schema requires it)
    joints = render_views.ideal_joints(
        patient,
        step.view,
        side=view_side(scenario, step.view),
        level=view_level(scenario, step, step.view),
    )
    return {k: round(v, 4) for k, v in joints.as_dict().items()}


def _script(scenario: Scenario, b: ScriptBuilder, mode: str = "learning") -> dict[str, Any]:
    b.add({"finish": True}, 2.0)
    return {
        "format": SCRIPT_FORMAT,
        "scenario": scenario.id,
        "patient": dict(scenario.patient.parameters),
        "mode": mode,
        "steps": b.steps,
    }


def expert_plans(
    scenario: Scenario, patient: Patient
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Step id → (target, direction) the expert follows (the safe corridor of each step)."""
    plans = {}
    for step in scenario.steps:
        if step.kind == "trajectory":
            plan = step_geometry(patient, scenario, step)
            plans[step.id] = safe_corridor(
                scenario, patient, step, plan.target_lps_mm, plan.direction_lps
            )
    return plans


def expert_script(scenario: Scenario, patient: Patient) -> dict[str, Any]:
    """The expert attempt of a scenario on this patient."""
    b = ScriptBuilder()
    plans = expert_plans(scenario, patient)
    for step in scenario.steps:
        if step.kind == "view":
            b.add({"carm": _view_joints(scenario, patient, step)}, 5.0)
            b.shot()
            continue
        target, direction = plans[step.id]
        insert(b, scenario, patient, step, target, direction)
        if step.implant:
            b.add({"place_implant": step.implant}, 10.0)
    return _script(scenario, b)


def failure_script(scenario: Scenario, patient: Patient, failure: str) -> dict[str, Any]:
    """The scripted attempt for one failure mode (see :data:`FAILURES`)."""
    if FAILURES.get(failure) != scenario.id:
        raise ScriptError(
            f"failure {failure!r} is scripted on {FAILURES.get(failure)}, not {scenario.id}"
        )
    side = scenario.side
    b = ScriptBuilder()
    plans = {
        s.id: step_geometry(patient, scenario, s) for s in scenario.steps if s.kind == "trajectory"
    }
    if failure == "drill_excessive_shots":
        step = scenario.steps[0]
        joints = _view_joints(scenario, patient, step)
        for k in range(12):  # hunting: a shot after every small move
            b.add({"carm": {**joints, "angular_deg": joints["angular_deg"] + (12 - k)}}, 3.0)
            b.shot()
        b.add({"carm": joints}, 3.0)
        b.shot()
        return _script(scenario, b)
    expert = expert_plans(scenario, patient)
    for index, step in enumerate(scenario.steps):
        plan = plans[step.id]
        target, direction = expert[step.id]
        confirm = True
        first = index == 0
        if failure == "foraminal_breach" and index == 1:
            root = nearest_voxel(patient, "root_S1_{side}", side, target)
            direction = _unit(root - plan.entry_lps_mm)
            target = root + 2.0 * direction
        elif failure == "ventral_ala_breach" and first:
            root = nearest_voxel(patient, "root_L5_{side}", side, target)
            direction = _unit(root - plan.entry_lps_mm)
            target = root + 2.0 * direction
        elif failure == "pin_into_pelvis" and first:
            vessel = nearest_voxel(patient, "*iliac_artery_{side}", side, target)
            direction = _unit(vessel - plan.entry_lps_mm)
            target = vessel + 2.0 * direction
        elif failure == "joint_not_crossed" and first:
            joint = nearest_voxel(patient, "sij_space_{side}", side, plan.entry_lps_mm)
            # stop 6 mm before the joint along the planned line
            target = target - (float(np.dot(target - joint, direction)) + 6.0) * direction
        elif failure == "implants_too_close" and index == 1:
            first_target, first_direction = expert[scenario.steps[0].id]
            # 6 mm from implant 1, toward where implant 2 should have gone, parallel to it
            target = first_target + 6.0 * _unit(target - first_target)
            direction = first_direction
        elif failure == "no_confirming_view" and first:
            confirm = False
        elif failure == "root_contact" and step.instrument == "jamshidi_needle":
            upper = (scenario.level or "L4_L5").split("_")[0]
            root = nearest_voxel(patient, f"root_{upper}_{{side}}", side, target)
            direction = _unit(root - plan.entry_lps_mm)
            target = root + 1.0 * direction
        elif failure == "bowel" and step.instrument == "jamshidi_needle":
            bowel = nearest_voxel(patient, "bowel", side, plan.entry_lps_mm)
            direction = _unit(bowel - plan.entry_lps_mm)
            target = bowel + 3.0 * direction
        elif failure == "dural_breach" and index == len(scenario.steps) - 1:
            dura = nearest_voxel(patient, "thecal_sac", side, target)
            target = dura + 3.0 * direction
        elif failure == "wrong_level":
            shift = landmark_point(patient, "disc_L4_L5_center", side) - landmark_point(
                patient, "disc_L5_S1_center", side
            )
            target = target + shift
        elif failure == "pin_past_midline" and first:
            midline_x = float(landmark_point(patient, "S1_body_center", side)[0])
            lateral_sign = 1.0 if side == "left" else -1.0
            past = (lateral_sign * (float(target[0]) - midline_x) + 8.0) / abs(float(direction[0]))
            target = target + past * direction  # 8 mm past the midline along the pin
        elif failure == "anterior_breach":
            target = target + 20.0 * direction  # through the anterior joint margin
        elif failure == "too_cranial":
            plan_entry = plan.entry_lps_mm
            target = target + np.array([0.0, 0.0, 25.0])
            direction = _unit(target - (plan_entry + np.array([0.0, 0.0, 25.0])))
        elif failure == "missed_joint":
            target = target + 12.0 * (
                np.array([1.0, 0.0, 0.0]) if side == "left" else np.array([-1.0, 0.0, 0.0])
            )
        if failure == "no_confirming_view" and first:
            insert(
                b,
                scenario,
                patient,
                step,
                target,
                direction,
                confirm=False,
                check_views=[step.confirm_views[0]],
            )
        else:
            insert(b, scenario, patient, step, target, direction, confirm=confirm)
        if failure == "excessive_shots":
            for _ in range(25):
                b.shot()
        if step.implant:
            b.add({"place_implant": step.implant}, 10.0)
        if failure in ("root_contact", "bowel") and step.instrument == "jamshidi_needle":
            break  # the attempt stops at the complication
    return _script(scenario, b)
