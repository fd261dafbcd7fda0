"""The score report: metrics with value, unit, reference and pass/fail, breaches, events, findings.

``Report.as_json()`` is the cross-package contract (``fluorosim replay --json``, the records
database, the GUI)::

    {"scenario", "score" (0–100), "passed", "pass_mark",
     "metrics": {name: {"value", "unit", "reference", "passed"}},
     "breaches": [{"structure", "depth_mm", "t_s", "shot", ...}],
     "events": [...], "findings": [plain-words strings]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One measured quantity of an attempt.

    ``credit`` (0–1) is its contribution to the composite, ``weight`` its share; a ``critical``
    metric that fails fails the attempt whatever the composite. ``finding`` is the plain-words
    sentence the trainee reads when it fails (or notable when it passes).
    """

    name: str
    value: float | int | bool | str | None
    unit: str
    reference: str
    passed: bool | None
    weight: float = 1.0
    credit: float | None = None
    critical: bool = False
    finding: str | None = None

    def effective_credit(self) -> float | None:
        """Credit used in the composite (None: not measured, left out)."""
        if self.passed is None:
            return None
        if self.credit is not None:
            return max(0.0, min(1.0, self.credit))
        return 1.0 if self.passed else 0.0

    def as_json(self) -> dict[str, Any]:
        """The report's metric entry."""
        value = self.value
        if isinstance(value, float):
            value = round(value, 3) if math.isfinite(value) else None
        return {
            "value": value,
            "unit": self.unit,
            "reference": self.reference,
            "passed": self.passed,
            "weight": self.weight,
            "critical": self.critical,
        }


@dataclass
class Report:
    """The scored attempt."""

    scenario: str
    score: float
    passed: bool
    pass_mark: float
    metrics: dict[str, Metric]
    breaches: list[dict[str, Any]]
    events: list[dict[str, Any]]
    findings: list[str]
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (see module docstring)."""
        return {
            "scenario": self.scenario,
            "score": round(self.score, 2),
            "passed": self.passed,
            "pass_mark": self.pass_mark,
            "summary": self.summary,
            "metrics": {name: m.as_json() for name, m in self.metrics.items()},
            "breaches": self.breaches,
            "events": self.events,
            "findings": self.findings,
        }

    def to_json_text(self) -> str:
        """Canonical JSON text (sorted keys) — equal reports give equal text."""
        return json.dumps(self.as_json(), sort_keys=True, indent=2)
