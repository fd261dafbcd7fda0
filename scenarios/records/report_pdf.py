"""The credentialing report as a PDF a committee reads without the app (reportlab).

Layout, page by page:
- Page 1: the title, and — when the records fail verification — a red banner that says so and why,
  before anything else; the trainee; a summary table with one row per procedure (drills apart);
  the ledger head hash and record count to compare with earlier copies.
- One section per procedure, then one per drill: its attempts table (record IDs, dates, mode,
  status, score, result, latest sign-off), its learning curve with the pass-mark line, its CUSUM
  and its LC-CUSUM — each chart kept on one page with its heading.
- Pass/fail history, sign-offs (instructor name, decision, date, comment), ledger status, and a
  signature block for the committee.
Every page carries "page X of Y", the trainee and the ledger head in its footer; when verification
failed every page also carries a diagonal "UNVERIFIED RECORDS" watermark.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from fluorosim.scenarios.records.cusum import CusumParameters, binary_cusum, lc_cusum
from fluorosim.scenarios.records.learning import LearningCurve
from fluorosim.scenarios.records.plots import cusum_png, lc_cusum_png, learning_curve_png
from fluorosim.scenarios.records.report import human_label, result_label

BANNER_RED = colors.HexColor("#b71c1c")
HEADER_GREY = colors.HexColor("#dde3ea")
WATERMARK = "UNVERIFIED RECORDS"


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": base["Title"],
        "h2": base["Heading2"],
        "h3": base["Heading3"],
        "body": base["Normal"],
        "small": ParagraphStyle("small", parent=base["Normal"], fontSize=8, leading=10),
        "banner": ParagraphStyle(
            "banner", parent=base["Normal"], fontSize=11, leading=14, textColor=colors.white
        ),
    }


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), HEADER_GREY),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def _curve_of(group: dict[str, Any], report: dict[str, Any]) -> LearningCurve:
    """The learning curve of one procedure group, rebuilt from the report data."""
    by_id = {a["id"]: a for a in report["attempts"]}
    curve = LearningCurve(report["trainee"]["id"], group["scenario"])
    curve.attempt_ids = list(group["attempt_ids"])
    curve.scores = [by_id[i]["score"] for i in curve.attempt_ids]
    curve.passed = [by_id[i]["passed"] for i in curve.attempt_ids]
    c = report["cusum"]
    params = CusumParameters(c["p0"], c["p1"], c["alpha"], c["beta"])
    failures = [p is False for p in curve.passed if p is not None]
    curve.cusum = binary_cusum(failures, params)
    curve.lc_cusum = lc_cusum(failures, params, group.get("lc_cusum_limit"))
    return curve


def _banner(report: dict[str, Any], styles: dict[str, ParagraphStyle]) -> Table:
    ledger = report["ledger"]
    text = (
        "<b>RECORDS FAILED VERIFICATION — do not rely on this report.</b><br/>"
        f"{ledger['problem']}<br/>The scores, results and sign-offs below may have been altered "
        "after they were recorded. Ask the programme's administrator to investigate before any "
        "credentialing decision."
    )
    banner = Table([[Paragraph(text, styles["banner"])]], colWidths=[174 * mm])
    banner.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), BANNER_RED),
                ("BOX", (0, 0), (-1, -1), 1.5, BANNER_RED),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return banner


def _summary_table(report: dict[str, Any]) -> Table:
    rows: list[list[Any]] = [
        ["procedure", "kind", "finished", "passed", "pass rate", "best", "CUSUM", "LC-CUSUM"]
    ]
    for group in report["procedures"]:
        competent = group["cusum_competent_at_attempt"]
        unacceptable = group["cusum_unacceptable_at_attempt"]
        cusum = (
            f"unacceptable at #{unacceptable}"
            if unacceptable
            else (f"competent at #{competent}" if competent else "no signal yet")
        )
        lc = group["lc_cusum_competent_at_attempt"]
        rows.append(
            [
                Paragraph(group["title"], _styles()["small"]),
                group["kind"],
                group["finished"],
                group["passed"],
                _rate(group["pass_rate"]),
                _score(group["best_score"]),
                cusum,
                f"competent at #{lc}" if lc else "not yet",
            ]
        )
    widths = [56 * mm, 16 * mm, 14 * mm, 13 * mm, 15 * mm, 11 * mm, 27 * mm, 22 * mm]
    return _table(rows, widths)


def _attempts_table(group: dict[str, Any], report: dict[str, Any]) -> Table:
    ids = set(group["attempt_ids"])
    rows: list[list[Any]] = [
        ["ID", "finished (UTC)", "mode", "status", "score", "result", "sign-off"]
    ]
    for attempt in report["attempts"]:
        if attempt["scenario"] != group["scenario"]:
            continue
        latest = attempt["signoffs"][-1] if attempt["signoffs"] else None
        signoff = (
            f"{human_label(latest['decision'])} — {latest['instructor_name']}" if latest else "—"
        )
        rows.append(
            [
                attempt["id"],
                (attempt["finished_utc"] or attempt["started_utc"] or "")[:16].replace("T", " "),
                human_label(attempt["mode"]),
                human_label(attempt["status"]),
                _score(attempt["score"]) if attempt["id"] in ids else "—",
                result_label(attempt["passed"]),
                Paragraph(signoff, _styles()["small"]),
            ]
        )
    widths = [11 * mm, 30 * mm, 17 * mm, 32 * mm, 14 * mm, 14 * mm, 56 * mm]
    return _table(rows, widths)


def _chart(title: str, note: str, png: bytes, styles: dict[str, ParagraphStyle]) -> KeepTogether:
    return KeepTogether(
        [
            Spacer(1, 3 * mm),
            Paragraph(title, styles["h3"]),
            Paragraph(note, styles["small"]),
            Image(io.BytesIO(png), width=165 * mm, height=60 * mm),
        ]
    )


def _procedure_section(
    group: dict[str, Any], report: dict[str, Any], styles: dict[str, ParagraphStyle]
) -> list[Any]:
    curve = _curve_of(group, report)
    c = report["cusum"]
    pass_mark = report.get("pass_mark")
    story: list[Any] = [
        KeepTogether(
            [
                Paragraph(f"{group['title']}", styles["h2"]),
                Paragraph(
                    f"Attempts — {group['finished']} finished, {group['passed']} passed "
                    f"({_rate(group['pass_rate'])}); best score {_score(group['best_score'])}.",
                    styles["body"],
                ),
                Spacer(1, 2 * mm),
                _attempts_table(group, report),
            ]
        )
    ]
    if not group["attempt_ids"]:
        story.append(Paragraph("No finished attempt to chart yet.", styles["body"]))
        return story
    mark = "no programme pass mark set" if pass_mark is None else f"pass mark {pass_mark:.0f}"
    story.append(
        _chart(
            "Learning curve",
            f"Composite score of each finished attempt ({mark}, dashed); the axis is labelled "
            "with the attempt IDs of the table above.",
            learning_curve_png(curve, pass_mark),
            styles,
        )
    )
    story.append(
        _chart(
            "CUSUM",
            f"Binary CUSUM of failed attempts (Williams et al. 1992; Bolsin &amp; Colson 2000) "
            f"with p0 = {c['p0']:.2f}, p1 = {c['p1']:.2f}, α = {c['alpha']:.2f}, "
            f"β = {c['beta']:.2f}: each pass −{c['s']:.3f}, each fail +{1 - c['s']:.3f}; "
            f"crossing h0 = {c['h0']:+.2f} signals competence, h1 = {c['h1']:+.2f} unacceptable "
            "performance.",
            cusum_png(curve),
            styles,
        )
    )
    limit = group.get("lc_cusum_limit")
    story.append(
        _chart(
            "LC-CUSUM",
            "Learning-curve CUSUM (Biau &amp; Porcher 2010): starts from 'not yet competent' and "
            f"declares competence when it reaches h = {limit or 0:.2f}.",
            lc_cusum_png(curve),
            styles,
        )
    )
    return story


def _signature_block(styles: dict[str, ParagraphStyle]) -> KeepTogether:
    line = "_" * 38
    rows = [
        ["Reviewed by (name)", line],
        ["Role", line],
        ["Signature", line],
        ["Date", line],
    ]
    table = Table(rows, colWidths=[45 * mm, 100 * mm], rowHeights=[11 * mm] * 4)
    table.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM"), ("FONTSIZE", (0, 0), (-1, -1), 9)])
    )
    return KeepTogether(
        [
            Paragraph("Signatures", styles["h2"]),
            Paragraph(
                "I have reviewed this trainee's recorded attempts, the sign-offs above and the "
                "ledger status of this report.",
                styles["body"],
            ),
            Spacer(1, 2 * mm),
            table,
        ]
    )


def _numbered_canvas(report: dict[str, Any]) -> type[pdf_canvas.Canvas]:
    """A canvas that writes 'page X of Y', the footer and (when unverified) the watermark."""
    ledger = report["ledger"]
    trainee = report["trainee"]
    footer = (
        f"fluorosim credentialing report — {trainee['name']} ({trainee['id']}) — ledger head "
        f"{ledger['head_hash'][:16]}… ({ledger['record_count']} records)"
    )
    unverified = not ledger["ok"]

    class NumberedCanvas(pdf_canvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            width, _height = A4
            self.saveState()
            if unverified:
                self.setFillColor(colors.Color(0.72, 0.11, 0.11, alpha=0.18))
                self.setFont("Helvetica-Bold", 54)
                self.translate(width / 2, 140 * mm)
                self.rotate(45)
                self.drawCentredString(0, 0, WATERMARK)
                self.rotate(-45)
                self.translate(-width / 2, -140 * mm)
            self.setFillColor(colors.grey)
            self.setFont("Helvetica", 7)
            self.drawString(18 * mm, 10 * mm, footer)
            self.drawRightString(width - 18 * mm, 10 * mm, f"page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


def write_pdf(report: dict[str, Any], out: Path) -> None:
    """Write ``report`` (from :func:`scenarios.records.report.build_trainee_report`) as a PDF."""
    styles = _styles()
    trainee = report["trainee"]
    ledger = report["ledger"]
    summary = report["summary"]
    story: list[Any] = [
        Paragraph(f"Credentialing report — {trainee['name']}", styles["title"]),
    ]
    if not ledger["ok"]:
        story += [_banner(report, styles), Spacer(1, 4 * mm)]
    story += [
        Paragraph("Trainee", styles["h2"]),
        Paragraph(
            f"{trainee['name']} (ID {trainee['id']}); cohort {trainee.get('cohort_id') or '—'}; "
            f"report generated {report['generated_utc'].replace('T', ' ')} UTC"
            + (f"; only {report['scenario']}" if report["scenario"] else "")
            + ".",
            styles["body"],
        ),
        Paragraph("Summary", styles["h2"]),
        Paragraph(
            f"{summary['attempts']} attempts recorded: {summary['finished']} finished, "
            f"{summary['interrupted']} interrupted. Procedures are listed first and drills apart; "
            "each has its own learning curve and CUSUM.",
            styles["body"],
        ),
        Spacer(1, 2 * mm),
        _summary_table(report),
        Spacer(1, 3 * mm),
        Paragraph(
            ("Records verified" if ledger["ok"] else "<b>Records FAILED verification</b>")
            + f": ledger head <font face='Courier'>{ledger['head_hash']}</font>, "
            f"{ledger['record_count']} ledger records. Compare with earlier copies of this report.",
            styles["small"],
        ),
    ]
    procedures = [g for g in report["procedures"] if g["kind"] == "procedure"]
    drills = [g for g in report["procedures"] if g["kind"] != "procedure"]
    story.append(PageBreak())
    story.append(Paragraph("Attempts", styles["title"]))
    for group in procedures:
        story += _procedure_section(group, report, styles)
    if drills:
        story.append(PageBreak())
        story.append(
            Paragraph("Drills (C-arm positioning, apart from the procedures)", styles["h2"])
        )
        for group in drills:
            story += _procedure_section(group, report, styles)
    story.append(PageBreak())
    story.append(Paragraph("Pass/fail history", styles["h2"]))
    for group in report["procedures"]:
        by_id = {a["id"]: a for a in report["attempts"]}
        history = " ".join(f"#{i} {result_label(by_id[i]['passed'])}" for i in group["attempt_ids"])
        story.append(Paragraph(f"<b>{group['title']}</b>: {history or 'none'}", styles["small"]))
    for attempt in report["attempts"]:
        if attempt["findings"]:
            story.append(
                Paragraph(
                    f"Attempt {attempt['id']}: " + " ".join(attempt["findings"][:4]),
                    styles["small"],
                )
            )
    story.append(Paragraph("Sign-offs", styles["h2"]))
    signoffs = [(a["id"], s) for a in report["attempts"] for s in a["signoffs"]]
    if not signoffs:
        story.append(Paragraph("No attempt has been signed off yet.", styles["body"]))
    else:
        rows: list[list[Any]] = [["attempt", "instructor", "decision", "date (UTC)", "comment"]]
        time_of = {s.get("id"): s["t_utc"] for _, s in signoffs}
        for attempt_id, signoff in signoffs:
            marks = " (signed)" if signoff.get("signed") else " (unsigned, earlier version)"
            if signoff.get("superseded_by"):
                later = str(time_of.get(signoff["superseded_by"], "?"))[:16].replace("T", " ")
                marks += f" — superseded by the sign-off of {later}"
            rows.append(
                [
                    attempt_id,
                    Paragraph(signoff["instructor_name"], styles["small"]),
                    human_label(signoff["decision"]),
                    signoff["t_utc"][:16].replace("T", " "),
                    Paragraph((signoff["comment"] or "—") + marks, styles["small"]),
                ]
            )
        story.append(_table(rows, [15 * mm, 35 * mm, 30 * mm, 28 * mm, 66 * mm]))
    story.append(Paragraph("Ledger status", styles["h2"]))
    status = (
        "VERIFIED: every record matches the hash chain."
        if ledger["ok"]
        else f"FAILED: {ledger['problem']}"
    )
    story.append(
        Paragraph(
            f"{status} {ledger['record_count']} ledger records; head hash "
            f"<font face='Courier'>{ledger['head_hash']}</font>. Any rewrite of the records "
            "changes the head: compare it with the head printed on earlier copies.",
            styles["body"],
        )
    )
    story.append(Spacer(1, 6 * mm))
    story.append(_signature_block(styles))
    SimpleDocTemplate(
        str(out),
        pagesize=A4,
        title=f"fluorosim report {trainee['id']}",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        bottomMargin=18 * mm,
    ).build(story, canvasmaker=_numbered_canvas(report))
