"""The instructor's review mode: trainees and cohorts, their attempts with scores, learning curves and
CUSUM, the pass mark, the replay of one attempt (timeline with scrub, play and jump to each shot,
instrument path in 3D, events over time), sign-off and the credentialing report.

It reads the records database and attempt files; it writes only sign-offs, comments and programme
settings (CUSUM p0/p1/α/β). The instructor signs in with their passphrase (a trainee's ID is
refused); every sign-off and setting is signed with their own key and appended to the ledger.
Approving a failed attempt needs a comment and a confirmation; a new decision supersedes the
attempt's current one, and both stay listed. Replaying an attempt re-renders every image, which
takes seconds: it runs on a worker thread and the result comes back to the GUI thread through a
queued signal.

The window only adapts widgets: its parts are in ``app.review`` (layout, attempt pane, sign-off
pane, replay timeline); what they show is computed without Qt in ``scenarios.records.review``
(replay, events, texts, sign-off rules), ``scenarios.records.queries`` (the records it reads) and
``scenarios.records.plots`` (the charts).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import numpy as np
import pyvista.plotting  # noqa: F401 - loaded on the main thread: 3D render threads race its lazy import
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QWidget,
)

from fluorosim.app.review.attempt_pane import AttemptPane, patient_surfaces, replay_frames
from fluorosim.app.review.layout import ReviewLayout
from fluorosim.app.review.signoff_pane import SignOffPane
from fluorosim.app.review.widgets import ReplayTimeline, fill_table, png_pixmap
from fluorosim.app.widgets.scene3d import Scene3DWidget
from fluorosim.scenarios.records import queries
from fluorosim.scenarios.records.database import Actor, RecordsError, RecordStore
from fluorosim.scenarios.records.learning import LearningCurve, cohort_summary, learning_curve
from fluorosim.scenarios.records.passmark import PassMark
from fluorosim.scenarios.records.plots import (
    attempt_metrics_png,
    cusum_png,
    learning_curve_png,
    series_png,
)
from fluorosim.scenarios.records.queries import pass_mark_for
from fluorosim.scenarios.records.report import CUSUM_SETTING_KEYS, cusum_parameters_for
from fluorosim.scenarios.records.review import (
    ATTEMPT_COLUMNS,
    TIMELINE_KINDS,
    ReplayFrame,
    ReplayResult,
    attempt_cells,
    attempt_timeline,
    cohort_cells,
    cusum_text,
    describe_event,
    instrument_path,
)

#: Programme setting keys of the CUSUM (kept under its old name for callers of this module).
CUSUM_KEYS = CUSUM_SETTING_KEYS

__all__ = [  # what this module offered before its parts moved out; callers keep importing it here
    "ATTEMPT_COLUMNS",
    "CUSUM_KEYS",
    "TIMELINE_KINDS",
    "ReplayFrame",
    "ReplayResult",
    "ReplayTimeline",
    "ReviewWindow",
    "attempt_metrics_png",
    "attempt_timeline",
    "describe_event",
    "ensure_instructor",
    "instrument_path",
    "open_review",
    "pass_mark_for",
    "patient_surfaces",
    "png_pixmap",
    "replay_frames",
    "series_png",
]


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
    parent.review_window = window  # type: ignore[attr-defined] # keep it alive while shown
    window.showMaximized()
    return window


class ReviewWindow(ReviewLayout, AttemptPane, SignOffPane, QMainWindow):
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
        for cohort_id, name in queries.cohorts(self.store):
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
        fill_table(
            self.cohort_table,
            cohort_cells(cohort_summary(self.store.attempts(cohort_id=cohort_id))),
        )
        self.load_scenarios()

    def load_scenarios(self) -> None:
        """The scenario filter lists the scenarios the selected trainee attempted."""
        previous = self.scenario_filter.currentData()
        self.scenario_filter.blockSignals(True)
        self.scenario_filter.clear()
        self.scenario_filter.addItem("All scenarios", None)
        for scenario_id in queries.scenarios_attempted(self.store, self.trainee.currentData()):
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
        fill_table(self.attempts, [attempt_cells(a) for a in rows], [a.id for a in rows])
        self.attempts.blockSignals(False)
        self.pass_mark, text = pass_mark_for(self.store, scenario_id)
        self.pass_mark_label.setText(text)
        self.update_curves()

    def update_curves(self) -> None:
        """Redraw the learning curve, the per-attempt series and the CUSUM of the selection."""
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
        self.cusum_label.setText(cusum_text(self.programme_name(), params, curve))

    # -- programme settings -----------------------------------------------------------------
    def programme_name(self) -> str:
        return self.programme.text().strip() or "default"

    def load_cusum_settings(self) -> None:
        params = cusum_parameters_for(self.store, self.programme_name())
        for name, spin in self.cusum_spins.items():
            spin.setValue(float(getattr(params, name)))
        if self.trainee.count():
            self.update_curves()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.replaying_attempt = None
        self.replay.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.scene3d.close_scene()
        if self.owns_store:
            self.store.close()
        super().closeEvent(event)
