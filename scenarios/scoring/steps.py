"""Per-step trajectory metrics: tip-to-target, trajectory angles, final position, joint crossing,
withdrawals and redirections, path in tissue, advances and their confirming views.

Definitions (documented so that trainees and examiners read the same thing):

* insertion depth of a pose = path length of the shaft inside the body (tip → skin entry);
* a *withdrawal* = the depth falling ≥ :data:`WITHDRAW_MM` below its running maximum;
* a *redirection* = the direction turning ≥ :data:`REDIRECT_DEG` while the tip is ≥ 5 mm deep;
* a *check* = the shots taken with the instrument still (no pose between them); an *advance* =
  the depth at a check ≥ :data:`ADVANCE_MM` deeper than at the previous check (or a final move
  ≥ that much after the last check); an advance is *confirmed* when its check holds two
  different recognised views;
* the step's final position is *confirmed* when, after its last pose, every view listed in the
  step's ``confirm_views`` was shot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.patient import Patient
from scenarios import vocabulary
from scenarios.attempt import AttemptLog, PoseSample
from scenarios.points import resolve_point
from scenarios.scoring.breaches import depths_along_shaft, resolve_risks
from scenarios.scoring.geometry import (
    path_in_tissue_mm,
    shaft_points,
    tip_to_target_mm,
    trajectory_errors_deg,
)
from scenarios.scoring.report import Metric
from scenarios.scoring.views import ShotView
from scenarios.spec import Scenario, Step

WITHDRAW_MM = 3.0
REDIRECT_DEG = 5.0
ADVANCE_MM = 3.0


def graded_at_most(value: float, reference: float) -> float:
    """Credit 1 up to the reference, falling linearly to 0 at three times it."""
    if value <= reference:
        return 1.0
    return max(0.0, 1.0 - (value - reference) / (2.0 * reference))


def pretty(name: str) -> str:
    """A label or view name in plain words."""
    return name.replace("_", " ")


@dataclass(frozen=True)
class StepGeometry:
    """The planned corridor of a step on this patient."""

    entry_lps_mm: np.ndarray
    target_lps_mm: np.ndarray

    @property
    def direction_lps(self) -> np.ndarray:
        """Unit direction entry → target."""
        d = self.target_lps_mm - self.entry_lps_mm
        return d / np.linalg.norm(d)


def step_geometry(patient: Patient, scenario: Scenario, step: Step) -> StepGeometry:
    """Resolve a trajectory step's entry and target on this patient."""
    assert step.entry is not None and step.target is not None
    return StepGeometry(
        resolve_point(patient, step.entry, scenario.side),
        resolve_point(patient, step.target, scenario.side),
    )


def _depths(patient: Patient, poses: list[PoseSample], lengths: dict[str, float]) -> list[float]:
    return [
        path_in_tissue_mm(
            shaft_points(patient, p.tip_lps_mm, p.direction_lps, lengths.get(p.instrument, 250.0))
        )
        for p in poses
    ]


def count_withdrawals_and_redirections(
    poses: list[PoseSample], depths: list[float]
) -> tuple[int, int]:
    """(withdrawals, redirections) along a step's poses (definitions in the module docstring)."""
    withdrawals = redirections = 0
    running_max = 0.0
    reference_direction = None
    for pose, depth in zip(poses, depths, strict=True):
        if depth > running_max:
            running_max = depth
        elif running_max - depth >= WITHDRAW_MM:
            withdrawals += 1
            running_max = depth
        if depth >= 5.0:
            if reference_direction is None:
                reference_direction = pose.direction_lps
            else:
                cosine = float(np.clip(np.dot(reference_direction, pose.direction_lps), -1, 1))
                if math.degrees(math.acos(cosine)) >= REDIRECT_DEG:
                    redirections += 1
                    reference_direction = pose.direction_lps
        else:
            reference_direction = None
    return withdrawals, redirections


def advances_and_confirmation(
    log: AttemptLog, step: Step, depths: list[float], shot_views: dict[int, ShotView]
) -> tuple[int, int, int]:
    """(advances, unconfirmed advances, shots) of a step (definitions in the module docstring)."""
    poses = log.poses_in_step(step.id)
    shots = log.shots_in_step(step.id)
    checks: list[tuple[float, set[str]]] = []  # (depth at check, views in check)
    last_pose_index = -1
    for shot in shots:
        index = max((i for i, p in enumerate(poses) if p.t_s <= shot.t_s), default=-1)
        depth = depths[index] if index >= 0 else 0.0
        view = shot_views.get(shot.index)
        name = (view.view or f"unnamed:{view.nearest}") if view else "unknown"
        if checks and index == last_pose_index:
            checks[-1][1].add(name)
        else:
            checks.append((depth, {name}))
        last_pose_index = index
    advances = unconfirmed = 0
    previous = 0.0
    for depth, names in checks:
        if depth - previous >= ADVANCE_MM:
            advances += 1
            if len(names) < 2:
                unconfirmed += 1
        previous = depth
    if (
        depths
        and depths[-1] - previous >= ADVANCE_MM
        and (not shots or poses[-1].t_s > shots[-1].t_s)
    ):
        advances += 1
        unconfirmed += 1
    return advances, unconfirmed, len(shots)


#: Weights of a trajectory step's metrics in the composite. An undone step weighs their sum, so
#: skipping a step costs exactly what doing it badly in every respect would.
W_TIP_TO_TARGET = 2.0
W_TRAJECTORY_ANGLE = 1.0  # each of axial and sagittal
W_FINAL_POSITION = 3.0
W_CROSSING = 2.0  # each label the shaft must cross
W_WITHDRAWALS = 0.5
W_REDIRECTIONS = 0.5
W_PATH_IN_TISSUE = 0.5
W_CONFIRMING_VIEWS = 1.5


def completed_step_weight(step: Step) -> float:
    """The total composite weight of a completed trajectory step's metrics."""
    weight = W_TIP_TO_TARGET + 2 * W_TRAJECTORY_ANGLE + W_FINAL_POSITION
    weight += W_WITHDRAWALS + W_REDIRECTIONS + W_PATH_IN_TISSUE
    weight += W_CROSSING * len(step.must_cross)
    if step.confirm_views:
        weight += W_CONFIRMING_VIEWS
    return weight


def step_metrics(
    scenario: Scenario,
    patient: Patient,
    log: AttemptLog,
    step: Step,
    lengths: dict[str, float],
    shot_views: dict[int, ShotView],
    number: int,
) -> tuple[list[Metric], dict[str, float]]:
    """Metrics of one trajectory step, and counts for the attempt totals."""
    prefix = step.id
    label = f"Step {number} ({step.title})"
    poses = log.poses_in_step(step.id)
    if not poses:
        return [
            Metric(
                f"{prefix}.completed",
                False,
                "",
                "instrument placed",
                False,
                weight=completed_step_weight(step),
                critical=True,
                finding=f"{label} was not done: the {pretty(step.instrument or '')} never entered.",
            )
        ], {"advances": 0, "unconfirmed": 0, "withdrawals": 0, "redirections": 0}
    plan = step_geometry(patient, scenario, step)
    final = poses[-1]
    metrics: list[Metric] = []
    distance = tip_to_target_mm(final.tip_lps_mm, plan.target_lps_mm)
    metrics.append(
        Metric(
            f"{prefix}.tip_to_target_mm",
            distance,
            "mm",
            f"≤ {step.tolerance_mm:g}",
            distance <= step.tolerance_mm,
            weight=W_TIP_TO_TARGET,
            credit=graded_at_most(distance, step.tolerance_mm),
            finding=f"{label}: the tip ended {distance:.1f} mm from the target "
            f"(allowed {step.tolerance_mm:g} mm).",
        )
    )
    axial, sagittal = trajectory_errors_deg(final.direction_lps, plan.direction_lps)
    for plane, value in (("axial", axial), ("sagittal", sagittal)):
        metrics.append(
            Metric(
                f"{prefix}.trajectory_{plane}_deg",
                value,
                "deg",
                f"≤ {step.angle_tolerance_deg:g}",
                value <= step.angle_tolerance_deg,
                weight=W_TRAJECTORY_ANGLE,
                credit=graded_at_most(value, step.angle_tolerance_deg),
                finding=f"{label}: the trajectory was {value:.1f}° off the planned corridor in "
                f"the {plane} plane (allowed {step.angle_tolerance_deg:g}°).",
            )
        )
    length = lengths.get(final.instrument, 250.0)
    shaft = shaft_points(patient, final.tip_lps_mm, final.direction_lps, length)
    risks = resolve_risks(scenario, patient)
    depths_now = depths_along_shaft(patient, shaft, risks)
    tip_label = patient.label_name(int(patient.labels_at(final.tip_lps_mm[None, :])[0]))
    safe_labels = {vocabulary.expand(n, scenario.side) for n in step.end_labels}
    if depths_now:
        (index, name), depth = max(depths_now.items(), key=lambda kv: kv[1])
        risk = risks[index].risk
        classification = f"breach: {risk.name} by {depth:.1f} mm"
        passed = False
        critical = risk.severity == "major"
        finding = (
            f"{label}: the final position is in the {risk.name} ({pretty(name)}) by {depth:.1f} mm."
        )
    elif safe_labels and tip_label not in safe_labels:
        classification = f"outside the safe zone (in {pretty(tip_label)})"
        passed = False
        critical = False
        finding = (
            f"{label}: the tip finished in the {pretty(tip_label)}, not in the "
            f"{' or '.join(pretty(s) for s in sorted(safe_labels))}."
        )
    else:
        classification = f"safe zone ({pretty(tip_label)})"
        passed = True
        critical = False
        finding = None
    metrics.append(
        Metric(
            f"{prefix}.final_position",
            classification,
            "",
            "safe zone: "
            + (", ".join(sorted(safe_labels)) if safe_labels else "no risk structure"),
            passed,
            weight=W_FINAL_POSITION,
            critical=critical,
            finding=finding,
        )
    )
    shaft_labels = set(patient.labels_at(shaft).tolist())
    for pattern in step.must_cross:
        name = vocabulary.expand(pattern, scenario.side)
        values = {
            patient.label_table[n]
            for n in vocabulary.matching_labels(name, set(patient.label_table))
        }
        crossed = bool(values & shaft_labels)
        metrics.append(
            Metric(
                f"{prefix}.crosses_{name}",
                crossed,
                "",
                "crossed",
                crossed,
                weight=W_CROSSING,
                critical=True,
                finding=None
                if crossed
                else f"{label}: the {pretty(step.instrument or '')} did not cross the {pretty(name)}.",
            )
        )
    pose_depths = _depths(patient, poses, lengths)
    withdrawals, redirections = count_withdrawals_and_redirections(poses, pose_depths)
    metrics.append(
        Metric(
            f"{prefix}.withdrawals",
            withdrawals,
            "",
            "≤ 1",
            withdrawals <= 1,
            weight=W_WITHDRAWALS,
            credit=graded_at_most(withdrawals, 1.0),
            finding=f"{label}: withdrawn {withdrawals} times; plan the corridor before advancing.",
        )
    )
    metrics.append(
        Metric(
            f"{prefix}.redirections",
            redirections,
            "",
            "≤ 1",
            redirections <= 1,
            weight=W_REDIRECTIONS,
            credit=graded_at_most(redirections, 1.0),
            finding=f"{label}: redirected {redirections} times inside tissue.",
        )
    )
    travelled = 0.0
    for a, b, da, db in zip(poses[:-1], poses[1:], pose_depths[:-1], pose_depths[1:], strict=True):
        if da > 0 and db > 0:
            travelled += float(np.linalg.norm(b.tip_lps_mm - a.tip_lps_mm))
    final_depth = pose_depths[-1]
    reference_path = max(final_depth, 1.0) * 1.5
    metrics.append(
        Metric(
            f"{prefix}.path_in_tissue_mm",
            travelled,
            "mm",
            f"≤ {reference_path:.0f} (1.5 × final depth)",
            travelled <= reference_path,
            weight=W_PATH_IN_TISSUE,
            credit=graded_at_most(travelled, reference_path),
            finding=f"{label}: the tip travelled {travelled:.0f} mm in tissue for a "
            f"{final_depth:.0f} mm deep trajectory.",
        )
    )
    if step.confirm_views:
        after = [s for s in log.shots_in_step(step.id) if s.t_s >= final.t_s]
        seen = {shot_views[s.index].view for s in after if s.index in shot_views}
        missing = [v for v in step.confirm_views if v not in seen]
        metrics.append(
            Metric(
                f"{prefix}.confirming_views",
                ", ".join(sorted(v for v in seen if v)) or "none",
                "",
                "all of: " + ", ".join(step.confirm_views),
                not missing,
                weight=W_CONFIRMING_VIEWS,
                critical=True,
                finding=None
                if not missing
                else f"{label}: the final position was not confirmed on the "
                f"{' and '.join(pretty(v) for v in missing)} view"
                f"{'s' if len(missing) > 1 else ''} before moving on.",
            )
        )
    advances, unconfirmed, _ = advances_and_confirmation(log, step, pose_depths, shot_views)
    return metrics, {
        "advances": advances,
        "unconfirmed": unconfirmed,
        "withdrawals": withdrawals,
        "redirections": redirections,
    }
