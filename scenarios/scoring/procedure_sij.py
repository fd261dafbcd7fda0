"""SI-joint fusion checks: joint crossing, implant spacing and depth, foraminal and ventral-ala
clearance, tips short of the sacral midline (lateral transiliac); joint entry, inferior third and depth short of the anterior margin
(posterior intra-articular). Rules and numbers: reference/procedures.md.

Clearances are the exact Euclidean distance (voxel-centre accuracy) from the implant or final pin
axis to the nearest voxel of the structure's label, capped at 30 mm.
"""

from __future__ import annotations

import numpy as np

from fluorosim.models.patient import Patient
from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.attempt import AttemptLog
from fluorosim.scenarios.points import joint_band, landmark_point
from fluorosim.scenarios.scoring.credit import scored
from fluorosim.scenarios.scoring.geometry import (
    SHAFT_STEP_MM,
    distance_to_labels_mm,
    segment_distance_mm,
)
from fluorosim.scenarios.scoring.report import Metric
from fluorosim.scenarios.spec import Scenario


def _values(patient: Patient, pattern: str) -> list[int]:
    return [
        patient.label_table[n]
        for n in vocabulary.matching_labels(pattern, set(patient.label_table))
    ]


def _axis_points(tip: np.ndarray, direction: np.ndarray, length_mm: float) -> np.ndarray:
    distances = np.arange(0.0, length_mm + 1e-9, SHAFT_STEP_MM)
    return tip[None, :] - distances[:, None] * direction[None, :]


def _implant_axes(log: AttemptLog) -> list[tuple[str, np.ndarray]]:
    """(name, axis points) of each implant placed."""
    return [
        (f"implant {i + 1}", _axis_points(imp.tip_lps_mm, imp.direction_lps, imp.length_mm))
        for i, imp in enumerate(log.implants)
    ]


def sij_lateral_metrics(scenario: Scenario, patient: Patient, log: AttemptLog) -> list[Metric]:
    """Implant-level checks of the lateral transiliac fusion."""
    side = scenario.side or "left"
    joint = _values(patient, f"sij_space_{side}")
    metrics: list[Metric] = []
    expected = sum(1 for s in scenario.steps if s.implant)
    placed = len(log.implants)
    metrics.append(
        scored(
            scenario.metric("implants_placed").with_overrides(reference=expected),
            placed,
            f"{placed} of {expected} implants were placed.",
        )
    )
    axes = _implant_axes(log)
    for name, points in axes:
        labels = patient.labels_at(points)
        in_joint = np.nonzero(np.isin(labels, joint))[0]
        crossed = len(in_joint) > 0
        depth_past = float(in_joint.min() * SHAFT_STEP_MM) if crossed else 0.0
        implant = name.split()[-1]
        metrics.append(
            scored(
                scenario.metric("implant_crosses_joint"),
                crossed,
                None if crossed else f"Implant {implant} does not cross the {side} SI joint.",
                name=f"implant_{implant}.crosses_joint",
            )
        )
        depth_def = scenario.metric("implant_depth_past_joint_mm")
        metrics.append(
            scored(
                depth_def,
                depth_past,
                f"Implant {implant} reaches only {depth_past:.1f} mm into the sacrum past the "
                f"joint (at least {depth_def.allowed():g} mm).",
                name=f"implant_{implant}.depth_past_joint_mm",
            )
        )
    if len(log.implants) >= 2:
        spacings = []
        for i in range(len(log.implants)):
            for j in range(i + 1, len(log.implants)):
                a, b = log.implants[i], log.implants[j]
                spacings.append(
                    (
                        segment_distance_mm(
                            a.tip_lps_mm,
                            a.tip_lps_mm - a.length_mm * a.direction_lps,
                            b.tip_lps_mm,
                            b.tip_lps_mm - b.length_mm * b.direction_lps,
                        ),
                        i + 1,
                        j + 1,
                    )
                )
        spacing, i, j = min(spacings)
        spacing_def = scenario.metric("implant_spacing_mm")
        metrics.append(
            scored(
                spacing_def,
                spacing,
                f"Implants {i} and {j} are only {spacing:.1f} mm apart (axis to axis); "
                f"space them at least {spacing_def.allowed():g} mm (15–22 mm, 22 more stable).",
            )
        )
    midline_x = float(landmark_point(patient, "S1_body_center", side)[0])
    lateral_sign = 1.0 if side == "left" else -1.0
    tips = [(f"implant {i + 1}", imp.tip_lps_mm) for i, imp in enumerate(log.implants)]
    for number, step in enumerate(scenario.steps, start=1):
        final = log.final_pose(step.id)
        if final is not None:
            tips.append((f"pin {number}", final.tip_lps_mm))
    if tips:
        margins = [(lateral_sign * (float(tip[0]) - midline_x), name) for name, tip in tips]
        margin, which = min(margins)
        metrics.append(
            scored(
                scenario.metric("midline_margin_mm"),
                margin,
                f"The {which} tip crossed the sacral midline by {-margin:.1f} mm "
                "(toward the canal and the opposite foramina).",
            )
        )
    all_points = [points for _, points in axes]
    for step in scenario.steps:
        final = log.final_pose(step.id)
        if final is not None:
            all_points.append(_axis_points(final.tip_lps_mm, final.direction_lps, 60.0))
    if all_points:
        points = np.concatenate(all_points)
        for name, pattern, words in (
            ("foraminal_clearance_mm", f"root_S1_{side}|root_S2_{side}", "S1/S2 foramen roots"),
            ("ventral_clearance_mm", f"root_L5_{side}", "L5 root on the ventral ala"),
        ):
            values = [v for part in pattern.split("|") for v in _values(patient, part)]
            clearance = distance_to_labels_mm(patient, points, values)
            definition = scenario.metric(name)
            metrics.append(
                scored(
                    definition,
                    clearance,
                    f"The closest pin or implant came {clearance:.1f} mm from the {words} "
                    f"(keep ≥ {definition.allowed():g} mm).",
                )
            )
    return metrics


def sij_posterior_metrics(scenario: Scenario, patient: Patient, log: AttemptLog) -> list[Metric]:
    """Joint entry, inferior third and depth of the posterior intra-articular approach."""
    side = scenario.side or "left"
    step = next(s for s in scenario.steps if s.kind == "trajectory")
    final = log.final_pose(step.id)
    if final is None:
        return []
    tip = final.tip_lps_mm
    joint_distance = distance_to_labels_mm(
        patient, tip[None, :], _values(patient, f"sij_space_{side}")
    )
    tip_label = patient.label_name(int(patient.labels_at(tip[None, :])[0]))
    metrics = [
        scored(
            scenario.metric("in_joint_mm"),
            joint_distance,
            f"The dowel missed the joint: its tip is {joint_distance:.1f} mm from the {side} SI "
            f"joint space, in the {vocabulary.plain_label(tip_label)}.",
        )
    ]
    surface = np.asarray(patient.landmark(f"sij_surface_{side}"), dtype=np.float64).reshape(-1, 3)
    z = surface[:, 2]
    fraction = float((tip[2] - z.min()) / max(z.max() - z.min(), 1e-6))
    metrics.append(
        scored(
            scenario.metric("joint_height_fraction"),
            fraction,
            f"The dowel sits at {fraction * 100:.0f} % of the joint height; the target is "
            "the inferior third (too cranial risks the L5-S1 facet).",
        )
    )
    anterior, posterior = joint_band(surface, min(max(fraction, 0.0), 1.0))
    line = posterior - anterior
    line /= max(float(np.linalg.norm(line)), 1e-9)
    short = float(np.dot(tip - anterior, line))
    definition = scenario.metric("short_of_anterior_margin_mm")
    metrics.append(
        scored(
            definition,
            short,
            (
                f"The tip stopped {short:.1f} mm short of the anterior joint margin "
                if short >= 0
                else f"The tip went {-short:.1f} mm past the anterior joint margin "
            )
            + f"(aim {definition.reference:g} ± {definition.pass_deviation:g} mm short; past the "
            "margin are the internal iliac vessels and the lumbosacral trunk).",
        )
    )
    return metrics
