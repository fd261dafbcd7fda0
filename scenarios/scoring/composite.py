"""The composite score and the whole report of an attempt.

Composite = 100 × Σ(weight × credit) / Σ(weight) over the measured metrics (credit 0–1, graded for
continuous metrics). The attempt passes when the composite reaches the scenario's pass mark
(procedures.md: contrasting-groups method, Pedersen 2014 — novices 30 %, experienced 76 % of the
maximum, pass mark 58 %) AND no critical metric failed (a major breach, an implant not crossing the
joint, the wrong level or structure, a final position never confirmed on the required views); a
critical failure scales the composite into 0 … pass mark − 10 (the weighted mean is kept in the
summary). Every metric's weight, tolerance and credit curve comes from the scenario file
(:mod:`scenarios.scoring.credit`). A step never done weighs what a completed step would, at zero
credit. The number of shots has a small weight: alone it did not separate novices from experts
(procedures.md).
"""

from __future__ import annotations

from typing import Any

from fluorosim.models.instruments import InstrumentSpec
from fluorosim.models.patient import Patient
from fluorosim.scenarios.attempt import AttemptLog
from fluorosim.scenarios.scoring import report_text
from fluorosim.scenarios.scoring.breaches import breach_timeline
from fluorosim.scenarios.scoring.credit import scored
from fluorosim.scenarios.scoring.dose_metrics import dose_metrics
from fluorosim.scenarios.scoring.procedure_endo import ield_metrics, teld_metrics
from fluorosim.scenarios.scoring.procedure_sij import sij_lateral_metrics, sij_posterior_metrics
from fluorosim.scenarios.scoring.report import Metric, Report
from fluorosim.scenarios.scoring.steps import step_metrics
from fluorosim.scenarios.scoring.views import ShotView, classify_shots, pose_error
from fluorosim.scenarios.spec import Scenario

PROCEDURE_METRICS = {
    "sij_lateral": sij_lateral_metrics,
    "sij_posterior": sij_posterior_metrics,
    "teld": teld_metrics,
    "ield": ield_metrics,
}


#: How far below the pass mark a critical failure keeps the composite (percentage points).
CRITICAL_CAP_BELOW_PASS_MARK = 10.0


def capped_score(weighted_mean: float, pass_mark_pct: float, critical_failed: bool) -> float:
    """The composite shown: a failed critical check (a major breach, the wrong target, an implant
    not crossing the joint…) scales it into 0 … pass mark − 10, so the number never reads as a pass
    on an attempt that failed yet still ranks a better failed attempt above a worse one (a cap
    would score every failed attempt alike); the weighted mean itself is kept in the summary."""
    if critical_failed:
        ceiling = max(0.0, pass_mark_pct - CRITICAL_CAP_BELOW_PASS_MARK)
        return weighted_mean * ceiling / 100.0
    return weighted_mean


def composite_score(metrics: list[Metric]) -> float:
    """Weighted mean credit in percent over the measured metrics."""
    total = weights = 0.0
    for metric in metrics:
        credit = metric.effective_credit()
        if credit is None:
            continue
        total += metric.weight * credit
        weights += metric.weight
    return 100.0 * total / weights if weights else 0.0


def _view_step_metrics(
    scenario: Scenario, patient: Patient, log: AttemptLog, step, number: int
) -> list[Metric]:
    shots = log.shots_in_step(step.id)
    label = f"Step {number} ({step.title})"
    angle_def = step.metric("view_angle_deg")
    if not shots:
        return [
            Metric(
                f"{step.id}.view_obtained",
                False,
                "",
                "a shot in the view",
                False,
                weight=sum(d.weight for d in step.metrics.values()),
                critical=True,
                finding=f"{label}: no shot was taken.",
            )
        ]
    final = shots[-1]
    angle, position = pose_error(patient, scenario, step, final.joints, step.view)
    position_def = step.metric("view_position_mm")
    shots_def = step.metric("shots_to_view")
    return [
        scored(
            angle_def,
            angle,
            f"{label}: the last shot was {angle:.1f}° from the ideal "
            f"{step.view.replace('_', ' ')} for this patient (allowed {angle_def.allowed():g}°).",
            name=f"{step.id}.view_angle_deg",
        ),
        scored(
            position_def,
            position,
            f"{label}: the target was {position:.0f} mm off the centre of the beam "
            f"(allowed {position_def.allowed():g} mm).",
            name=f"{step.id}.view_position_mm",
        ),
        scored(
            shots_def,
            len(shots),
            f"{label}: {len(shots)} shots to reach the view (aim for ≤ {shots_def.allowed():g}).",
            name=f"{step.id}.shots_to_view",
        ),
    ]


def score_attempt(
    scenario: Scenario,
    patient: Patient,
    log: AttemptLog,
    catalogue: dict[str, InstrumentSpec],
    carm_model: str = "ii9",
) -> Report:
    """Score a finished attempt: every metric, breaches, composite, pass/fail and findings."""
    lengths = {name: spec.length_mm for name, spec in catalogue.items()}
    shot_views: dict[int, ShotView] = {
        v.shot: v for v in classify_shots(patient, scenario, log.shots)
    }
    metrics: list[Metric] = []
    totals = {"advances": 0, "unconfirmed": 0}
    for number, step in enumerate(scenario.steps, start=1):
        if step.kind == "view":
            metrics.extend(_view_step_metrics(scenario, patient, log, step, number))
            continue
        step_list, counts = step_metrics(scenario, patient, log, step, lengths, shot_views, number)
        metrics.extend(step_list)
        totals["advances"] += counts["advances"]
        totals["unconfirmed"] += counts["unconfirmed"]
    breaches = breach_timeline(scenario, patient, log, lengths, carm_model)
    major = [b for b in breaches if b.severity == "major"]
    minor = [b for b in breaches if b.severity == "minor"]
    if scenario.procedure != "view_drill":
        deepest = max((b.depth_mm for b in major), default=0.0)
        metrics.append(
            scored(
                scenario.metric("breaches_major"),
                deepest,
                None,  # each breach has its own finding
                shown=f"{len(major)} (deepest {deepest:.1f} mm)" if major else "0",
            )
        )
        metrics.append(scored(scenario.metric("breaches_minor"), len(minor), None))
        if shot_views:
            mean_angle = sum(v.angle_deg for v in shot_views.values()) / len(shot_views)
            metrics.append(
                scored(
                    scenario.metric("view_quality_deg"),
                    mean_angle,
                    f"On average a shot was {mean_angle:.1f}° from the nearest ideal view.",
                )
            )
    procedure = PROCEDURE_METRICS.get(scenario.procedure)
    if procedure is not None:
        metrics.extend(procedure(scenario, patient, log))
    metrics.extend(dose_metrics(scenario, log, totals["advances"], totals["unconfirmed"]))
    by_name = {m.name: m for m in metrics}
    weighted_mean = composite_score(metrics)
    critical_failures = [m for m in metrics if m.critical and m.passed is False]
    score = capped_score(weighted_mean, scenario.pass_mark_pct, bool(critical_failures))
    passed = score >= scenario.pass_mark_pct and not critical_failures
    events = _events(log, breaches, shot_views)
    findings = report_text.findings(scenario, log, metrics, breaches, shot_views)
    summary = report_text.summary(scenario, score, passed, critical_failures, weighted_mean)
    return Report(
        scenario=scenario.id,
        score=score,
        passed=passed,
        pass_mark=scenario.pass_mark_pct,
        metrics=by_name,
        breaches=[b.as_json() for b in breaches],
        events=events,
        findings=findings,
        summary=summary,
    )


def _events(log: AttemptLog, breaches, shot_views: dict[int, ShotView]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for t_s, step_id in log.step_changes:
        events.append({"t_s": round(t_s, 3), "kind": "step", "step": step_id})
    for shot in log.shots:
        view = shot_views.get(shot.index)
        events.append(
            {
                "t_s": round(shot.t_s, 3),
                "kind": "shot",
                "shot": shot.index,
                "mode": shot.mode,
                "frames": shot.frames,
                "view": view.view if view else shot.view,
                "view_error_deg": round(view.angle_deg, 2) if view else None,
                "image_ids": list(shot.image_ids),
                "hand_in_beam": shot.hand_in_beam,
            }
        )
    for breach in breaches:
        events.append({"t_s": round(breach.t_s, 3), "kind": "breach", **breach.as_json()})
    for implant in log.implants:
        events.append(
            {
                "t_s": round(implant.t_s, 3),
                "kind": "implant",
                "name": implant.name,
                "step": implant.step_id,
            }
        )
    for t_s, what in log.refused:
        events.append({"t_s": round(t_s, 3), "kind": "refused", "what": what})
    if log.finished_t_s is not None:
        events.append({"t_s": round(log.finished_t_s, 3), "kind": "finish"})
    order = {"step": 0, "shot": 1, "breach": 2, "implant": 3, "refused": 4, "finish": 5}
    events.sort(key=lambda e: (e["t_s"], order[e["kind"]]))
    return events
