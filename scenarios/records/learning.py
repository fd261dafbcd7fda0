"""Learning curves: a trainee's attempts as series (score, time, shots, dose) and cohort summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean, median

from fluorosim.scenarios.records.cusum import CusumChart, CusumParameters, binary_cusum, lc_cusum
from fluorosim.scenarios.records.database import AttemptRow

#: Metric names (as the scoring report names them) plotted on the learning curve.
CURVE_METRICS = {
    "total_time_s": "Total time (s)",
    "shots": "Shots",
    "kap_gycm2": "Kerma-area product (Gy·cm²)",
    "beam_on_s": "Fluoroscopy time (s)",
}


@dataclass
class LearningCurve:
    """One trainee's attempts at one scenario (or all), in order, with the CUSUM of failures."""

    trainee_id: str
    scenario_id: str | None
    attempt_ids: list[int] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    passed: list[bool | None] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    cusum: CusumChart | None = None
    lc_cusum: CusumChart | None = None

    @property
    def attempts(self) -> int:
        return len(self.attempt_ids)

    @property
    def pass_rate(self) -> float | None:
        known = [p for p in self.passed if p is not None]
        return sum(known) / len(known) if known else None


def attempt_duration_s(row: AttemptRow) -> float | None:
    """Wall-clock length of an attempt from its start and finish times."""
    if not row.finished_utc:
        return None
    try:
        return (
            datetime.fromisoformat(row.finished_utc) - datetime.fromisoformat(row.started_utc)
        ).total_seconds()
    except ValueError:
        return None


def learning_curve(
    rows: list[AttemptRow],
    trainee_id: str,
    scenario_id: str | None = None,
    params: CusumParameters | None = None,
) -> LearningCurve:
    """The learning curve of ``trainee_id`` from stored attempt rows (finished attempts only)."""
    curve = LearningCurve(trainee_id, scenario_id, series={name: [] for name in CURVE_METRICS})
    for row in rows:
        if row.trainee_id != trainee_id or (scenario_id and row.scenario_id != scenario_id):
            continue
        if row.status != "finished":
            continue
        curve.attempt_ids.append(row.id)
        curve.scores.append(row.score)
        curve.passed.append(row.passed)
        for name in CURVE_METRICS:
            value = row.metrics.get(name, {}).get("value")
            if value is None and name == "total_time_s":
                value = attempt_duration_s(row)
            curve.series[name].append(None if value is None else float(value))
    outcomes = [p is False for p in curve.passed if p is not None]
    curve.cusum = binary_cusum(outcomes, params)
    curve.lc_cusum = lc_cusum(outcomes, params)
    return curve


def cohort_summary(rows: list[AttemptRow]) -> list[dict]:
    """Per trainee: attempts, pass rate, median and best score, attempts to first pass."""
    by_trainee: dict[str, list[AttemptRow]] = {}
    for row in rows:
        if row.status == "finished":
            by_trainee.setdefault(row.trainee_id, []).append(row)
    summary = []
    for trainee_id, attempts in sorted(by_trainee.items()):
        scores = [a.score for a in attempts if a.score is not None]
        first_pass = next((i for i, a in enumerate(attempts, start=1) if a.passed), None)
        summary.append(
            {
                "trainee_id": trainee_id,
                "attempts": len(attempts),
                "pass_rate": sum(bool(a.passed) for a in attempts) / len(attempts),
                "median_score": median(scores) if scores else None,
                "best_score": max(scores) if scores else None,
                "mean_score": mean(scores) if scores else None,
                "attempts_to_first_pass": first_pass,
            }
        )
    return summary
