"""Metric definitions and their credit curves: how far a measured value may stray before it costs.

Every scored quantity is defined in the scenario file (``[metrics.<name>]``, validated on load by
:mod:`scenarios.schema`); this module holds the typed definition and the arithmetic, nothing else.
A definition says which side of its ``reference`` is wrong (``sense``), how far the value may
stray with full credit (``tolerance``) and where the credit reaches zero (``limit``, measured from
the reference like the tolerance). Between the two the credit falls along ``curve``:

* ``linear``      1 − s, with s = (deviation − tolerance) / (limit − tolerance) clipped to 0…1;
* ``smoothstep``  1 − s²(3 − 2s): gentle just past the tolerance, steepest half-way, gentle again;
* ``pass_fail``   a yes/no check (crossed the joint, confirmed on the views): credit 1 or 0.

Deviation by sense: ``at_most`` (distances, errors, counts) value − reference; ``at_least``
(clearances, depth, spacing) reference − value; ``near`` (a depth to hit) |value − reference|.
Negative deviations are on the good side and count as zero. A metric *passes* while its deviation
is within ``fail_beyond`` (default: the tolerance), so a metric can lose credit gradually before it
is marked failed (tip to target: full credit within 1 mm, failed beyond 5 mm, no credit at 30 mm);
a failing ``critical`` metric fails the whole attempt — from ``critical_beyond`` on when that is
given (tip to target: a tip 15 mm or more from the target has missed it grossly).

The names every procedure must define, with the unit the code measures them in, are listed in
:data:`STEP_METRICS`, :data:`VIEW_STEP_METRICS`, :data:`ATTEMPT_METRICS` and
:data:`PROCEDURE_METRICS`; the loader refuses a file that leaves one out, adds an unknown one or
states another unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluorosim.scenarios.scoring.report import Metric

SENSES = ("at_most", "at_least", "near")
CURVES = ("linear", "smoothstep", "pass_fail")

#: Metrics of every trajectory step (name → unit), reported as ``<step id>.<name>``.
STEP_METRICS: dict[str, str] = {
    "tip_to_target_mm": "mm",
    "trajectory_axial_deg": "deg",
    "trajectory_sagittal_deg": "deg",
    "final_position": "",
    "crosses": "",
    "withdrawals": "count",
    "redirections": "count",
    "path_in_tissue_ratio": "x depth",
    "confirming_views": "",
}
#: Metrics of every C-arm view step.
VIEW_STEP_METRICS: dict[str, str] = {
    "view_angle_deg": "deg",
    "view_position_mm": "mm",
    "shots_to_view": "count",
}
#: Metrics of the whole attempt (instrument procedures; drills use the exposure ones only).
ATTEMPT_METRICS: dict[str, str] = {
    "breaches_major": "mm",
    "breaches_minor": "count",
    "view_quality_deg": "deg",
    "shots_per_advance": "shots",
    "unconfirmed_advances": "count",
}
EXPOSURE_METRICS: dict[str, str] = {
    "shots": "count",
    "beam_on_s": "s",
    "kap_gycm2": "Gy·cm²",
    "air_kerma_mgy": "mGy",
    "hands_in_beam": "shots",
    "total_time_s": "s",
}
#: Procedure-specific metrics.
PROCEDURE_METRICS: dict[str, dict[str, str]] = {
    "sij_lateral": {
        "implants_placed": "count",
        "implant_crosses_joint": "",
        "implant_depth_past_joint_mm": "mm",
        "implant_spacing_mm": "mm",
        "midline_margin_mm": "mm",
        "foraminal_clearance_mm": "mm",
        "ventral_clearance_mm": "mm",
    },
    "sij_posterior": {
        "in_joint_mm": "mm",
        "joint_height_fraction": "fraction",
        "short_of_anterior_margin_mm": "mm",
    },
    "teld": {
        "cannula_kambin_offset_mm": "mm",
        "exiting_root_clearance_mm": "mm",
        "dura_clearance_mm": "mm",
    },
    "ield": {
        "level_offset_mm": "mm",
        "dura_clearance_mm": "mm",
    },
    "view_drill": {},
}
#: Step metrics whose tolerance, fail_beyond, limit and weight a step may override.
STEP_OVERRIDABLE = ("tolerance", "fail_beyond", "critical_beyond", "limit", "weight")


def required_metrics(procedure: str, step_kinds: set[str]) -> dict[str, str]:
    """Every metric name (→ unit) a scenario of this procedure with these step kinds must define."""
    names: dict[str, str] = {}
    if "trajectory" in step_kinds:
        names.update(STEP_METRICS)
    if "view" in step_kinds:
        names.update(VIEW_STEP_METRICS)
    if procedure != "view_drill":
        names.update(ATTEMPT_METRICS)
    names.update(EXPOSURE_METRICS)
    names.update(PROCEDURE_METRICS.get(procedure, {}))
    return names


@dataclass(frozen=True)
class MetricDef:
    """How one metric is scored (see the module docstring)."""

    name: str
    unit: str
    sense: str = "at_most"
    reference: float = 0.0
    tolerance: float = 0.0
    limit: float = 1.0
    curve: str = "linear"
    weight: float = 1.0
    critical: bool = False
    fail_beyond: float | None = None  # None: the tolerance
    critical_beyond: float | None = None  # None: a critical metric fails the attempt once failed

    def critical_at(self, value: float | bool) -> bool:
        """Whether this value fails the whole attempt."""
        if not self.critical or self.passes(value):
            return False
        if self.curve == "pass_fail" or self.critical_beyond is None:
            return True
        return self.deviation(float(value)) > self.critical_beyond

    @property
    def pass_deviation(self) -> float:
        """Largest deviation that still passes."""
        return self.tolerance if self.fail_beyond is None else self.fail_beyond

    def deviation(self, value: float) -> float:
        """How far ``value`` is on the wrong side of the reference (0 on the good side)."""
        if self.sense == "at_least":
            raw = self.reference - value
        elif self.sense == "near":
            raw = abs(value - self.reference)
        else:
            raw = value - self.reference
        return max(0.0, float(raw)) if math.isfinite(raw) else math.inf

    def credit(self, value: float | bool) -> float:
        """Credit 0–1 of a measured value along the curve."""
        if self.curve == "pass_fail":
            return 1.0 if self.passes(value) else 0.0
        deviation = self.deviation(float(value))
        if deviation <= self.tolerance:
            return 1.0
        if deviation >= self.limit:
            return 0.0
        s = (deviation - self.tolerance) / (self.limit - self.tolerance)
        if self.curve == "smoothstep":
            return 1.0 - s * s * (3.0 - 2.0 * s)
        return 1.0 - s

    def passes(self, value: float | bool) -> bool:
        """Whether the value is within the tolerance (a yes/no metric: whether it is yes)."""
        if self.curve == "pass_fail":
            return bool(value)
        return self.deviation(float(value)) <= self.pass_deviation + 1e-9

    def allowed(self) -> float:
        """The worst value that still passes (reference ± pass deviation on the wrong side)."""
        if self.sense == "at_least":
            return self.reference - self.pass_deviation
        return self.reference + self.pass_deviation

    def reference_text(self) -> str:
        """The reference as the report shows it, e.g. ``≤ 2 mm (no credit from 12 mm)``."""
        unit = f" {self.unit}" if self.unit and self.unit not in ("count", "fraction") else ""
        if self.curve == "pass_fail":
            return "yes"
        if self.sense == "near":
            return (
                f"{self.reference:g} ± {self.pass_deviation:g}{unit} "
                f"(no credit beyond ± {self.limit:g}{unit})"
            )
        if self.sense == "at_least":
            zero = self.reference - self.limit
            return f"≥ {self.allowed():g}{unit} (no credit at {zero:g}{unit} or less)"
        zero = self.reference + self.limit
        return f"≤ {self.allowed():g}{unit} (no credit from {zero:g}{unit})"

    def with_overrides(self, **values: float) -> MetricDef:
        """A copy with some of :data:`STEP_OVERRIDABLE` (or the reference) replaced."""
        changes: dict[str, Any] = {k: float(v) for k, v in values.items() if v is not None}
        return replace(self, **changes)


def scored(
    definition: MetricDef,
    value: float | bool,
    finding: str | None,
    name: str | None = None,
    shown: float | int | bool | str | None = None,
) -> Metric:
    """A report metric measured against its definition (credit, pass/fail, weight, critical).

    ``name`` is the report's name (``<step>.tip_to_target_mm``; default the definition's);
    ``shown`` replaces the value displayed (e.g. a classification in words) when given.
    """
    from fluorosim.scenarios.scoring.report import Metric

    passed = definition.passes(value)
    return Metric(
        name or definition.name,
        value if shown is None else shown,
        "" if definition.unit in ("count",) else definition.unit,
        definition.reference_text(),
        passed,
        weight=definition.weight,
        credit=definition.credit(value),
        critical=definition.critical_at(value),
        finding=finding,
    )
