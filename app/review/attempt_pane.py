"""The review window's view of one attempt: its detail and events, the metrics-over-time chart,
the replay of its images (re-rendered on a worker thread, handed back through a queued signal) and
the instrument path in 3D.

A mixin of :class:`app.review_window.ReviewWindow`; what it shows comes from
``scenarios.records.review`` and ``scenarios.records.queries``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QPushButton, QTableWidget, QTabWidget, QTextBrowser

from fluorosim.app.review.widgets import ReplayTimeline, fill_table, png_pixmap
from fluorosim.app.widgets.scene3d import Scene3DWidget
from fluorosim.scenarios.records import queries
from fluorosim.scenarios.records import review as headless
from fluorosim.scenarios.records.database import AttemptRow, RecordStore
from fluorosim.scenarios.records.plots import attempt_metrics_png


def patient_surfaces(patient: Any) -> headless.Surfaces:
    """The coarse bone / neural / vessel surfaces of the trainee window's 3D view."""
    from fluorosim.app.controller import SURFACE_GROUPS, overview_surface

    surfaces = {}
    for style, test in SURFACE_GROUPS.items():
        mesh = overview_surface(patient, [n for n in patient.label_table if test(n)])
        if mesh is not None:
            surfaces[style] = (mesh, style)
    return surfaces


def replay_frames(
    attempt_file: str | Path,
    patient: Any = None,
    renderer_factory: Callable[[Any, str], Any] | None = None,
    with_surfaces: bool = True,
) -> headless.ReplayResult:
    """:func:`scenarios.records.review.replay_frames` with the trainee window's 3D surfaces."""
    return headless.replay_frames(
        attempt_file, patient, renderer_factory, patient_surfaces if with_surfaces else None
    )


class AttemptPane:
    """Opening, replaying and showing one attempt (used as a mixin of a QMainWindow)."""

    store: RecordStore
    attempts: QTableWidget
    detail: QTextBrowser
    events_table: QTableWidget
    metrics_image: QLabel
    sign_result: QLabel
    replay: ReplayTimeline
    scene3d: Scene3DWidget
    tabs: QTabWidget
    executor: concurrent.futures.ThreadPoolExecutor
    replayer: Callable[[str], headless.ReplayResult]
    selected_attempt: int | None
    replaying_attempt: int | None
    path_points: np.ndarray
    path_mesh: Any
    replay_finished: Any  # pyqtSignal(int, object), declared on the window
    sign_buttons: Callable[[], tuple[QPushButton, ...]]  # from ReviewLayout

    def attempt_row(self, attempt_id: int) -> AttemptRow | None:
        return queries.attempt(self.store, attempt_id)

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
            fill_table(
                self.events_table,
                [[f"{t:.2f}", kind, text] for t, kind, text in headless.attempt_timeline(events)],
            )
            self.metrics_image.setPixmap(png_pixmap(attempt_metrics_png(events)))
            self.path_points = headless.instrument_path(events)
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
        index = headless.frame_at((t for t, _, _ in self.replay.frames), float(item.text()))
        self.replay.slider.setValue(index)
        self.tabs.setCurrentWidget(self.replay)

    def read_events(self, attempt: AttemptRow) -> list[dict[str, Any]] | None:
        """The events of the attempt file, or None (with the reason shown) when there is none."""
        events, problem = headless.attempt_events(attempt)
        if events is None:
            self.replay.status.setText(problem)
        return events

    def show_detail(self, attempt: AttemptRow) -> None:
        self.detail.setHtml(headless.attempt_detail_html(attempt))

    def _replay_done(self, attempt_id: int, future: concurrent.futures.Future) -> None:
        if attempt_id != self.replaying_attempt:
            return  # the instructor opened another attempt meanwhile
        self.replaying_attempt = None
        try:
            result: headless.ReplayResult = future.result()
        except Exception as error:  # a replay failure is shown, never a traceback in the GUI
            self.replay.status.setText(f"Cannot replay attempt {attempt_id}: {error}")
            return
        self.replay.set_frames(result.frames)
        shots = len({info.get("shot") for _, _, info in result.frames})
        text = f"Attempt {attempt_id}: {len(result.frames)} images in {shots} shots."
        self.replay.status.setText(text + (f" Note: {result.problem}." if result.problem else ""))
        self.show_path(result.surfaces)

    def show_path(self, surfaces: headless.Surfaces) -> None:
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
        elif (plotter := getattr(self.scene3d, "plotter", None)) is not None:
            change(plotter)
            self.scene3d.set_beam(None, None)  # marks the scene changed and repaints it
