"""Per-trainee credentialing reports: the data, and writers for JSON, CSV and PDF.

A committee reads the PDF without the app: who the trainee is, every attempt with its score and
pass/fail, the learning curve and the CUSUM chart with its decision limits, the instructors'
sign-offs, and the ledger status (whether the records verify, and the head hash to compare with any
earlier copy of the report).
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluorosim.scenarios.loader import shipped_scenarios
from fluorosim.scenarios.records.cusum import CusumParameters
from fluorosim.scenarios.records.database import Actor, RecordStore
from fluorosim.scenarios.records.learning import learning_curve
from fluorosim.scenarios.records.verification import VerificationResult

REPORT_SECTIONS = (
    "Trainee",
    "Summary",
    "Attempts",
    "Learning curve",
    "CUSUM",
    "LC-CUSUM",
    "Pass/fail history",
    "Sign-offs",
    "Ledger status",
    "Signatures",
)


#: Programme setting keys of the CUSUM parameters.
CUSUM_SETTING_KEYS = {
    "p0": "cusum_p0",
    "p1": "cusum_p1",
    "alpha": "cusum_alpha",
    "beta": "cusum_beta",
}


def cusum_parameters_for(store: RecordStore, programme: str = "default") -> CusumParameters:
    """The programme's CUSUM settings (p0, p1, alpha, beta), defaults from procedures.md."""
    settings = store.programme_settings(programme)
    return CusumParameters(
        p0=float(settings.get(CUSUM_SETTING_KEYS["p0"], 0.10)),
        p1=float(settings.get(CUSUM_SETTING_KEYS["p1"], 0.20)),
        alpha=float(settings.get(CUSUM_SETTING_KEYS["alpha"], 0.10)),
        beta=float(settings.get(CUSUM_SETTING_KEYS["beta"], 0.10)),
    )


def set_cusum_parameters(
    store: RecordStore, programme: str, values: dict[str, float], actor: Actor
) -> CusumParameters:
    """Store the programme's CUSUM p0, p1, α, β (each signed and logged in the ledger; instructors
    only). ValueError when the values do not make a CUSUM; RecordsError when not permitted."""
    params = CusumParameters(**values)
    for name, value in values.items():
        store.set_programme_setting(programme, CUSUM_SETTING_KEYS[name], value, actor)
    return params


#: Plain words for the stored codes a reader meets in the report.
HUMAN_LABELS: dict[str, str] = {
    "finished": "finished",
    "interrupted": "interrupted (not scored)",
    "in_progress": "in progress",
    "approved": "Approved",
    "needs_practice": "Needs more practice",
    "comment": "Comment",
    "learning": "learning",
    "exam": "exam",
}


def human_label(code: str | None) -> str:
    """The plain-words form of a stored status, decision or mode code."""
    if code is None:
        return "—"
    return HUMAN_LABELS.get(code, code.replace("_", " "))


def result_label(passed: bool | None) -> str:
    """Pass/fail in words (— for an attempt that was not scored)."""
    return {True: "PASS", False: "FAIL"}.get(passed, "—")  # type: ignore[arg-type]


def scenario_catalogue(store: RecordStore) -> dict[str, dict[str, str]]:
    """Scenario ID → title and kind (``procedure`` or ``drill``) from the shipped files and store."""
    catalogue: dict[str, dict[str, str]] = {}
    for scenario_id, title in store.query("SELECT id, title FROM scenarios"):
        kind = "drill" if str(scenario_id).startswith("drill-") else "procedure"
        catalogue[str(scenario_id)] = {"title": str(title or scenario_id), "kind": kind}
    for scenario_id, path in shipped_scenarios().items():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        title = str(data["title"]) if isinstance(data.get("title"), str) else scenario_id
        kind = "drill" if data.get("procedure") == "view_drill" else "procedure"
        catalogue[scenario_id] = {"title": title, "kind": kind}
    return catalogue


def instructor_names(store: RecordStore) -> dict[str, str]:
    """Instructor ID → full name as registered."""
    return {str(i): str(n) for i, n in store.query("SELECT id, name FROM instructors")}


def _procedure_group(
    rows: list, trainee_id: str, scenario_id: str, info: dict[str, str], params: CusumParameters
) -> dict[str, Any]:
    curve = learning_curve(rows, trainee_id, scenario_id, params)
    chart, lc_chart = curve.cusum, curve.lc_cusum
    return {
        "scenario": scenario_id,
        "title": info["title"],
        "kind": info["kind"],
        "attempt_ids": list(curve.attempt_ids),
        "finished": curve.attempts,
        "passed": sum(1 for p in curve.passed if p),
        "pass_rate": curve.pass_rate,
        "best_score": max((s for s in curve.scores if s is not None), default=None),
        "cusum_values": chart.values if chart else [],
        "cusum_competent_at_attempt": _attempt_at(
            curve.attempt_ids, chart.competent_at if chart else None
        ),
        "cusum_unacceptable_at_attempt": _attempt_at(
            curve.attempt_ids, chart.unacceptable_at if chart else None
        ),
        "lc_cusum_values": lc_chart.values if lc_chart else [],
        "lc_cusum_limit": lc_chart.h1 if lc_chart else None,
        "lc_cusum_competent_at_attempt": _attempt_at(
            curve.attempt_ids, lc_chart.competent_at if lc_chart else None
        ),
    }


def _attempt_at(attempt_ids: list[int], position: int | None) -> int | None:
    """The attempt ID at a 1-based position of a curve (None when no signal)."""
    return attempt_ids[position - 1] if position else None


def build_trainee_report(
    store: RecordStore,
    trainee_id: str,
    scenario_id: str | None = None,
    programme: str = "default",
    verification: VerificationResult | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (this is also the JSON format).

    ``verification`` is the store's check (with any anchors the caller had); made here when None.
    Attempts are grouped per procedure: each procedure and each drill has its own learning
    curve, CUSUM and LC-CUSUM, because a trainee's drill results say nothing about their
    competence at a fusion.
    """
    trainees = {t["id"]: t for t in store.trainees()}
    if trainee_id not in trainees:
        raise KeyError(f"unknown trainee '{trainee_id}'")
    params = cusum_parameters_for(store, programme)
    rows = store.attempts(trainee_id, scenario_id)
    curve = learning_curve(rows, trainee_id, scenario_id, params)
    verification = verification or store.verify()
    catalogue = scenario_catalogue(store)
    names = instructor_names(store)
    attempted = sorted({r.scenario_id for r in rows})
    groups = [
        _procedure_group(
            rows, trainee_id, sid, catalogue.get(sid, {"title": sid, "kind": "procedure"}), params
        )
        for sid in attempted
    ]
    groups.sort(key=lambda g: (g["kind"] != "procedure", g["title"]))
    pass_mark = store.programme_settings(programme).get("pass_mark")
    return {
        "generated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "trainee": trainees[trainee_id],
        "scenario": scenario_id,
        "pass_mark": None if pass_mark is None else float(pass_mark),
        "summary": {
            "attempts": len(rows),
            "finished": curve.attempts,
            "interrupted": sum(1 for r in rows if r.status == "interrupted"),
            "passed": sum(1 for p in curve.passed if p),
            "pass_rate": curve.pass_rate,
            "best_score": max((s for s in curve.scores if s is not None), default=None),
        },
        "cusum": {
            "p0": params.p0,
            "p1": params.p1,
            "alpha": params.alpha,
            "beta": params.beta,
            "s": params.s,
            "h0": params.h0,
            "h1": params.h1,
        },
        "procedures": groups,
        "attempts": [
            {
                "id": r.id,
                "scenario": r.scenario_id,
                "mode": r.mode,
                "started_utc": r.started_utc,
                "finished_utc": r.finished_utc,
                "status": r.status,
                "score": r.score,
                "passed": r.passed,
                "findings": r.findings,
                "signoffs": [
                    {**s, "instructor_name": names.get(s["instructor_id"], s["instructor_id"])}
                    for s in r.signoffs
                ],
                "metrics": {k: v.get("value") for k, v in r.metrics.items()},
            }
            for r in rows
        ],
        "ledger": {**verification.as_json(), "record_count": verification.records_checked},
    }


def write_json(report: dict[str, Any], out: Path) -> None:
    """The report data as indented JSON."""
    out.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def write_csv(report: dict[str, Any], out: Path) -> None:
    """One row per attempt: id, scenario, mode, times, status, score, passed, sign-off, metrics."""
    metric_names = sorted({name for a in report["attempts"] for name in a["metrics"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "attempt_id",
            "scenario",
            "mode",
            "started_utc",
            "finished_utc",
            "status",
            "score",
            "passed",
            "signed_off_by",
            "decision",
            *metric_names,
        ]
    )
    for attempt in report["attempts"]:
        last = attempt["signoffs"][-1] if attempt["signoffs"] else {}
        writer.writerow(
            [
                attempt["id"],
                attempt["scenario"],
                attempt["mode"],
                attempt["started_utc"],
                attempt["finished_utc"],
                attempt["status"],
                attempt["score"],
                attempt["passed"],
                last.get("instructor_id", ""),
                last.get("decision", ""),
                *[attempt["metrics"].get(name) for name in metric_names],
            ]
        )
    out.write_text(buffer.getvalue())


def write_report(
    store: RecordStore,
    trainee_id: str,
    fmt: str,
    out: Path,
    scenario_id: str | None = None,
    verification: VerificationResult | None = None,
) -> dict[str, Any]:
    """Build and write a report in ``fmt`` (pdf, csv or json); returns the report data."""
    report = build_trainee_report(store, trainee_id, scenario_id, verification=verification)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        write_json(report, out)
    elif fmt == "csv":
        write_csv(report, out)
    elif fmt == "pdf":
        from fluorosim.scenarios.records.report_pdf import write_pdf

        write_pdf(report, out)
    else:
        raise ValueError(f"unknown report format '{fmt}' (pdf, csv or json)")
    return report
