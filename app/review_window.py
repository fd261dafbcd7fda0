"""The instructor's review mode: trainees and cohorts, their attempts with scores, learning curves and
CUSUM, the replay of one attempt on a timeline (scrub, play, jump to each shot), and sign-off.

It reads the records database and attempt files; it writes only sign-offs and comments, which the
records store attributes to the instructor and appends to the ledger.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.widgets.monitor import MonitorWidget
from scenarios.records.database import Actor, RecordsError, RecordStore
from scenarios.records.learning import cohort_summary, learning_curve
from scenarios.records.plots import cusum_png, learning_curve_png
from scenarios.records.report import cusum_parameters_for


def png_pixmap(data: bytes) -> QPixmap:
    """A QPixmap from PNG bytes."""
    pixmap = QPixmap()
    pixmap.loadFromData(data, "PNG")
    return pixmap


class _FrameKeeper:
    """Wraps a renderer and keeps every frame image it renders, in order."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer
        self.images: list[np.ndarray] = []

    def render_frame(self, *args: Any, **kwargs: Any) -> Any:
        frame = self.renderer.render_frame(*args, **kwargs)
        self.images.append(np.asarray(frame.image))
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self.renderer, name)


def replay_frames(attempt_file: str) -> list[tuple[float, np.ndarray, dict[str, Any]]]:
    """Replay an attempt headlessly (deterministic: same commands, same random state) and pair each
    re-rendered image with its recorded frame event (time, shot number, view)."""
    from scenarios.recording import default_renderer, read_attempt, replay_attempt

    keepers: list[_FrameKeeper] = []

    def factory(patient: Any, carm_model: str) -> _FrameKeeper:
        keepers.append(_FrameKeeper(default_renderer(patient, carm_model)))
        return keepers[-1]

    replay_attempt(attempt_file, renderer_factory=factory)
    recorded = read_attempt(attempt_file)
    frame_events = [e for e in recorded.events if e.get("kind") == "frame"]
    shot_views = {
        e["data"].get("index"): e["data"].get("view")
        for e in recorded.events
        if e.get("kind") == "shot"
    }
    frames = []
    for event, image in zip(frame_events, keepers[0].images if keepers else [], strict=False):
        shot = event["data"].get("shot")
        frames.append(
            (float(event.get("t_s", 0.0)), image, {"shot": shot, "view": shot_views.get(shot)})
        )
    return frames


class ReplayTimeline(QWidget):
    """Every image of one attempt on a timeline: scrub, play, jump to each shot."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.monitor = MonitorWidget("REPLAY")
        self.monitor.placeholder = "Open an attempt to replay its images."
        layout.addWidget(self.monitor, 1)
        controls = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.shot_jump = QComboBox()
        self.time_label = QLabel("—")
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(QLabel("Jump to"))
        controls.addWidget(self.shot_jump)
        controls.addWidget(self.time_label)
        layout.addLayout(controls)
        self.frames: list[tuple[float, np.ndarray, dict[str, Any]]] = []
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._advance)
        self.play_button.clicked.connect(self.toggle_play)
        self.slider.valueChanged.connect(self.show_index)
        self.shot_jump.activated.connect(
            lambda index: self.slider.setValue(self.shot_jump.itemData(index))
        )

    def set_frames(self, frames: list[tuple[float, np.ndarray, dict[str, Any]]]) -> None:
        """(t_s, image, info) of every frame in order; info has ``shot`` and ``view``."""
        self.frames = frames
        self.slider.setRange(0, max(0, len(frames) - 1))
        self.shot_jump.clear()
        seen = set()
        for index, (t_s, _, info) in enumerate(frames):
            shot = info.get("shot")
            if shot not in seen:
                seen.add(shot)
                self.shot_jump.addItem(
                    f"shot {shot} at {t_s:05.1f} s ({info.get('view') or 'free pose'})", index
                )
        self.show_index(0)

    def show_index(self, index: int) -> None:
        if not self.frames:
            self.monitor.set_image(None)
            return
        t_s, image, info = self.frames[max(0, min(index, len(self.frames) - 1))]
        self.monitor.set_image(image)
        self.monitor.set_overlay(
            shot_number=int(info.get("shot", 0)), view_name=str(info.get("view") or "")
        )
        self.time_label.setText(f"{t_s:6.1f} s")

    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.play_button.setText("Play")
        else:
            self.timer.start(250)
            self.play_button.setText("Pause")

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.toggle_play()
        else:
            self.slider.setValue(self.slider.value() + 1)


class ReviewWindow(QMainWindow):
    """Review mode for an instructor."""

    def __init__(
        self, store: RecordStore, instructor: Actor, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.instructor = instructor
        self.setWindowTitle(f"fluorosim review — {instructor.id}")
        splitter = QSplitter()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        self.cohort = QComboBox()
        self.trainee = QComboBox()
        left_layout.addWidget(QLabel("Cohort"))
        left_layout.addWidget(self.cohort)
        left_layout.addWidget(QLabel("Trainee"))
        left_layout.addWidget(self.trainee)
        self.attempts = QTableWidget(0, 6)
        self.attempts.setHorizontalHeaderLabels(
            ["#", "scenario", "mode", "finished", "score", "result"]
        )
        self.attempts.verticalHeader().setVisible(False)
        self.attempts.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        left_layout.addWidget(self.attempts, 1)
        self.cohort_table = QTableWidget(0, 4)
        self.cohort_table.setHorizontalHeaderLabels(
            ["trainee", "attempts", "pass rate", "attempts to first pass"]
        )
        left_layout.addWidget(QLabel("Cohort comparison"))
        left_layout.addWidget(self.cohort_table)
        splitter.addWidget(left)

        self.tabs = QTabWidget()
        curves = QWidget()
        curves_layout = QVBoxLayout(curves)
        self.curve_image = QLabel()
        self.cusum_image = QLabel()
        curves_layout.addWidget(self.curve_image)
        curves_layout.addWidget(self.cusum_image)
        self.tabs.addTab(curves, "Learning curve and CUSUM")
        self.replay = ReplayTimeline()
        self.tabs.addTab(self.replay, "Replay")
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        self.detail = QTextBrowser()
        detail_layout.addWidget(self.detail, 1)
        sign_row = QHBoxLayout()
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("comment for the trainee and the committee")
        self.approve_button = QPushButton("Sign off: approved")
        self.practice_button = QPushButton("Needs practice")
        self.comment_button = QPushButton("Comment only")
        sign_row.addWidget(self.comment, 1)
        for button in (self.approve_button, self.practice_button, self.comment_button):
            button.setEnabled(False)
            sign_row.addWidget(button)
        detail_layout.addLayout(sign_row)
        self.sign_result = QLabel("")
        detail_layout.addWidget(self.sign_result)
        self.tabs.addTab(detail, "Attempt and sign-off")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)
        self.ledger_label = QLabel("")
        self.statusBar().addPermanentWidget(self.ledger_label)

        self.cohort.currentIndexChanged.connect(self.load_trainees)
        self.trainee.currentIndexChanged.connect(self.load_attempts)
        self.attempts.itemSelectionChanged.connect(self.open_selected)
        self.approve_button.clicked.connect(lambda: self.sign("approved"))
        self.practice_button.clicked.connect(lambda: self.sign("needs_practice"))
        self.comment_button.clicked.connect(lambda: self.sign("comment"))
        self.selected_attempt: int | None = None
        self.load_cohorts()
        self.refresh_ledger()
        self.resize(1300, 800)

    def load_cohorts(self) -> None:
        self.cohort.blockSignals(True)
        self.cohort.clear()
        self.cohort.addItem("All trainees", None)
        for cohort_id, name in self.store.query("SELECT id, name FROM cohorts ORDER BY id"):
            self.cohort.addItem(name, cohort_id)
        self.cohort.blockSignals(False)
        self.load_trainees()

    def load_trainees(self) -> None:
        cohort_id = self.cohort.currentData()
        self.trainee.blockSignals(True)
        self.trainee.clear()
        for trainee in self.store.trainees(cohort_id):
            self.trainee.addItem(f"{trainee['name']} ({trainee['id']})", trainee["id"])
        self.trainee.blockSignals(False)
        rows = self.store.attempts(cohort_id=cohort_id)
        summary = cohort_summary(rows)
        self.cohort_table.setRowCount(len(summary))
        for row, item in enumerate(summary):
            values = [
                item["trainee_id"],
                str(item["attempts"]),
                f"{100 * item['pass_rate']:.0f} %",
                str(item["attempts_to_first_pass"] or "—"),
            ]
            for column, value in enumerate(values):
                self.cohort_table.setItem(row, column, QTableWidgetItem(value))
        self.load_attempts()

    def load_attempts(self) -> None:
        trainee_id = self.trainee.currentData()
        self.attempts.setRowCount(0)
        if not trainee_id:
            return
        rows = self.store.attempts(trainee_id)
        self.attempts.setRowCount(len(rows))
        for index, attempt in enumerate(rows):
            values = [
                str(attempt.id),
                attempt.scenario_id,
                attempt.mode,
                (attempt.finished_utc or "")[:16],
                "—" if attempt.score is None else f"{attempt.score:.1f}",
                {True: "pass", False: "fail"}.get(attempt.passed, attempt.status),
            ]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, attempt.id)
                self.attempts.setItem(index, column, item)
        curve = learning_curve(rows, trainee_id, None, cusum_parameters_for(self.store))
        self.curve_image.setPixmap(png_pixmap(learning_curve_png(curve)))
        self.cusum_image.setPixmap(png_pixmap(cusum_png(curve)))

    def open_selected(self) -> None:
        items = self.attempts.selectedItems()
        if not items:
            return
        attempt_id = int(items[0].data(Qt.ItemDataRole.UserRole))
        self.selected_attempt = attempt_id
        attempt = next(
            a for a in self.store.attempts(self.trainee.currentData()) if a.id == attempt_id
        )
        lines = [
            f"<h3>Attempt {attempt.id}: {attempt.scenario_id} ({attempt.mode})</h3>",
            f"<p>Score {attempt.score if attempt.score is not None else '—'}; "
            f"{'passed' if attempt.passed else 'not passed'}; status {attempt.status}.</p><ul>",
        ]
        lines += [f"<li>{finding}</li>" for finding in attempt.findings]
        lines.append("</ul><h4>Metrics</h4><ul>")
        lines += [
            f"<li>{name}: {m['value']} {m['unit'] or ''} (reference {m['reference']})"
            f"{'' if m['passed'] is None else (' ✔' if m['passed'] else ' ✘')}</li>"
            for name, m in attempt.metrics.items()
        ]
        lines.append("</ul><h4>Sign-offs</h4><ul>")
        lines += [
            f"<li>{s['decision']} by {s['instructor_id']} at {s['t_utc']}: {s['comment']}</li>"
            for s in attempt.signoffs
        ]
        lines.append("</ul>")
        self.detail.setHtml("".join(lines))
        for button in (self.approve_button, self.practice_button, self.comment_button):
            button.setEnabled(True)
        self.replay.set_frames(self.replay_frames(attempt.attempt_file))

    def replay_frames(
        self, attempt_file: str | None
    ) -> list[tuple[float, np.ndarray, dict[str, Any]]]:
        """Re-run the recorded attempt headlessly and collect its frames (deterministic replay)."""
        if not attempt_file:
            return []
        try:
            return replay_frames(attempt_file)
        except (OSError, ValueError, KeyError) as error:
            self.sign_result.setText(f"Cannot replay {attempt_file}: {error}")
            return []

    def sign(self, decision: str) -> None:
        if self.selected_attempt is None:
            return
        try:
            self.store.sign_off(
                self.selected_attempt, self.instructor, decision, self.comment.text().strip()
            )
        except RecordsError as error:
            self.sign_result.setText(str(error))
            return
        self.sign_result.setText(
            f"Attempt {self.selected_attempt}: {decision.replace('_', ' ')} recorded by {self.instructor.id}."
        )
        self.comment.clear()
        self.open_selected()
        self.refresh_ledger()

    def refresh_ledger(self) -> None:
        result = self.store.verify()
        self.ledger_label.setText(
            f"ledger verified ({result.records_checked} records)"
            if result.ok
            else f"LEDGER FAILED: {result.problem}"
        )
        self.ledger_label.setStyleSheet(
            "color: #1a7f37" if result.ok else "color: #b42318; font-weight: bold"
        )
