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

from fluorosim.models.patient import Patient
from fluorosim.models.tissue import BULK_LABELS
from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.attempt import AttemptLog, PoseSample
from fluorosim.scenarios.points import resolve_point
from fluorosim.scenarios.scoring.breaches import depths_along_shaft, resolve_risks
from fluorosim.scenarios.scoring.credit import scored
from fluorosim.scenarios.scoring.geometry import (
    path_in_tissue_mm,
    shaft_points,
    tip_to_target_mm,
    trajectory_errors_deg,
)
from fluorosim.scenarios.scoring.report import Metric
from fluorosim.scenarios.scoring.views import ShotView
from fluorosim.scenarios.spec import Scenario, Step

WITHDRAW_MM = 3.0
REDIRECT_DEG = 5.0
ADVANCE_MM = 3.0


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
    entry = resolve_point(patient, step.entry, scenario.side)
    return StepGeometry(entry, resolve_point(patient, step.target, scenario.side, entry))


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


#: Distance around the tip searched for the structures named beside the one it ended in (mm).
NEARBY_MM = 4.0


def completed_step_weight(step: Step) -> float:
    """The total composite weight of a completed trajectory step's metrics (from its definitions).

    An undone step weighs this much at zero credit, so skipping a step costs exactly what doing it
    badly in every respect would.
    """
    weight = 0.0
    for name, definition in step.metrics.items():
        if name == "crosses":
            weight += definition.weight * len(step.must_cross)
        elif name == "confirming_views":
            weight += definition.weight if step.confirm_views else 0.0
        else:
            weight += definition.weight
    return weight


def nearby_labels(
    patient: Patient, point: np.ndarray, exclude: set[str], radius_mm: float = NEARBY_MM
) -> list[str]:
    """Label names within ``radius_mm`` of a point (nearest first), bulk soft tissue left out."""
    offsets = np.array(
        [
            (x, y, z)
            for x in (-1, 0, 1)
            for y in (-1, 0, 1)
            for z in (-1, 0, 1)
            if (x, y, z) != (0, 0, 0)
        ],
        dtype=np.float64,
    )
    offsets /= np.linalg.norm(offsets, axis=1)[:, None]
    found: dict[str, float] = {}
    for r in (radius_mm / 2.0, radius_mm):
        labels = patient.labels_at(point[None, :] + r * offsets)
        for value in labels.tolist():
            name = patient.label_name(int(value))
            if name not in exclude and name not in BULK_LABELS:
                found.setdefault(name, r)
    return sorted(found, key=lambda n: (found[n], n))


def wrong_side(scenario: Scenario, patient: Patient, tip: np.ndarray) -> float:
    """How far (mm) the tip lies across the midline from the scenario's side (≤ 0: right side)."""
    if scenario.side is None:
        return 0.0
    try:
        midline_x = float(patient.landmark("S1_body_center").reshape(-1, 3)[0][0])
    except KeyError:
        return 0.0
    sign = 1.0 if scenario.side == "left" else -1.0
    return -sign * (float(tip[0]) - midline_x)


#: A tip this far (mm) across the midline from the scenario's side is on the wrong side.
WRONG_SIDE_MM = 3.0


def final_position_metric(
    scenario: Scenario,
    patient: Patient,
    step: Step,
    final: PoseSample,
    lengths: dict[str, float],
    label: str,
    distance_mm: float = 0.0,
) -> Metric:
    """Where the tip ended against the structure the step aims at (critical: the wrong target).

    The tip must finish in one of the step's ``end_labels`` (the intended structure), on the
    scenario's side, not so far from the target that tip to target fails critically (a gross miss
    into the same kind of tissue elsewhere: the next level's window), and not inside a risk
    structure. Otherwise the finding names where it ended
    instead, by structure (the label at the tip) and what lies around it.
    """
    definition = step.metric("final_position")
    tip = final.tip_lps_mm
    tip_label = patient.label_name(int(patient.labels_at(tip[None, :])[0]))
    safe_labels = {
        n
        for pattern in step.end_labels
        for n in vocabulary.matching_labels(
            vocabulary.expand(pattern, scenario.side), set(patient.label_table)
        )
    }
    intended = vocabulary.expand(step.end_name or "", scenario.side) or " or ".join(
        vocabulary.plain_label(s) for s in sorted(safe_labels)
    )
    length = lengths.get(final.instrument, 250.0)
    shaft = shaft_points(patient, tip, final.direction_lps, length)
    risks = resolve_risks(scenario, patient)
    depths_now = depths_along_shaft(patient, shaft, risks)
    across = wrong_side(scenario, patient, tip)
    where = vocabulary.plain_label(tip_label)
    nearby = [vocabulary.plain_label(n) for n in nearby_labels(patient, tip, {tip_label}, 6.0)[:3]]
    near_text = f" (near the {', '.join(nearby)})" if nearby else ""
    what = pretty(step.instrument or "instrument")
    if across > WRONG_SIDE_MM:
        classification = f"wrong side (in the {where})"
        ok = False
        finding = (
            f"{label}: wrong side — the {what} ended {across:.0f} mm across the midline on the "
            f"{vocabulary.contra(scenario.side or 'left')} side, in the {where}{near_text}, "
            f"instead of the {intended or 'target'}."
        )
    elif safe_labels and tip_label not in safe_labels:
        classification = f"wrong structure (in the {where})"
        ok = False
        finding = (
            f"{label}: wrong target — the {what} ended in the {where}{near_text} instead of "
            f"the {intended}."
        )
    elif (gross := step.metric("tip_to_target_mm").critical_beyond) is not None and (
        distance_mm > gross
    ):
        classification = f"far from the target (in the {where})"
        ok = False
        finding = (
            f"{label}: wrong target — the {what} ended {distance_mm:.0f} mm from the target, in "
            f"the {where}{near_text}, instead of the {intended or 'target'}."
        )
    elif depths_now:
        (index, name), depth = max(depths_now.items(), key=lambda kv: kv[1])
        risk = risks[index].risk
        classification = f"in a risk structure: {risk.name}"
        ok = False
        finding = (
            f"{label}: the {what} ended in the {risk.name} ({vocabulary.plain_label(name)}) "
            f"by {depth:.1f} mm."
        )
    else:
        classification = f"on target (in the {where})"
        ok = True
        finding = None
    return scored(definition, ok, finding, name=f"{step.id}.final_position", shown=classification)


def step_metrics(
    scenario: Scenario,
    patient: Patient,
    log: AttemptLog,
    step: Step,
    lengths: dict[str, float],
    shot_views: dict[int, ShotView],
    number: int,
) -> tuple[list[Metric], dict[str, int]]:
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
    tip_def = step.metric("tip_to_target_mm")
    metrics.append(
        scored(
            tip_def,
            distance,
            f"{label}: the tip ended {distance:.1f} mm from the target "
            f"(allowed {tip_def.allowed():g} mm).",
            name=f"{prefix}.tip_to_target_mm",
        )
    )
    axial, sagittal = trajectory_errors_deg(final.direction_lps, plan.direction_lps)
    for plane, value in (("axial", axial), ("sagittal", sagittal)):
        definition = step.metric(f"trajectory_{plane}_deg")
        metrics.append(
            scored(
                definition,
                value,
                f"{label}: the trajectory was {value:.1f}° off the planned corridor in "
                f"the {plane} plane (allowed {definition.allowed():g}°).",
                name=f"{prefix}.trajectory_{plane}_deg",
            )
        )
    metrics.append(final_position_metric(scenario, patient, step, final, lengths, label, distance))
    length = lengths.get(final.instrument, 250.0)
    shaft = shaft_points(patient, final.tip_lps_mm, final.direction_lps, length)
    shaft_labels = set(patient.labels_at(shaft).tolist())
    for pattern in step.must_cross:
        name = vocabulary.expand(pattern, scenario.side)
        values = {
            patient.label_table[n]
            for n in vocabulary.matching_labels(name, set(patient.label_table))
        }
        crossed = bool(values & shaft_labels)
        metrics.append(
            scored(
                step.metric("crosses"),
                crossed,
                None
                if crossed
                else f"{label}: the {pretty(step.instrument or '')} did not cross the "
                f"{vocabulary.plain_label(name)}.",
                name=f"{prefix}.crosses_{name}",
            )
        )
    pose_depths = _depths(patient, poses, lengths)
    withdrawals, redirections = count_withdrawals_and_redirections(poses, pose_depths)
    metrics.append(
        scored(
            step.metric("withdrawals"),
            withdrawals,
            f"{label}: withdrawn {withdrawals} times; plan the corridor before advancing.",
            name=f"{prefix}.withdrawals",
        )
    )
    metrics.append(
        scored(
            step.metric("redirections"),
            redirections,
            f"{label}: redirected {redirections} times inside tissue.",
            name=f"{prefix}.redirections",
        )
    )
    travelled = 0.0
    for a, b, da, db in zip(poses[:-1], poses[1:], pose_depths[:-1], pose_depths[1:], strict=True):
        if da > 0 and db > 0:
            travelled += float(np.linalg.norm(b.tip_lps_mm - a.tip_lps_mm))
    final_depth = pose_depths[-1]
    ratio = travelled / max(final_depth, 1.0)
    metrics.append(
        scored(
            step.metric("path_in_tissue_ratio"),
            ratio,
            f"{label}: the tip travelled {travelled:.0f} mm in tissue for a "
            f"{final_depth:.0f} mm deep trajectory.",
            name=f"{prefix}.path_in_tissue_ratio",
        )
    )
    if step.confirm_views:
        after = [s for s in log.shots_in_step(step.id) if s.t_s >= final.t_s]
        seen = {shot_views[s.index].view for s in after if s.index in shot_views}
        missing = [v for v in step.confirm_views if v not in seen]
        metrics.append(
            scored(
                step.metric("confirming_views"),
                not missing,
                None
                if not missing
                else f"{label}: the final position was not confirmed on the "
                f"{' and '.join(pretty(v) for v in missing)} view"
                f"{'s' if len(missing) > 1 else ''} before moving on.",
                name=f"{prefix}.confirming_views",
                shown=", ".join(sorted(v for v in seen if v)) or "none",
            )
        )
    advances, unconfirmed, _ = advances_and_confirmation(log, step, pose_depths, shot_views)
    return metrics, {
        "advances": advances,
        "unconfirmed": unconfirmed,
        "withdrawals": withdrawals,
        "redirections": redirections,
    }
