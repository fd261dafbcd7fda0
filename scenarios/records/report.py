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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scenarios.records.cusum import CusumParameters
from scenarios.records.database import RecordStore
from scenarios.records.learning import learning_curve
from scenarios.records.plots import cusum_png, learning_curve_png
from scenarios.records.verification import VerificationResult

REPORT_SECTIONS = (
    "Trainee",
    "Summary",
    "Attempts",
    "Learning curve",
    "CUSUM",
    "Pass/fail history",
    "Sign-offs",
    "Ledger status",
)


def cusum_parameters_for(store: RecordStore, programme: str = "default") -> CusumParameters:
    """The programme's CUSUM settings (p0, p1, alpha, beta), defaults from procedures.md."""
    settings = store.programme_settings(programme)
    return CusumParameters(
        p0=float(settings.get("cusum_p0", 0.10)),
        p1=float(settings.get("cusum_p1", 0.20)),
        alpha=float(settings.get("cusum_alpha", 0.10)),
        beta=float(settings.get("cusum_beta", 0.10)),
    )


def build_trainee_report(
    store: RecordStore,
    trainee_id: str,
    scenario_id: str | None = None,
    programme: str = "default",
    verification: VerificationResult | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (this is also the JSON format).

    ``verification`` is the store's check (with any anchors the caller had); made here when None.
    """
    trainees = {t["id"]: t for t in store.trainees()}
    if trainee_id not in trainees:
        raise KeyError(f"unknown trainee '{trainee_id}'")
    params = cusum_parameters_for(store, programme)
    rows = store.attempts(trainee_id, scenario_id)
    curve = learning_curve(rows, trainee_id, scenario_id, params)
    verification = verification or store.verify()
    chart = curve.cusum
    return {
        "generated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "trainee": trainees[trainee_id],
        "scenario": scenario_id,
        "summary": {
            "attempts": len(rows),
            "finished": curve.attempts,
            "interrupted": sum(1 for r in rows if r.status == "interrupted"),
            "passed": sum(1 for p in curve.passed if p),
            "pass_rate": curve.pass_rate,
            "best_score": max((s for s in curve.scores if s is not None), default=None),
            "cusum_competent_at": chart.competent_at if chart else None,
            "cusum_unacceptable_at": chart.unacceptable_at if chart else None,
            "lc_cusum_competent_at": curve.lc_cusum.competent_at if curve.lc_cusum else None,
        },
        "cusum": {
            "p0": params.p0,
            "p1": params.p1,
            "alpha": params.alpha,
            "beta": params.beta,
            "s": params.s,
            "h0": params.h0,
            "h1": params.h1,
            "values": chart.values if chart else [],
        },
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
                "signoffs": r.signoffs,
                "metrics": {k: v.get("value") for k, v in r.metrics.items()},
            }
            for r in rows
        ],
        "ledger": verification.as_json(),
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


def write_pdf(report: dict[str, Any], out: Path, store: RecordStore) -> None:
    """A credentialing report a committee can read without the app (reportlab)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    styles = getSampleStyleSheet()
    story: list[Any] = []
    trainee = report["trainee"]
    story.append(
        Paragraph(
            f"fluorosim credentialing report — {trainee['name']} ({trainee['id']})", styles["Title"]
        )
    )
    story.append(Paragraph(f"Generated {report['generated_utc']}", styles["Normal"]))
    head = report["ledger"]
    story.append(
        Paragraph(
            f"Ledger head {head['head_hash']} ({head['records_checked']} records): "
            + ("verified" if head["ok"] else f"<b>VERIFICATION FAILED</b>: {head['problem']}"),
            styles["Normal"],
        )
    )

    def section(title: str) -> None:
        story.append(Spacer(1, 4 * mm))
        story.append(Paragraph(title, styles["Heading2"]))

    section("Trainee")
    story.append(
        Paragraph(
            f"ID {trainee['id']}; name {trainee['name']}; cohort {trainee.get('cohort_id') or '—'}; "
            f"scenario {report['scenario'] or 'all scenarios'}.",
            styles["Normal"],
        )
    )
    section("Summary")
    summary = report["summary"]
    rate = "—" if summary["pass_rate"] is None else f"{100 * summary['pass_rate']:.0f} %"
    competent = summary["cusum_competent_at"]
    unacceptable = summary["cusum_unacceptable_at"]
    story.append(
        Paragraph(
            f"{summary['attempts']} attempts ({summary['finished']} finished, {summary['interrupted']} interrupted); "
            f"{summary['passed']} passed ({rate}); best score {'—' if summary['best_score'] is None else format(summary['best_score'], '.1f')}. "
            f"CUSUM: {'competence signalled at attempt ' + str(competent) if competent else 'no competence signal yet'}; "
            f"{'unacceptable performance signalled at attempt ' + str(unacceptable) if unacceptable else 'no unacceptable-performance signal'}.",
            styles["Normal"],
        )
    )
    section("Attempts")
    rows = [["#", "scenario", "mode", "finished (UTC)", "status", "score", "result"]]
    for attempt in report["attempts"]:
        rows.append(
            [
                attempt["id"],
                attempt["scenario"],
                attempt["mode"],
                (attempt["finished_utc"] or "")[:16],
                attempt["status"],
                "—" if attempt["score"] is None else f"{attempt['score']:.1f}",
                {True: "pass", False: "fail"}.get(attempt["passed"], "—"),
            ]
        )
    table = Table(rows, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde3ea")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
            ]
        )
    )
    story.append(table)
    params = cusum_parameters_for(store)
    curve = learning_curve(
        store.attempts(trainee["id"], report["scenario"]), trainee["id"], report["scenario"], params
    )
    pass_mark = store.programme_settings("default").get("pass_mark")
    story.append(
        KeepTogether(
            [
                Spacer(1, 4 * mm),
                Paragraph("Learning curve", styles["Heading2"]),
                Image(
                    io.BytesIO(learning_curve_png(curve, pass_mark)), width=160 * mm, height=69 * mm
                ),
            ]
        )
    )
    section("CUSUM")
    cusum = report["cusum"]
    story.append(
        Paragraph(
            f"Binary CUSUM of failed attempts with p0 = {cusum['p0']:.2f}, p1 = {cusum['p1']:.2f}, "
            f"α = {cusum['alpha']:.2f}, β = {cusum['beta']:.2f}: s = {cusum['s']:.3f}, "
            f"h0 = {cusum['h0']:+.2f}, h1 = {cusum['h1']:+.2f}.",
            styles["Normal"],
        )
    )
    story.append(Image(io.BytesIO(cusum_png(curve)), width=160 * mm, height=69 * mm))
    section("Pass/fail history")
    history = (
        " ".join({True: "P", False: "F"}.get(a["passed"], "·") for a in report["attempts"])
        or "no attempts"
    )
    story.append(Paragraph(f"In order (P pass, F fail, · not scored): {history}", styles["Normal"]))
    for attempt in report["attempts"]:
        if attempt["findings"]:
            story.append(
                Paragraph(
                    f"Attempt {attempt['id']}: " + " ".join(attempt["findings"][:4]),
                    styles["Normal"],
                )
            )
    section("Sign-offs")
    signoffs = [(a["id"], s) for a in report["attempts"] for s in a["signoffs"]]
    if not signoffs:
        story.append(Paragraph("No attempt has been signed off yet.", styles["Normal"]))
    later_time = {s.get("id"): s["t_utc"] for _, s in signoffs}
    for attempt_id, signoff in signoffs:
        story.append(
            Paragraph(
                f"Attempt {attempt_id}: {signoff['decision']} by "
                f"{signoff.get('instructor_name') or signoff['instructor_id']} ({signoff['instructor_id']}) "
                f"at {signoff['t_utc']} — {signoff['comment'] or 'no comment'}"
                + (" [signed]" if signoff.get("signed") else " [unsigned, from an earlier version]")
                + (
                    f" [superseded by the sign-off of {later_time.get(signoff['superseded_by'], '?')}]"
                    if signoff.get("superseded_by")
                    else ""
                ),
                styles["Normal"],
            )
        )
    section("Ledger status")
    ledger_info = report["ledger"]
    status = (
        "VERIFIED: every record matches the hash chain"
        if ledger_info["ok"]
        else f"FAILED: {ledger_info['problem']}"
    )
    story.append(
        Paragraph(
            f"{status} ({ledger_info['records_checked']} ledger records). Head hash: {ledger_info['head_hash']}. "
            "Compare this hash with earlier copies of the report: any rewrite of the records changes it.",
            styles["Normal"],
        )
    )
    SimpleDocTemplate(
        str(out),
        pagesize=A4,
        title=f"fluorosim report {trainee['id']}",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
    ).build(story)


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
        write_pdf(report, out, store)
    else:
        raise ValueError(f"unknown report format '{fmt}' (pdf, csv or json)")
    return report
