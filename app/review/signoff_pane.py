"""The review window's decisions: sign-offs (a failed attempt is approved only with a comment and a
confirmation; a new decision supersedes the current one), the programme's CUSUM settings, the
ledger status, and the credentialing report.

A mixin of :class:`app.review_window.ReviewWindow`; the rules live in ``scenarios.records.review``
and ``scenarios.records.report``, the signing and the ledger in ``scenarios.records.database``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtWidgets import QComboBox, QDoubleSpinBox, QFileDialog, QLabel, QLineEdit, QMessageBox

from fluorosim.scenarios.records import review as headless
from fluorosim.scenarios.records.database import Actor, AttemptRow, RecordsError, RecordStore
from fluorosim.scenarios.records.report import set_cusum_parameters, write_report


class SignOffPane:
    """Signing off, CUSUM settings, ledger status and the report (a mixin of a QMainWindow)."""

    store: RecordStore
    instructor: Actor
    selected_attempt: int | None
    comment: QLineEdit
    sign_result: QLabel
    settings_result: QLabel
    ledger_label: QLabel
    cusum_spins: dict[str, QDoubleSpinBox]
    trainee: QComboBox
    scenario_filter: QComboBox

    # provided by the other parts of the window
    attempt_row: Callable[[int], AttemptRow | None]
    show_detail: Callable[[AttemptRow], None]
    programme_name: Callable[[], str]
    update_curves: Callable[[], None]

    def sign(self, decision: str) -> None:
        """Sign the selected attempt; a new decision supersedes the attempt's current one.

        Approving a failed attempt needs a comment and an explicit confirmation.
        """
        if self.selected_attempt is None:
            return
        attempt_id = self.selected_attempt
        attempt = self.attempt_row(attempt_id)
        comment = self.comment.text().strip()
        refusal = headless.signoff_refusal(self.instructor, attempt_id, attempt, decision, comment)
        if refusal:
            self.sign_result.setText(refusal)
            return
        confirmed = False
        if attempt is not None and headless.needs_confirmation(attempt, decision):
            confirmed = self.confirm_failed_approval(attempt)
            if not confirmed:
                self.sign_result.setText(
                    f"Not signed: approval of failed attempt {attempt_id} cancelled."
                )
                return
        current = headless.superseded_signoff(attempt, decision)
        supersedes = current["id"] if current is not None else None
        try:
            self.store.sign_off(
                attempt_id, self.instructor, decision, comment, confirmed, supersedes
            )
        except RecordsError as error:
            self.sign_result.setText(f"Not signed: {error}.")
            return
        self.comment.clear()
        attempt = self.attempt_row(attempt_id)
        if attempt is not None:
            self.show_detail(attempt)
        self.sign_result.setText(
            f"Attempt {attempt_id}: {decision.replace('_', ' ')} recorded by {self.instructor.id}"
            + (f", superseding the sign-off of {current['t_utc']}." if current else ".")
        )
        self.refresh_ledger()

    def confirm_failed_approval(self, attempt: AttemptRow) -> bool:
        """Ask the instructor to confirm approving an attempt that failed."""
        score = "—" if attempt.score is None else f"{attempt.score:.1f}"
        answer = QMessageBox.question(
            self,  # type: ignore[arg-type]
            "Approve a failed attempt?",
            f"Attempt {attempt.id} of {attempt.trainee_id} FAILED (score {score}).\n\n"
            "Approve it anyway? Your signed approval and comment go into the ledger and the "
            "credentialing report.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def apply_cusum_settings(self) -> None:
        """Store the programme's CUSUM p0, p1, α, β (instructors only; logged in the ledger)."""
        values = {name: round(spin.value(), 6) for name, spin in self.cusum_spins.items()}
        try:
            set_cusum_parameters(self.store, self.programme_name(), values, self.instructor)
        except (ValueError, RecordsError) as error:
            self.settings_result.setText(f"Not applied: {error}.")
            return
        self.settings_result.setText(
            f"CUSUM settings of programme '{self.programme_name()}' saved by {self.instructor.id}."
        )
        self.update_curves()
        self.refresh_ledger()

    def refresh_ledger(self) -> None:
        result = self.store.verify()
        self.ledger_label.setText(
            f"ledger verified ({result.records_checked} records, head {result.head_hash[:16]}…)"
            if result.ok
            else f"LEDGER FAILED: {result.problem}"
        )
        self.ledger_label.setStyleSheet(
            "color: #1a7f37" if result.ok else "color: #b42318; font-weight: bold"
        )

    def export_report(self, out: Path) -> Path:
        """Write the selected trainee's credentialing report (PDF) to ``out``."""
        trainee_id = self.trainee.currentData()
        if not trainee_id:
            raise RecordsError("select a trainee first")
        write_report(self.store, trainee_id, "pdf", out, self.scenario_filter.currentData())
        return out

    def export_report_dialog(self) -> None:
        trainee_id = self.trainee.currentData()
        if not trainee_id:
            self.statusBar().showMessage("Select a trainee first.", 5000)  # type: ignore[attr-defined]
            return
        name, _ = QFileDialog.getSaveFileName(
            self,  # type: ignore[arg-type]
            "Credentialing report",
            f"fluorosim-{trainee_id}.pdf",
            "PDF (*.pdf)",
        )
        if not name:
            return
        try:
            self.export_report(Path(name))
        except (OSError, RecordsError, ValueError) as error:
            QMessageBox.warning(self, "Credentialing report", f"Not written: {error}")  # type: ignore[arg-type]
            return
        self.statusBar().showMessage(f"Report written to {name}", 8000)  # type: ignore[attr-defined]
