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

from models.patient import Patient
from render import views as render_views
from scenarios import vocabulary
from scenarios.points import landmark_point
from scenarios.scoring.steps import step_geometry
from scenarios.scoring.views import view_level, view_side
from scenarios.spec import Scenario, Step

SCRIPT_FORMAT = "fluorosim-script"
ADVANCE_INCREMENT_MM = 20.0

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


def _view_joints(scenario: Scenario, patient: Patient, step: Step) -> dict[str, float]:
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


def expert_script(scenario: Scenario, patient: Patient) -> dict[str, Any]:
    """The expert attempt of a scenario on this patient."""
    b = ScriptBuilder()
    for step in scenario.steps:
        if step.kind == "view":
            b.add({"carm": _view_joints(scenario, patient, step)}, 5.0)
            b.shot()
            continue
        plan = step_geometry(patient, scenario, step)
        insert(b, scenario, patient, step, plan.target_lps_mm, plan.direction_lps)
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
    for index, step in enumerate(scenario.steps):
        plan = plans[step.id]
        target, direction = plan.target_lps_mm, plan.direction_lps
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
            first_plan = plans[scenario.steps[0].id]
            direction = first_plan.direction_lps
            target = first_plan.target_lps_mm + np.array([0.0, 0.0, -6.0])
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
