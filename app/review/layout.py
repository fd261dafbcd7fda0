"""How the review window is laid out: the pickers, attempt list and cohort table on the left; the
learning-curve, attempt/sign-off, replay and 3D tabs on the right; the window-wide shortcuts.

A mixin of :class:`app.review_window.ReviewWindow`: it creates the widgets the other parts use.
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from fluorosim.app.review.widgets import ReplayTimeline, fit_columns, make_table
from fluorosim.scenarios.records.report import CUSUM_SETTING_KEYS
from fluorosim.scenarios.records.review import ATTEMPT_COLUMNS, COHORT_COLUMNS


class ReviewLayout:
    """Builds the review window's widgets (used as a mixin of a QMainWindow)."""

    replay: ReplayTimeline
    attempts: QTableWidget

    def _build_left(self) -> QWidget:
        left = QWidget()
        layout = QVBoxLayout(left)
        self.cohort = QComboBox()
        self.trainee = QComboBox()
        self.scenario_filter = QComboBox()
        pickers = QFormLayout()
        pickers.addRow("Cohort", self.cohort)
        pickers.addRow("Trainee", self.trainee)
        pickers.addRow("Scenario", self.scenario_filter)
        layout.addLayout(pickers)
        self.attempts = make_table(list(ATTEMPT_COLUMNS))
        self.attempts.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        fit_columns(self.attempts, stretch=ATTEMPT_COLUMNS.index("scenario"))
        layout.addWidget(QLabel("Attempts"))
        layout.addWidget(self.attempts, 2)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the records again (trainees keep adding attempts)")
        self.export_button = QPushButton("Credentialing report (PDF)…")
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.export_button, 1)
        layout.addLayout(buttons)
        self.cohort_table = make_table(list(COHORT_COLUMNS))
        layout.addWidget(QLabel("Cohort comparison (finished attempts)"))
        layout.addWidget(self.cohort_table, 1)
        return left

    def _build_curves_tab(self, programme: str) -> QWidget:
        inner = QWidget()
        layout = QVBoxLayout(inner)
        self.curve_image = QLabel()
        self.series_image = QLabel()
        self.cusum_image = QLabel()
        self.pass_mark_label = QLabel("")
        self.pass_mark_label.setWordWrap(True)
        layout.addWidget(self.pass_mark_label)
        layout.addWidget(self.curve_image)
        layout.addWidget(self.series_image)
        layout.addWidget(self.cusum_image)
        self.cusum_label = QLabel("")
        self.cusum_label.setWordWrap(True)
        layout.addWidget(self.cusum_label)
        settings = QHBoxLayout()
        self.programme = QLineEdit(programme)
        self.programme.setToolTip("The programme whose CUSUM settings apply")
        settings.addWidget(QLabel("Programme"))
        settings.addWidget(self.programme)
        self.cusum_spins: dict[str, QDoubleSpinBox] = {}
        for name in CUSUM_SETTING_KEYS:
            spin = QDoubleSpinBox()
            spin.setDecimals(3)
            spin.setRange(0.001, 0.999)
            spin.setSingleStep(0.01)
            self.cusum_spins[name] = spin
            settings.addWidget(QLabel(name))
            settings.addWidget(spin)
        self.apply_cusum_button = QPushButton("Apply CUSUM settings")
        settings.addWidget(self.apply_cusum_button)
        layout.addLayout(settings)
        self.settings_result = QLabel("")
        layout.addWidget(self.settings_result)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        return scroll

    def _build_attempt_tab(self) -> QWidget:
        detail = QWidget()
        layout = QVBoxLayout(detail)
        self.detail = QTextBrowser()
        layout.addWidget(self.detail, 2)
        layout.addWidget(QLabel("Events over time (double-click: the replay at that moment)"))
        self.metrics_image = QLabel()
        layout.addWidget(self.metrics_image)
        self.events_table = make_table(["t (s)", "event", "detail"])
        layout.addWidget(self.events_table, 2)
        sign_row = QHBoxLayout()
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("comment for the trainee and the committee")
        self.approve_button = QPushButton("Sign off: approved")
        self.practice_button = QPushButton("Needs practice")
        self.comment_button = QPushButton("Comment only")
        sign_row.addWidget(self.comment, 1)
        for button in self.sign_buttons():
            button.setEnabled(False)
            sign_row.addWidget(button)
        layout.addLayout(sign_row)
        self.sign_result = QLabel("")
        self.sign_result.setWordWrap(True)
        layout.addWidget(self.sign_result)
        return detail

    def sign_buttons(self) -> tuple[QPushButton, QPushButton, QPushButton]:
        return (self.approve_button, self.practice_button, self.comment_button)

    def _add_shortcuts(self) -> None:
        """Keys that act wherever focus is in the window (Ctrl+Q, Ctrl+↑/↓ through attempts)."""
        bindings: tuple[tuple[str, Callable[[], object], str], ...] = (
            ("Ctrl+Q", self.close, "close the review"),  # type: ignore[attr-defined]
            ("Ctrl+Down", lambda: self.step_attempt(+1), "next attempt"),
            ("Ctrl+Up", lambda: self.step_attempt(-1), "previous attempt"),
            ("Ctrl+Right", lambda: self.replay.step(+1), "next replay frame"),
            ("Ctrl+Left", lambda: self.replay.step(-1), "previous replay frame"),
        )
        self.shortcuts: dict[str, QShortcut] = {}
        for keys, slot, _meaning in bindings:
            shortcut = QShortcut(QKeySequence(keys), self)  # type: ignore[call-overload]
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts[keys] = shortcut
        self.statusBar().showMessage(  # type: ignore[attr-defined]
            "Keys: " + ", ".join(f"{keys} {meaning}" for keys, _slot, meaning in bindings)
        )

    def step_attempt(self, delta: int) -> None:
        """Select the next (+1) or previous (−1) attempt of the list, staying inside it."""
        count = self.attempts.rowCount()
        if count == 0:
            return
        current = self.attempts.currentRow()
        row = 0 if current < 0 else max(0, min(count - 1, current + delta))
        self.attempts.selectRow(row)
