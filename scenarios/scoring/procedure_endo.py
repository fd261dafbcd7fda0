"""Endoscopic decompression checks: TELD cannula position in Kambin's triangle and distances to the
exiting root and the dura; IELD level and dural clearance. Rules: reference/procedures.md.

Kambin position = distance between the cannula axis (its last 30 mm) and the triangle spanned by
``kambin_<disc>_<side>_apex/base_medial/base_lateral`` (0 = it passes through the triangle); the
L4-5 inscribed circle is only 7.3–8.2 mm across, so the tolerance is 4 mm. Clearances as in procedure_sij (exact EDT).
"""

from __future__ import annotations

import numpy as np

from fluorosim.models.patient import Patient
from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.attempt import AttemptLog
from fluorosim.scenarios.points import landmark_point
from fluorosim.scenarios.scoring.credit import scored
from fluorosim.scenarios.scoring.geometry import distance_to_labels_mm
from fluorosim.scenarios.scoring.report import Metric
from fluorosim.scenarios.scoring.steps import nearby_labels
from fluorosim.scenarios.spec import Scenario


def _values(patient: Patient, pattern: str) -> list[int]:
    return [
        patient.label_table[n]
        for n in vocabulary.matching_labels(pattern, set(patient.label_table))
    ]


def _final_axis(log: AttemptLog, step_id: str, length_mm: float = 30.0) -> np.ndarray | None:
    final = log.final_pose(step_id)
    if final is None:
        return None
    distances = np.arange(0.0, length_mm + 1e-9, 0.5)
    return final.tip_lps_mm[None, :] - distances[:, None] * final.direction_lps[None, :]


def axis_to_triangle_mm(
    a0: np.ndarray,
    a1: np.ndarray,
    apex: np.ndarray,
    base_medial: np.ndarray,
    base_lateral: np.ndarray,
) -> float:
    """Shortest distance between the axis segment a0–a1 and the triangle (0 when it passes through).

    The triangle is sampled on a 41×41 barycentric grid (≤ 0.5 mm apart for Kambin's ≈12 mm
    sides), the segment every 0.25 mm.
    """
    n = 41
    u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    keep = u + v <= 1.0
    u, v = u[keep], v[keep]
    tri = apex + u[:, None] * (base_medial - apex) + v[:, None] * (base_lateral - apex)
    length = float(np.linalg.norm(a1 - a0))
    t = np.linspace(0.0, 1.0, max(2, int(length / 0.25) + 1))
    seg = a0 + t[:, None] * (a1 - a0)
    best = np.inf
    for chunk in np.array_split(seg, max(1, len(seg) // 40)):
        d = np.linalg.norm(chunk[:, None, :] - tri[None, :, :], axis=-1).min()
        best = min(best, float(d))
    return best


def teld_metrics(scenario: Scenario, patient: Patient, log: AttemptLog) -> list[Metric]:
    """Kambin position of the working cannula, root and dural clearance of every instrument."""
    side = scenario.side or "left"
    disc = scenario.level or "L4_L5"
    upper = disc.split("_")[0]
    metrics: list[Metric] = []
    cannula_step = scenario.steps[-1]
    axis = _final_axis(log, cannula_step.id)
    if axis is not None:
        triangle = [
            landmark_point(patient, f"kambin_{disc}_{side}_{corner}", side)
            for corner in ("apex", "base_medial", "base_lateral")
        ]
        offset = axis_to_triangle_mm(axis[0], axis[-1], *triangle)
        definition = scenario.metric("cannula_kambin_offset_mm")
        tip = axis[0]
        tip_label = patient.label_name(int(patient.labels_at(tip[None, :])[0]))
        metrics.append(
            scored(
                definition,
                offset,
                f"Outside Kambin's triangle: the working cannula passes {offset:.1f} mm outside "
                f"the {disc.replace('_', '-')} triangle (allowed {definition.allowed():g} mm); "
                f"its tip is in the {vocabulary.plain_label(tip_label)}.",
            )
        )
    axes = [a for a in (_final_axis(log, s.id, 60.0) for s in scenario.steps) if a is not None]
    if axes:
        points = np.concatenate(axes)
        for name, pattern, words in (
            ("exiting_root_clearance_mm", f"root_{upper}_{side}", f"exiting {upper} root"),
            ("dura_clearance_mm", "thecal_sac", "dura"),
        ):
            clearance = distance_to_labels_mm(patient, points, _values(patient, pattern))
            definition = scenario.metric(name)
            metrics.append(
                scored(
                    definition,
                    clearance,
                    f"The instruments came within {clearance:.1f} mm of the {words} "
                    f"(keep ≥ {definition.allowed():g} mm).",
                )
            )
    return metrics


def ield_metrics(scenario: Scenario, patient: Patient, log: AttemptLog) -> list[Metric]:
    """Right level and dural clearance of the interlaminar approach."""
    metrics: list[Metric] = []
    last = scenario.steps[-1]
    final = log.final_pose(last.id)
    if final is None:
        return metrics
    window = landmark_point(patient, "interlaminar_L5_S1_center", scenario.side)
    axial_offset = abs(float(final.tip_lps_mm[2] - window[2]))
    direction = "cranial" if final.tip_lps_mm[2] > window[2] else "caudal"
    definition = scenario.metric("level_offset_mm")
    tip = final.tip_lps_mm
    tip_label = patient.label_name(int(patient.labels_at(tip[None, :])[0]))
    near = [vocabulary.plain_label(n) for n in nearby_labels(patient, tip, {tip_label}, 8.0)[:3]]
    metrics.append(
        scored(
            definition,
            axial_offset,
            f"Wrong level: the cannula is {axial_offset:.0f} mm {direction} to the L5-S1 "
            f"interlaminar window (allowed {definition.allowed():g} mm); its tip is in the "
            f"{vocabulary.plain_label(tip_label)}"
            + (f" near the {', '.join(near)}." if near else "."),
        )
    )
    axis = _final_axis(log, last.id, 40.0)
    assert axis is not None
    clearance = distance_to_labels_mm(patient, axis, _values(patient, "thecal_sac"))
    definition = scenario.metric("dura_clearance_mm")
    metrics.append(
        scored(
            definition,
            clearance,
            f"The cannula tip came within {clearance:.1f} mm of the dura "
            f"(keep ≥ {definition.allowed():g} mm; stop at the ligamentum flavum).",
        )
    )
    return metrics
