"""The procedure panel: the scenario's steps with the current one, live counters, and at the end
the score report with each metric, pass/fail and the plain-words findings.

It lays its three parts (steps, counters, report) out in a column when it is tall and in a row
when it is wide, as in the strip under the monitors of the default window layout.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QBoxLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from fluorosim.app.widgets.monitor import kap_text

COUNTER_TITLES: dict[str, tuple[str, Callable[[float], str]]] = {
    "shots": ("Shots", "{:.0f}".format),
    "beam_on_s": ("Fluoro time", "{:.1f} s".format),
    "air_kerma_mgy": ("Air kerma", "{:.2f} mGy".format),
    "kap_gycm2": ("KAP", kap_text),  # dGy·cm², as on the monitor
    "breaches": ("Breaches", "{:.0f}".format),
    "elapsed_s": ("Time", "{:.0f} s".format),
}


class ProcedurePanel(QWidget):
    """Steps, counters, report; buttons to move on, finish, replay or start again."""

    next_step_requested = pyqtSignal()
    place_implant_requested = pyqtSignal()
    finish_requested = pyqtSignal()
    replay_requested = pyqtSignal()
    restart_requested = pyqtSignal(bool)  # True = new patient

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.parts = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        steps_part = QVBoxLayout()
        self.title = QLabel("No attempt")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold")
        steps_part.addWidget(self.title)
        self.steps = QListWidget()
        self.steps.setMaximumHeight(150)
        self.steps.setMinimumHeight(40)  # the strip under the monitors is low on small screens
        # a long step wraps onto a second line instead of hiding behind a sideways scroll bar
        self.steps.setWordWrap(True)
        self.steps.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        steps_part.addWidget(self.steps)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #2a6")
        steps_part.addWidget(self.hint)
        buttons = QHBoxLayout()
        self.next_button = QPushButton("Next step")
        self.implant_button = QPushButton("Place implant")
        self.finish_button = QPushButton("Finish attempt")
        self.next_button.clicked.connect(self.next_step_requested.emit)
        self.implant_button.clicked.connect(self.place_implant_requested.emit)
        self.finish_button.clicked.connect(self.finish_requested.emit)
        for button in (self.next_button, self.implant_button, self.finish_button):
            buttons.addWidget(button)
        steps_part.addLayout(buttons)
        self.parts.addLayout(steps_part)
        counters_box = QGroupBox("Live counters")
        grid = QGridLayout(counters_box)
        self.counter_labels: dict[str, QLabel] = {}
        for index, (key, (title, _)) in enumerate(COUNTER_TITLES.items()):
            value = QLabel("—")
            value.setAccessibleName(title)
            grid.addWidget(QLabel(title), index, 0)  # one counter a row: narrow beside the steps
            grid.addWidget(value, index, 1)
            self.counter_labels[key] = value
        self.parts.addWidget(counters_box)
        report_part = QVBoxLayout()
        self.report = QTextBrowser()
        self.report.setPlaceholderText("The score report appears here when you finish the attempt.")
        self.report.setMinimumHeight(60)
        report_part.addWidget(self.report, 1)
        after = QHBoxLayout()
        self.replay_button = QPushButton("Replay")
        self.same_button = QPushButton("Again: same patient")
        self.new_button = QPushButton("Again: new patient")
        self.replay_button.clicked.connect(self.replay_requested.emit)
        self.same_button.clicked.connect(lambda: self.restart_requested.emit(False))
        self.new_button.clicked.connect(lambda: self.restart_requested.emit(True))
        for button in (self.replay_button, self.same_button, self.new_button):
            button.setEnabled(False)
            after.addWidget(button)
        report_part.addLayout(after)
        self.parts.addLayout(report_part, 1)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        room = self.parentWidget() or self  # the scroll area's viewport when in a dock
        wide = room.width() > 2 * room.height()
        self.parts.setDirection(
            QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        )
        for label in (self.title, self.hint):  # wrapped text would ask the low strip for height
            label.setWordWrap(not wide)  # and in a row a long line is cut, not widening the strip
            label.setSizePolicy(
                QSizePolicy.Policy.Ignored if wide else QSizePolicy.Policy.Preferred,
                QSizePolicy.Policy.Preferred,
            )
        super().resizeEvent(event)

    def show_scenario(self, title: str, steps: list[str]) -> None:
        """List the scenario's steps."""
        self.title.setText(title)
        self.title.setToolTip(title)  # the whole title when a row layout cuts it
        self.steps.clear()
        self.steps.addItems(steps)
        for row, step in enumerate(steps):
            item = self.steps.item(row)
            if item is not None:
                item.setToolTip(step)
        self.report.clear()
        for button in (self.replay_button, self.same_button, self.new_button):
            button.setEnabled(False)
        for button in (self.next_button, self.implant_button, self.finish_button):
            button.setEnabled(True)

    def show_current_step(self, index: int, hint: str = "") -> None:
        """Highlight the current step (and a learning-mode hint)."""
        if 0 <= index < self.steps.count():
            self.steps.setCurrentRow(index)
        self.hint.setText(hint)
        self.hint.setToolTip(hint)

    def show_counters(self, counters: dict[str, float]) -> None:
        """Update the live counters that are present."""
        for key, (_, text) in COUNTER_TITLES.items():
            if key in counters and counters[key] is not None:
                self.counter_labels[key].setText(text(counters[key]))

    def show_report(self, report: dict) -> None:
        """Render the score report: headline, findings, then a table of metrics."""
        passed = report.get("passed")
        colour = "#1a7f37" if passed else "#b42318"
        parts = [
            f"<h2 style='color:{colour}'>Score {report.get('score', 0):.0f} / 100 — {'PASS' if passed else 'NOT YET'}</h2>"
        ]
        findings = report.get("findings") or []
        if findings:
            parts.append("<h3>What to work on</h3><ul>")
            parts.extend(f"<li>{html.escape(str(f))}</li>" for f in findings)
            parts.append("</ul>")
        parts.append("<h3>Metrics</h3><table cellspacing='0' cellpadding='3' border='1'>")
        parts.append("<tr><th>metric</th><th>value</th><th>reference</th><th></th></tr>")
        for name, metric in (report.get("metrics") or {}).items():
            value = metric.get("value")
            shown = f"{value:.1f}" if isinstance(value, float) else html.escape(str(value))
            mark = {True: "✔", False: "✘"}.get(metric.get("passed"), "")
            parts.append(
                f"<tr><td>{html.escape(name.replace('_', ' '))}</td><td>{shown} {html.escape(str(metric.get('unit') or ''))}</td>"
                f"<td>{html.escape(str(metric.get('reference') or ''))}</td><td>{mark}</td></tr>"
            )
        parts.append("</table>")
        self.report.setHtml("".join(parts))
        for button in (self.replay_button, self.same_button, self.new_button):
            button.setEnabled(True)
        for button in (self.next_button, self.implant_button, self.finish_button):
            button.setEnabled(False)
