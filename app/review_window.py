"""The instructor's review mode: trainees and cohorts, their attempts with scores, learning curves and
CUSUM, the pass mark, the replay of one attempt (timeline with scrub, play and jump to each shot,
instrument path in 3D, events over time), sign-off and the credentialing report.

It reads the records database and attempt files; it writes only sign-offs, comments and programme
settings (CUSUM p0/p1/α/β). The instructor signs in with their passphrase (a trainee's ID is
refused); every sign-off and setting is signed with their own key and appended to the ledger.
Approving a failed attempt needs a comment and a confirmation; a new decision supersedes the
attempt's current one, and both stay listed. Replaying an attempt re-renders every image, which takes seconds: it runs on a worker thread
and the result comes back to the GUI thread through a queued signal.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyvista.plotting  # noqa: F401 - loaded on the main thread: 3D render threads race its lazy import
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeySequence, QPixmap, QShortcut
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from fluorosim.app.widgets.monitor import MonitorWidget
from fluorosim.app.widgets.scene3d import Scene3DWidget
from fluorosim.scenarios.records.cusum import CusumParameters
from fluorosim.scenarios.records.database import (
    Actor,
    AttemptRow,
    RecordsError,
    RecordStore,
    SignedInInstructor,
)
from fluorosim.scenarios.records.learning import (
    CURVE_METRICS,
    LearningCurve,
    cohort_summary,
    learning_curve,
)
from fluorosim.scenarios.records.passmark import PassMark, contrasting_groups

#: (t_s, image, info with "shot" and "view") of one re-rendered frame.
ReplayFrame = tuple[float, np.ndarray, dict[str, Any]]

#: Event kinds listed in the "events over time" table, with how to describe their data.
TIMELINE_KINDS = ("shot", "breach", "step", "tissue", "implant", "refused", "score")

#: Programme setting keys of the CUSUM (as scenarios.records.report.cusum_parameters_for reads them).
CUSUM_KEYS = {"p0": "cusum_p0", "p1": "cusum_p1", "alpha": "cusum_alpha", "beta": "cusum_beta"}


def png_pixmap(data: bytes) -> QPixmap:
    """A QPixmap from PNG bytes."""
    pixmap = QPixmap()
    pixmap.loadFromData(data, "PNG")
    return pixmap


# -- headless helpers (no widgets) ---------------------------------------------------------------
class _FrameKeeper:
    """Wraps a renderer and keeps every frame image it renders, in order."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer
        self.images: list[np.ndarray] = []
        self.doses: list[tuple[float, float, float]] = []  # beam_on_s, air_kerma_mgy, kap_gycm2

    def render_frame(self, *args: Any, **kwargs: Any) -> Any:
        frame = self.renderer.render_frame(*args, **kwargs)
        self.images.append(np.asarray(frame.image))
        dose = getattr(frame, "dose", None)
        self.doses.append(
            tuple(
                float(getattr(dose, name, 0.0) or 0.0)
                for name in ("beam_on_s", "air_kerma_mgy", "kap_gycm2")
            )
        )
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self.renderer, name)


@dataclass
class ReplayResult:
    """What the worker thread hands back: the re-rendered frames, the patient surfaces, a problem."""

    frames: list[ReplayFrame] = field(default_factory=list)
    surfaces: dict[str, tuple[Any, str]] = field(default_factory=dict)
    problem: str = ""


def replay_frames(
    attempt_file: str | Path,
    patient: Any = None,
    renderer_factory: Callable[[Any, str], Any] | None = None,
    with_surfaces: bool = True,
) -> ReplayResult:
    """Replay an attempt headlessly (same commands, same random state) and pair each re-rendered
    image with its recorded frame event (time, shot number, view); with the patient's overview
    surfaces for the 3D view. ``patient``/``renderer_factory`` default to what the header names."""
    from fluorosim.scenarios.recording import default_renderer, read_attempt, replay_attempt

    keepers: list[_FrameKeeper] = []
    patients: list[Any] = []

    def factory(replay_patient: Any, carm_model: str) -> _FrameKeeper:
        patients.append(replay_patient)
        keepers.append(
            _FrameKeeper((renderer_factory or default_renderer)(replay_patient, carm_model))
        )
        return keepers[-1]

    replay_attempt(attempt_file, patient=patient, renderer_factory=factory)
    recorded = read_attempt(attempt_file)
    frame_events = [e for e in recorded.events if e.get("kind") == "frame"]
    shot_views = {
        e["data"].get("index"): e["data"].get("view")
        for e in recorded.events
        if e.get("kind") == "shot"
    }
    images = keepers[0].images if keepers else []
    doses = np.cumsum(keepers[0].doses, axis=0) if keepers and images else np.zeros((0, 3))
    result = ReplayResult()
    for event, image, dose in zip(frame_events, images, doses, strict=False):
        shot = event["data"].get("shot")
        info = {
            "shot": shot,
            "view": shot_views.get(shot),
            "beam_on_s": float(dose[0]),  # cumulative up to and including this frame
            "air_kerma_mgy": float(dose[1]),
            "kap_gycm2": float(dose[2]),
        }
        result.frames.append((float(event.get("t_s", 0.0)), image, info))
    if len(images) != len(frame_events):
        result.problem = (
            f"the replay rendered {len(images)} images but the attempt file records "
            f"{len(frame_events)} frames"
        )
    if with_surfaces and patients:
        result.surfaces = patient_surfaces(patients[0])
    return result


def patient_surfaces(patient: Any) -> dict[str, tuple[Any, str]]:
    """The coarse bone / neural / vessel surfaces of the trainee window's 3D view."""
    from fluorosim.app.controller import SURFACE_GROUPS, overview_surface

    surfaces = {}
    for style, test in SURFACE_GROUPS.items():
        mesh = overview_surface(patient, [n for n in patient.label_table if test(n)])
        if mesh is not None:
            surfaces[style] = (mesh, style)
    return surfaces


def describe_event(kind: str, data: dict[str, Any]) -> str:
    """One line for the events-over-time table."""
    if kind == "shot":
        return (
            f"shot {data.get('index')} ({data.get('mode', '')}, {data.get('view') or 'free pose'})"
        )
    if kind == "breach":
        return (
            f"BREACH {data.get('structure')} ({data.get('label')}), "
            f"{data.get('depth_mm')} mm, {data.get('severity', '')}"
        )
    if kind == "step":
        return f"step {data.get('step')}"
    if kind == "tissue":
        return f"tip in {data.get('label')}"
    if kind == "implant":
        return f"implant {data.get('name')} placed ({data.get('step')})"
    if kind == "refused":
        return f"refused {data.get('command')}: {data.get('reason')}"
    if kind == "score":
        score = data.get("score")
        score_text = f"{score:.1f}" if isinstance(score, int | float) else str(score)
        return f"score {score_text} ({'passed' if data.get('passed') else 'not passed'})"
    return str(data)


def attempt_timeline(events: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """(t_s, kind, description) of the events an instructor follows: shots, breaches, steps…"""
    return [
        (float(e.get("t_s") or 0.0), str(e["kind"]), describe_event(e["kind"], e.get("data", {})))
        for e in events
        if e.get("kind") in TIMELINE_KINDS
    ]


def instrument_path(events: list[dict[str, Any]]) -> np.ndarray:
    """(N, 3) LPS mm tip positions of the recorded "pose" events, in order."""
    tips = [
        e["data"]["tip_mm"] for e in events if e.get("kind") == "pose" and "tip_mm" in e["data"]
    ]
    return np.asarray(tips, dtype=float).reshape(-1, 3)


def pass_mark_for(
    store: RecordStore, scenario_id: str | None = None
) -> tuple[PassMark | None, str]:
    """The contrasting-groups pass mark from expert vs other trainees' finished attempts, and the
    text to show (the method's refusal when the groups are too small or do not separate)."""
    experts = {t["id"] for t in store.trainees() if t["is_expert"]}
    expert_scores, novice_scores = [], []
    for row in store.attempts(scenario_id=scenario_id):
        if row.status != "finished" or row.score is None:
            continue
        (expert_scores if row.trainee_id in experts else novice_scores).append(row.score)
    try:
        mark = contrasting_groups(expert_scores, novice_scores)
    except ValueError as error:
        return None, f"No pass mark: {error}."
    return mark, (
        f"Pass mark {mark.score:.1f} (contrasting groups: experts {mark.expert_mean:.1f} ± "
        f"{mark.expert_sd:.1f}, n = {len(expert_scores)}; others {mark.novice_mean:.1f} ± "
        f"{mark.novice_sd:.1f}, n = {len(novice_scores)}; experts failed "
        f"{100 * mark.false_fail_experts:.0f} %, others passed {100 * mark.false_pass_novices:.0f} %)"
    )


def series_png(curve: LearningCurve) -> bytes:
    """Time, shots, dose and fluoroscopy time per attempt (matplotlib Agg, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 3.6), dpi=100)
    numbers = list(range(1, curve.attempts + 1))
    for index, (name, title) in enumerate(CURVE_METRICS.items(), start=1):
        axes = figure.add_subplot(2, 2, index)
        values = [np.nan if v is None else v for v in curve.series.get(name, [])]
        axes.plot(numbers[: len(values)], values, "o-", color="#345", markersize=3, linewidth=1)
        axes.set_title(title, fontsize=8)
        axes.set_xlim(0.5, max(1, curve.attempts) + 0.5)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.tick_params(labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def attempt_metrics_png(events: list[dict[str, Any]]) -> bytes:
    """Shots and images taken so far against attempt time, with breaches (red) and step changes
    (grey) marked: the attempt's metrics over time, from its recorded events."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 2.2), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    end_s = max((float(e.get("t_s") or 0.0) for e in events), default=0.0)
    for kind, colour, label in (("frame", "#5dade2", "images"), ("shot", "#345", "shots")):
        times = [float(e.get("t_s") or 0.0) for e in events if e.get("kind") == kind]
        axes.step(
            [0.0, *times, end_s],
            [0, *range(1, len(times) + 1), len(times)],
            where="post",
            color=colour,
            label=label,
        )
    for e in events:
        if e.get("kind") == "breach":
            axes.axvline(float(e.get("t_s") or 0.0), color="#c33", linewidth=1.5)
        elif e.get("kind") == "step":
            axes.axvline(float(e.get("t_s") or 0.0), color="#999", linestyle="--", linewidth=1)
    axes.set_xlabel("attempt time (s)  — red: breach, grey: step done", fontsize=8)
    axes.set_ylabel("count so far", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def ensure_instructor(
    store: RecordStore,
    instructor_id: str,
    parent: QWidget | None = None,
    passphrase: str | None = None,
) -> Actor | None:
    """The instructor, signed in with their passphrase (asked for here when not given); None when
    the ID is not an instructor account (a trainee's ID never is) or the passphrase is wrong."""
    instructor_id = instructor_id.strip()
    if not instructor_id:
        return None
    if passphrase is None:
        passphrase, ok = QInputDialog.getText(
            parent,
            "Instructor review",
            f"Passphrase of instructor {instructor_id}:",
            QLineEdit.EchoMode.Password,
        )
        if not ok:
            return None
    try:
        return store.sign_in(instructor_id, passphrase)
    except RecordsError as error:
        QMessageBox.warning(parent, "Instructor review", f"Not signed in: {error}.")
        return None


def open_review(parent: QWidget, url: str | None = None) -> ReviewWindow | None:
    """File → Instructor review…: ask for the instructor ID, open the records, show the review."""
    instructor_id, ok = QInputDialog.getText(parent, "Instructor review", "Instructor ID:")
    if not ok or not instructor_id.strip():
        return None
    try:
        store = RecordStore.open(url)
    except RecordsError as error:
        QMessageBox.warning(parent, "Instructor review", str(error))
        return None
    actor = ensure_instructor(store, instructor_id, parent)
    if actor is None:
        store.close()
        return None
    window = ReviewWindow(store, actor, owns_store=True)
    parent.review_window = window  # keep it alive while shown
    window.showMaximized()
    return window


# -- widgets ------------------------------------------------------------------------------------
class ReplayTimeline(QWidget):
    """Every image of one attempt on a timeline: scrub, play, jump to each shot."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.status = QLabel("Open an attempt to replay its images.")
        layout.addWidget(self.status)
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
        self.frames: list[ReplayFrame] = []
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._advance)
        self.play_button.clicked.connect(self.toggle_play)
        self.slider.valueChanged.connect(self.show_index)
        self.shot_jump.activated.connect(self.jump_to_shot)
        self.set_frames([])

    def set_frames(self, frames: list[ReplayFrame]) -> None:
        """(t_s, image, info) of every frame in order; info has ``shot`` and ``view``."""
        self.stop()
        self.frames = frames
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(frames) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.shot_jump.clear()
        seen = set()
        for index, (t_s, _, info) in enumerate(frames):
            shot = info.get("shot")
            if shot not in seen:
                seen.add(shot)
                self.shot_jump.addItem(
                    f"shot {shot} at {t_s:05.1f} s ({info.get('view') or 'free pose'})", index
                )
        for widget in (self.play_button, self.slider, self.shot_jump):
            widget.setEnabled(bool(frames))
        self.show_index(0)

    def jump_to_shot(self, combo_index: int) -> None:
        """Show the first frame of the shot at ``combo_index`` of the jump list."""
        frame_index = self.shot_jump.itemData(combo_index)
        if frame_index is not None:
            self.slider.setValue(int(frame_index))

    def show_index(self, index: int) -> None:
        if not self.frames:
            self.monitor.set_image(None)
            self.monitor.set_overlay(shot_number=0, view_name="")
            self.time_label.setText("—")
            return
        t_s, image, info = self.frames[max(0, min(index, len(self.frames) - 1))]
        self.monitor.set_image(image)
        self.monitor.set_overlay(
            shot_number=int(info.get("shot") or 0),
            view_name=str(info.get("view") or ""),
            beam_on_s=float(info.get("beam_on_s", 0.0)),
            air_kerma_mgy=float(info.get("air_kerma_mgy", 0.0)),
            kap_gycm2=float(info.get("kap_gycm2", 0.0)),
        )
        self.time_label.setText(f"{t_s:6.1f} s  ({index + 1}/{len(self.frames)})")
        self._follow_shot(index)

    def _follow_shot(self, frame_index: int) -> None:
        """Point the "Jump to" box at the shot whose frames are being shown."""
        combo_index = -1
        for i in range(self.shot_jump.count()):
            if int(self.shot_jump.itemData(i)) <= frame_index:
                combo_index = i
        if combo_index >= 0 and combo_index != self.shot_jump.currentIndex():
            self.shot_jump.blockSignals(True)
            self.shot_jump.setCurrentIndex(combo_index)
            self.shot_jump.blockSignals(False)

    def step(self, delta: int) -> None:
        """Show the next (+1) or previous (−1) frame."""
        if self.frames:
            self.stop()
            self.slider.setValue(max(0, min(self.slider.maximum(), self.slider.value() + delta)))

    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.stop()
        elif self.frames:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start(250)
            self.play_button.setText("Pause")

    def stop(self) -> None:
        self.timer.stop()
        self.play_button.setText("Play")

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.stop()
        else:
            self.slider.setValue(self.slider.value() + 1)


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.horizontalHeader().setStretchLastSection(True)
    return table


#: Columns of the attempts table: score and result first, so they are never off-screen.
ATTEMPT_COLUMNS = ("#", "score", "result", "scenario", "mode", "status", "finished")


def _fit_columns(table: QTableWidget, stretch: int) -> None:
    """Every column sized to its contents except ``stretch``, which takes (and elides in) the rest."""
    header = table.horizontalHeader()
    header.setStretchLastSection(False)
    for column in range(table.columnCount()):
        mode = (
            QHeaderView.ResizeMode.Stretch
            if column == stretch
            else QHeaderView.ResizeMode.ResizeToContents
        )
        header.setSectionResizeMode(column, mode)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


def _fill(table: QTableWidget, rows: list[list[str]], user_data: list[Any] | None = None) -> None:
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            item = QTableWidgetItem(value)
            if user_data is not None:
                item.setData(Qt.ItemDataRole.UserRole, user_data[r])
            table.setItem(r, c, item)


class ReviewWindow(QMainWindow):
    """Review mode for an instructor.

    ``replayer(attempt_file) -> ReplayResult`` re-renders an attempt (default :func:`replay_frames`
    on the patient its header names); it runs on a worker thread.
    """

    replay_finished = pyqtSignal(int, object)

    def __init__(
        self,
        store: RecordStore,
        instructor: Actor,
        parent: QWidget | None = None,
        replayer: Callable[[str], ReplayResult] | None = None,
        programme: str = "default",
        owns_store: bool = False,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.instructor = instructor
        self.replayer = replayer or replay_frames
        self.owns_store = owns_store
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="replay"
        )
        self.selected_attempt: int | None = None
        self.current_curve: LearningCurve | None = None
        self.pass_mark: PassMark | None = None
        self.replaying_attempt: int | None = None
        self.path_points = np.zeros((0, 3))
        self.path_mesh: Any = None
        self.setWindowTitle(f"fluorosim review — {instructor.id} ({instructor.role})")

        splitter = QSplitter()
        splitter.addWidget(self._build_left())
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_curves_tab(programme), "Learning curves and CUSUM")
        self.tabs.addTab(self._build_attempt_tab(), "Attempt and sign-off")
        self.replay = ReplayTimeline()
        self.tabs.addTab(self.replay, "Replay")
        self.scene3d = Scene3DWidget()
        self.tabs.addTab(self.scene3d, "Instrument path (3D)")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([520, 880])
        self.setCentralWidget(splitter)
        self.ledger_label = QLabel("")
        self.statusBar().addPermanentWidget(self.ledger_label)

        self.cohort.currentIndexChanged.connect(self.load_trainees)
        self.trainee.currentIndexChanged.connect(self.load_scenarios)
        self.scenario_filter.currentIndexChanged.connect(self.load_attempts)
        self.attempts.itemSelectionChanged.connect(self.open_selected)
        self.approve_button.clicked.connect(lambda: self.sign("approved"))
        self.practice_button.clicked.connect(lambda: self.sign("needs_practice"))
        self.comment_button.clicked.connect(lambda: self.sign("comment"))
        self.apply_cusum_button.clicked.connect(self.apply_cusum_settings)
        self.programme.editingFinished.connect(self.load_cusum_settings)
        self.export_button.clicked.connect(self.export_report_dialog)
        self.refresh_button.clicked.connect(self.refresh)
        self.events_table.cellDoubleClicked.connect(lambda row, _column: self.show_event(row))
        self.replay_finished.connect(self._replay_done)
        self.load_cusum_settings()
        self.load_cohorts()
        self.refresh_ledger()
        self._add_shortcuts()
        self.resize(1300, 820)

    def _add_shortcuts(self) -> None:
        """Keys that act wherever focus is in the window (Ctrl+Q, Ctrl+↑/↓ through attempts)."""
        bindings = (
            ("Ctrl+Q", self.close, "close the review"),
            ("Ctrl+Down", lambda: self.step_attempt(+1), "next attempt"),
            ("Ctrl+Up", lambda: self.step_attempt(-1), "previous attempt"),
            ("Ctrl+Right", lambda: self.replay.step(+1), "next replay frame"),
            ("Ctrl+Left", lambda: self.replay.step(-1), "previous replay frame"),
        )
        self.shortcuts: dict[str, QShortcut] = {}
        for keys, slot, _meaning in bindings:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts[keys] = shortcut
        self.statusBar().showMessage(
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

    # -- construction -----------------------------------------------------------------------
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
        self.attempts = _table(list(ATTEMPT_COLUMNS))
        self.attempts.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        _fit_columns(self.attempts, stretch=ATTEMPT_COLUMNS.index("scenario"))
        layout.addWidget(QLabel("Attempts"))
        layout.addWidget(self.attempts, 2)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the records again (trainees keep adding attempts)")
        self.export_button = QPushButton("Credentialing report (PDF)…")
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.export_button, 1)
        layout.addLayout(buttons)
        self.cohort_table = _table(
            ["trainee", "attempts", "pass rate", "median", "best", "to first pass"]
        )
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
        for name in CUSUM_KEYS:
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
        self.events_table = _table(["t (s)", "event", "detail"])
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

    # -- pickers and lists ------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the records again, keeping the cohort, trainee and scenario selected."""
        cohort_id, trainee_id = self.cohort.currentData(), self.trainee.currentData()
        self.load_cohorts()
        for combo, value in ((self.cohort, cohort_id), (self.trainee, trainee_id)):
            index = combo.findData(value)
            if index >= 0:
                combo.setCurrentIndex(index)
        self.refresh_ledger()

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
            expert = " — expert" if trainee["is_expert"] else ""
            self.trainee.addItem(f"{trainee['name']} ({trainee['id']}){expert}", trainee["id"])
        self.trainee.blockSignals(False)
        summary = cohort_summary(self.store.attempts(cohort_id=cohort_id))

        def score(value: float | None) -> str:
            return "—" if value is None else f"{value:.1f}"

        _fill(
            self.cohort_table,
            [
                [
                    item["trainee_id"],
                    str(item["attempts"]),
                    f"{100 * item['pass_rate']:.0f} %",
                    score(item["median_score"]),
                    score(item["best_score"]),
                    str(item["attempts_to_first_pass"] or "—"),
                ]
                for item in summary
            ],
        )
        self.load_scenarios()

    def load_scenarios(self) -> None:
        """The scenario filter lists the scenarios the selected trainee attempted."""
        trainee_id = self.trainee.currentData()
        previous = self.scenario_filter.currentData()
        rows = self.store.attempts(trainee_id) if trainee_id else []
        self.scenario_filter.blockSignals(True)
        self.scenario_filter.clear()
        self.scenario_filter.addItem("All scenarios", None)
        for scenario_id in sorted({r.scenario_id for r in rows}):
            self.scenario_filter.addItem(scenario_id, scenario_id)
        index = self.scenario_filter.findData(previous)
        self.scenario_filter.setCurrentIndex(max(0, index))
        self.scenario_filter.blockSignals(False)
        self.load_attempts()

    def load_attempts(self) -> None:
        trainee_id = self.trainee.currentData()
        scenario_id = self.scenario_filter.currentData()
        self.attempts.blockSignals(True)
        self.attempts.clearSelection()
        rows = self.store.attempts(trainee_id, scenario_id) if trainee_id else []
        _fill(
            self.attempts,
            [
                [
                    str(a.id),
                    "—" if a.score is None else f"{a.score:.1f}",
                    {True: "pass", False: "fail"}.get(a.passed, "—") + (" ✍" if a.signoffs else ""),
                    a.scenario_id,
                    a.mode,
                    a.status,
                    (a.finished_utc or "")[5:16].replace("T", " "),
                ]
                for a in rows
            ],
            [a.id for a in rows],
        )
        self.attempts.blockSignals(False)
        self.pass_mark, text = pass_mark_for(self.store, scenario_id)
        self.pass_mark_label.setText(text)
        self.update_curves()

    def update_curves(self) -> None:
        """Redraw the learning curve, the per-attempt series and the CUSUM of the selection."""
        from fluorosim.scenarios.records.plots import cusum_png, learning_curve_png
        from fluorosim.scenarios.records.report import cusum_parameters_for

        trainee_id = self.trainee.currentData()
        if not trainee_id:
            self.current_curve = None
            for label in (self.curve_image, self.series_image, self.cusum_image):
                label.clear()
            self.cusum_label.setText("No trainee selected.")
            return
        scenario_id = self.scenario_filter.currentData()
        params = cusum_parameters_for(self.store, self.programme_name())
        rows = self.store.attempts(trainee_id, scenario_id)
        curve = learning_curve(rows, trainee_id, scenario_id, params)
        self.current_curve = curve
        mark = self.pass_mark.score if self.pass_mark else None
        self.curve_image.setPixmap(png_pixmap(learning_curve_png(curve, mark)))
        self.series_image.setPixmap(png_pixmap(series_png(curve)))
        self.cusum_image.setPixmap(png_pixmap(cusum_png(curve)))
        chart = curve.cusum
        assert chart is not None
        verdict = (
            f"unacceptable performance signalled at attempt {chart.unacceptable_at}"
            if chart.unacceptable_at
            else f"competence signalled at attempt {chart.competent_at}"
            if chart.competent_at
            else "no signal yet"
        )
        self.cusum_label.setText(
            f"CUSUM ({self.programme_name()}): p0 = {params.p0:g}, p1 = {params.p1:g}, "
            f"α = {params.alpha:g}, β = {params.beta:g} → s = {params.s:.3f}, "
            f"h0 = {chart.h0:+.2f}, h1 = {chart.h1:+.2f}; {curve.attempts} finished attempts, "
            f"{verdict}."
        )

    # -- programme settings -----------------------------------------------------------------
    def programme_name(self) -> str:
        return self.programme.text().strip() or "default"

    def load_cusum_settings(self) -> None:
        from fluorosim.scenarios.records.report import cusum_parameters_for

        params = cusum_parameters_for(self.store, self.programme_name())
        for name, spin in self.cusum_spins.items():
            spin.setValue(float(getattr(params, name)))
        if self.trainee.count():
            self.update_curves()

    def apply_cusum_settings(self) -> None:
        """Store the programme's CUSUM p0, p1, α, β (instructors only; logged in the ledger)."""
        values = {name: round(spin.value(), 6) for name, spin in self.cusum_spins.items()}
        try:
            CusumParameters(**values)
        except ValueError as error:
            self.settings_result.setText(f"Not applied: {error}.")
            return
        try:
            for name, value in values.items():
                self.store.set_programme_setting(
                    self.programme_name(), CUSUM_KEYS[name], value, self.instructor
                )
        except RecordsError as error:
            self.settings_result.setText(f"Not applied: {error}.")
            return
        self.settings_result.setText(
            f"CUSUM settings of programme '{self.programme_name()}' saved by {self.instructor.id}."
        )
        self.update_curves()
        self.refresh_ledger()

    # -- one attempt ------------------------------------------------------------------------
    def attempt_row(self, attempt_id: int) -> AttemptRow | None:
        return next((a for a in self.store.attempts() if a.id == attempt_id), None)

    def open_selected(self) -> None:
        items = self.attempts.selectedItems()
        if items:
            self.open_attempt(int(items[0].data(Qt.ItemDataRole.UserRole)))

    def open_attempt(self, attempt_id: int) -> None:
        """Show an attempt's details and events, draw its path, and start replaying its images."""
        attempt = self.attempt_row(attempt_id)
        if attempt is None:
            return
        self.selected_attempt = attempt_id
        self.show_detail(attempt)
        for button in self.sign_buttons():
            button.setEnabled(True)
        self.sign_result.setText("")
        self.events_table.setRowCount(0)
        self.metrics_image.clear()
        self.replay.set_frames([])
        events = self.read_events(attempt)
        if events is not None:
            _fill(
                self.events_table,
                [[f"{t:.2f}", kind, text] for t, kind, text in attempt_timeline(events)],
            )
            self.metrics_image.setPixmap(png_pixmap(attempt_metrics_png(events)))
            self.path_points = instrument_path(events)
            self.replaying_attempt = attempt_id
            self.replay.status.setText(f"Replaying attempt {attempt_id}… (re-rendering its images)")
            future = self.executor.submit(self.replayer, str(attempt.attempt_file))
            future.add_done_callback(lambda f: self._hand_over(attempt_id, f))

    def _hand_over(self, attempt_id: int, future: concurrent.futures.Future) -> None:
        """Worker thread: pass the finished replay to the GUI thread (queued signal)."""
        with contextlib.suppress(RuntimeError):  # the window was closed and deleted meanwhile
            self.replay_finished.emit(attempt_id, future)

    def show_event(self, row: int) -> None:
        """Double-clicked event: the replay at the first image taken at or after its time."""
        item = self.events_table.item(row, 0)
        if item is None or not self.replay.frames:
            return
        t_s = float(item.text())
        index = next(
            (i for i, (frame_t, _, _) in enumerate(self.replay.frames) if frame_t >= t_s - 1e-6),
            len(self.replay.frames) - 1,
        )
        self.replay.slider.setValue(index)
        self.tabs.setCurrentWidget(self.replay)

    def read_events(self, attempt: AttemptRow) -> list[dict[str, Any]] | None:
        """The events of the attempt file, or None (with the reason shown) when there is none."""
        from fluorosim.scenarios.recording import read_attempt

        if not attempt.attempt_file:
            self.replay.status.setText(f"Attempt {attempt.id} has no attempt file to replay.")
            return None
        try:
            return read_attempt(attempt.attempt_file).events
        except ValueError as error:  # AttemptFileError names the file and line
            self.replay.status.setText(f"Cannot replay attempt {attempt.id}: {error}")
            return None

    def show_detail(self, attempt: AttemptRow) -> None:
        score = "—" if attempt.score is None else f"{attempt.score:.1f}"
        result = {True: "passed", False: "not passed"}.get(attempt.passed, "no pass/fail")
        lines = [
            f"<h3>Attempt {attempt.id}: {attempt.scenario_id} ({attempt.mode})</h3>",
            f"<p>Trainee {attempt.trainee_id}; started {attempt.started_utc}; "
            f"status {attempt.status}; score {score}; {result}.</p><ul>",
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
            f"<li>{'<s>' if s.get('superseded_by') else ''}{s['decision'].replace('_', ' ')} by "
            f"{s.get('instructor_name') or s['instructor_id']} ({s['instructor_id']}) at {s['t_utc']}: "
            f"{s['comment']}{'</s> (superseded)' if s.get('superseded_by') else ''}"
            f"{'' if s.get('signed', True) else ' (unsigned)'}</li>"
            for s in attempt.signoffs
        ] or ["<li>none yet</li>"]
        lines.append("</ul>")
        self.detail.setHtml("".join(lines))

    def _replay_done(self, attempt_id: int, future: concurrent.futures.Future) -> None:
        if attempt_id != self.replaying_attempt:
            return  # the instructor opened another attempt meanwhile
        self.replaying_attempt = None
        try:
            result: ReplayResult = future.result()
        except Exception as error:  # a replay failure is shown, never a traceback in the GUI
            self.replay.status.setText(f"Cannot replay attempt {attempt_id}: {error}")
            return
        self.replay.set_frames(result.frames)
        shots = len({info.get("shot") for _, _, info in result.frames})
        text = f"Attempt {attempt_id}: {len(result.frames)} images in {shots} shots."
        self.replay.status.setText(text + (f" Note: {result.problem}." if result.problem else ""))
        self.show_path(result.surfaces)

    def show_path(self, surfaces: dict[str, tuple[Any, str]]) -> None:
        """The patient surfaces and the instrument tip path (polyline, end marked) in the 3D tab."""
        import pyvista as pv

        points = self.path_points
        self.path_mesh = pv.lines_from_points(points) if len(points) >= 2 else None
        self.scene3d.set_surfaces(surfaces)
        path_mesh = self.path_mesh

        def change(plotter: Any) -> None:
            for name in surfaces:  # see the path through the bone
                actor = plotter.actors.get(name)
                if actor is not None:
                    actor.prop.opacity = min(actor.prop.opacity, 0.35)
            plotter.remove_actor("path")
            plotter.remove_actor("path_end")
            if path_mesh is not None:
                plotter.add_mesh(path_mesh.tube(radius=1.2), color="#f39c12", name="path")
            if len(points):
                plotter.add_points(
                    points[-1:],
                    color="#e74c3c",
                    point_size=10,
                    render_points_as_spheres=True,
                    name="path_end",
                )

        render_thread = getattr(self.scene3d, "renderer", None)
        if render_thread is not None and hasattr(render_thread, "post"):
            render_thread.post(change)  # the 3D view renders on a thread of its own
        elif getattr(self.scene3d, "plotter", None) is not None:
            change(self.scene3d.plotter)
            self.scene3d.set_beam(None, None)  # marks the scene changed and repaints it

    # -- sign-off, ledger, report -----------------------------------------------------------
    def sign(self, decision: str) -> None:
        """Sign the selected attempt; a new decision supersedes the attempt's current one.

        Approving a failed attempt needs a comment and an explicit confirmation.
        """
        if self.selected_attempt is None:
            return
        attempt_id = self.selected_attempt
        attempt = self.attempt_row(attempt_id)
        comment = self.comment.text().strip()
        confirmed = False
        if not isinstance(self.instructor, SignedInInstructor):
            self.sign_result.setText(
                f"Not signed: only an instructor signed in with their passphrase can sign off "
                f"({self.instructor.id} is a {self.instructor.role})."
            )
            return
        if decision == "approved" and attempt is not None and attempt.passed is False:
            if not comment:
                self.sign_result.setText(
                    f"Not signed: attempt {attempt_id} failed; approving it needs a comment saying why."
                )
                return
            confirmed = self.confirm_failed_approval(attempt)
            if not confirmed:
                self.sign_result.setText(
                    f"Not signed: approval of failed attempt {attempt_id} cancelled."
                )
                return
        current = attempt.current_decision() if attempt is not None else None
        supersedes = current["id"] if current is not None and decision != "comment" else None
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
            + (f", superseding the sign-off of {current['t_utc']}." if supersedes else ".")
        )
        self.refresh_ledger()

    def confirm_failed_approval(self, attempt: AttemptRow) -> bool:
        """Ask the instructor to confirm approving an attempt that failed."""
        score = "—" if attempt.score is None else f"{attempt.score:.1f}"
        answer = QMessageBox.question(
            self,
            "Approve a failed attempt?",
            f"Attempt {attempt.id} of {attempt.trainee_id} FAILED (score {score}).\n\n"
            "Approve it anyway? Your signed approval and comment go into the ledger and the "
            "credentialing report.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

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
        from fluorosim.scenarios.records.report import write_report

        trainee_id = self.trainee.currentData()
        if not trainee_id:
            raise RecordsError("select a trainee first")
        write_report(self.store, trainee_id, "pdf", out, self.scenario_filter.currentData())
        return out

    def export_report_dialog(self) -> None:
        trainee_id = self.trainee.currentData()
        if not trainee_id:
            self.statusBar().showMessage("Select a trainee first.", 5000)
            return
        name, _ = QFileDialog.getSaveFileName(
            self, "Credentialing report", f"fluorosim-{trainee_id}.pdf", "PDF (*.pdf)"
        )
        if not name:
            return
        try:
            self.export_report(Path(name))
        except (OSError, RecordsError, ValueError) as error:
            QMessageBox.warning(self, "Credentialing report", f"Not written: {error}")
            return
        self.statusBar().showMessage(f"Report written to {name}", 8000)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.replaying_attempt = None
        self.replay.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.scene3d.close_scene()
        if self.owns_store:
            self.store.close()
        super().closeEvent(event)
