"""The simulator window: two C-arm monitors, the C-arm panel, the instrument and procedure panels,
the learning-mode 3D view, keyboard control with a help overlay, and a status bar with device and dose.

The window owns no simulation state: it sends the trainee's commands to the
:class:`app.controller.SessionController` and shows what it emits. Rendering and device I/O run on
the controller's worker thread, so the event loop never waits for them.
"""

from __future__ import annotations

import platform

import numpy as np
from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.controller import SessionController
from app.review_window import open_review
from app.widgets.carm_panel import CArmPanel
from app.widgets.instrument_panel import InstrumentPanel
from app.widgets.monitor import MonitorWidget
from app.widgets.procedure_panel import ProcedurePanel
from app.widgets.scene3d import Scene3DWidget
from app.widgets.signin import SignInChoice

#: Keyboard map shown by the help overlay (key, what it does).
SHORTCUTS = [
    ("Click on the live image", "put the instrument's entry point on the skin under the click"),
    ("Drag on the live image", "aim the instrument about its entry point"),
    ("Space (hold)", "fluoroscopy: beam on while held (the pedal)"),
    ("F", "single shot"),
    ("← / →", "orbital −/+ 2°"),
    ("↑ / ↓", "angular (tilt) cranial/caudal 2°"),
    ("Page Up / Page Down", "table longitudinal ±10 mm"),
    ("W / S, mouse wheel", "advance / withdraw the instrument 0.5 mm (Shift: 0.1 mm)"),
    ("A / D, Z / X", "aim the instrument left/right, up/down 1° about the entry point"),
    ("T (hold)", "tap/drill: pass cortical bone"),
    ("P", "pin the live image as the reference image"),
    ("I", "place the implant over the current trajectory"),
    ("N", "next step"),
    ("Ctrl+Return", "finish the attempt"),
    ("F1", "show/hide this help"),
]

KEY_JOINT_NUDGES = {
    Qt.Key.Key_Left: ("orbital_deg", -2.0),
    Qt.Key.Key_Right: ("orbital_deg", 2.0),
    Qt.Key.Key_Up: ("angular_deg", 2.0),
    Qt.Key.Key_Down: ("angular_deg", -2.0),
    Qt.Key.Key_PageUp: ("table_longitudinal_mm", 10.0),
    Qt.Key.Key_PageDown: ("table_longitudinal_mm", -10.0),
}
KEY_AIM = {
    Qt.Key.Key_A: (-1.0, 0.0),
    Qt.Key.Key_D: (1.0, 0.0),
    Qt.Key.Key_Z: (0.0, 1.0),
    Qt.Key.Key_X: (0.0, -1.0),
}


class HelpOverlay(QLabel):
    """A translucent keyboard-shortcut card over the window (F1)."""

    def __init__(self, parent: QWidget) -> None:
        rows = "".join(f"<tr><td><b>{key}</b></td><td>{what}</td></tr>" for key, what in SHORTCUTS)
        super().__init__(
            f"<h3>Keyboard</h3><table cellpadding='3'>{rows}</table><p>Press F1 to close.</p>",
            parent,
        )
        self.setStyleSheet(
            "background: rgba(20, 24, 28, 230); color: white; padding: 16px; border-radius: 8px;"
        )
        self.setTextFormat(Qt.TextFormat.RichText)
        self.hide()

    def toggle(self) -> None:
        self.adjustSize()
        parent = self.parentWidget()
        self.move((parent.width() - self.width()) // 2, (parent.height() - self.height()) // 2)
        self.setVisible(not self.isVisible())
        self.raise_()


class MainWindow(QMainWindow):
    """The trainee's C-arm cart."""

    def __init__(self, controller: SessionController, settings: QSettings | None = None) -> None:
        super().__init__()
        self.controller = controller
        self.settings = settings or QSettings("fluorosim", "fluorosim")
        self.setWindowTitle("fluorosim")
        self.learning_mode = True
        self.last_frame: np.ndarray | None = None
        self._space_down = False

        central = QWidget()
        column = QVBoxLayout(central)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            "background: #fdecea; color: #b42318; padding: 6px; border-radius: 4px;"
        )
        self.banner.hide()
        column.addWidget(self.banner)
        monitors = QHBoxLayout()
        self.live_monitor = MonitorWidget("LIVE")
        self.reference_monitor = MonitorWidget("REFERENCE")
        self.reference_monitor.placeholder = (
            "Reference monitor — press P to pin the live image here."
        )
        monitors.addWidget(self.live_monitor, 1)
        monitors.addWidget(self.reference_monitor, 1)
        column.addLayout(monitors, 1)
        controls = QHBoxLayout()
        self.pedal_button = QPushButton("Fluoro (hold Space)")
        self.pedal_button.setToolTip("Hold for fluoroscopy; the beam stays on while pressed")
        self.pedal_button.pressed.connect(lambda: self.controller.set_pedal(True))
        self.pedal_button.released.connect(lambda: self.controller.set_pedal(False))
        self.shot_button = QPushButton("Single shot (F)")
        self.shot_button.clicked.connect(self.controller.single_shot)
        self.pin_button = QPushButton("Pin as reference (P)")
        self.pin_button.clicked.connect(self.pin_reference)
        self.xray_indicator = QLabel("X-RAY OFF")
        self.xray_indicator.setAccessibleName("X-ray indicator")
        self._show_xray(False)
        for widget in (self.pedal_button, self.shot_button, self.pin_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.xray_indicator)
        column.addLayout(controls)
        self.setCentralWidget(central)

        self.carm_panel = CArmPanel()
        self.instrument_panel = InstrumentPanel()
        self.procedure_panel = ProcedurePanel()
        self.scene3d = Scene3DWidget()
        self.carm_dock = self._dock("C-arm", self.carm_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        tabs = QTabWidget()
        tabs.addTab(self.procedure_panel, "Procedure")
        tabs.addTab(self.instrument_panel, "Instrument")
        self.side_tabs = tabs
        self.procedure_dock = self._dock(
            "Procedure and instrument", tabs, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.scene_dock = self._dock(
            "3D view (learning mode)", self.scene3d, Qt.DockWidgetArea.RightDockWidgetArea
        )

        self.help_overlay = HelpOverlay(self)
        self.status_device = QLabel("device: —")
        self.status_dose = QLabel("dose: —")
        self.status_orientation = QLabel("monitor: standard")
        for label in (self.status_device, self.status_dose, self.status_orientation):
            self.statusBar().addPermanentWidget(label)
        self._build_menus()
        self._connect()
        self._restore_layout()

    # -- construction -----------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_attempt_action = QAction("New attempt…", self)
        self.new_attempt_action.setShortcut(QKeySequence.StandardKey.New)
        file_menu.addAction(self.new_attempt_action)
        self.review_action = QAction("Instructor review…", self)
        self.review_action.triggered.connect(lambda: open_review(self))
        file_menu.addAction(self.review_action)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        for dock in (self.carm_dock, self.procedure_dock, self.scene_dock):
            view_menu.addAction(dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        help_action = QAction("Keyboard shortcuts", self)
        help_action.setShortcut(QKeySequence("F1"))
        help_action.triggered.connect(self.help_overlay.toggle)
        help_menu.addAction(help_action)
        about_action = QAction("About fluorosim", self)
        about_action.triggered.connect(self.show_about)
        help_menu.addAction(about_action)

    def _connect(self) -> None:
        c = self.controller
        c.frame_ready.connect(self.show_frame)
        c.joints_changed.connect(self.carm_panel.show_joints)
        c.counters_changed.connect(self.show_counters)
        c.xray_changed.connect(self._show_xray)
        c.device_status.connect(self.show_device_status)
        c.step_changed.connect(self.procedure_panel.show_current_step)
        c.scenario_loaded.connect(self.show_scenario)
        c.report_ready.connect(self.procedure_panel.show_report)
        c.report_ready.connect(
            lambda _report: self.side_tabs.setCurrentWidget(self.procedure_panel)
        )
        c.problem.connect(self.show_problem)
        c.surfaces_ready.connect(self.scene3d.set_surfaces)
        c.beam_changed.connect(self.scene3d.set_beam)
        c.tool_changed.connect(self.scene3d.set_instrument)
        c.raw_sample.connect(self.instrument_panel.wizard.show_raw)
        c.landmarks_ready.connect(self.instrument_panel.wizard.set_landmarks)
        self.live_monitor.clicked.connect(c.pick_entry)
        self.live_monitor.dragged.connect(c.drag_aim)
        self.carm_panel.joint_change_requested.connect(c.set_joint)
        self.carm_panel.view_requested.connect(c.go_to_view)
        self.carm_panel.image_settings_changed.connect(self._image_settings_changed)
        c.set_image_settings(
            self.carm_panel.image_settings()
        )  # the panel's defaults apply from the start
        self.instrument_panel.device_requested.connect(c.open_device)
        self.instrument_panel.wizard.calibration_done.connect(c.apply_calibration)
        self.procedure_panel.next_step_requested.connect(c.next_step)
        self.procedure_panel.place_implant_requested.connect(c.place_implant)
        self.procedure_panel.finish_requested.connect(c.finish)
        self.procedure_panel.replay_requested.connect(c.replay)
        self.procedure_panel.restart_requested.connect(c.restart)

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 900)
        if state is not None:
            self.restoreState(state)

    # -- what the session emits -------------------------------------------------------------
    def show_scenario(self, info: dict) -> None:
        """A new attempt began: title, steps, mode."""
        self.learning_mode = info.get("mode", "learning") == "learning"
        self.procedure_panel.show_scenario(
            f"{info.get('title', '')} — {info.get('mode', '')} mode", info.get("steps", [])
        )
        self.carm_panel.set_learning_mode(self.learning_mode)
        self.scene_dock.setVisible(self.learning_mode)
        self.live_monitor.set_image(None)
        self.reference_monitor.set_image(None)
        self.banner.hide()
        self.setWindowTitle(f"fluorosim — {info.get('title', '')} — {info.get('trainee', '')}")

    def show_frame(self, image: np.ndarray, info: dict) -> None:
        """A new fluoroscopy frame (or the last-image hold when the beam goes off)."""
        self.last_frame = image
        self.live_monitor.set_image(image)
        self.live_monitor.set_overlay(
            shot_number=int(info.get("shot", 0)),
            view_name=info.get("view", "") if self.learning_mode else "",
            kvp=float(info.get("kvp", 0.0)),
            ma=float(info.get("ma", 0.0)),
            mode=str(info.get("mode", "")),
            last_image_hold=bool(info.get("hold", False)),
        )

    def show_counters(self, counters: dict) -> None:
        """Live counters on the procedure panel, the monitors and the status bar."""
        self.procedure_panel.show_counters(counters)
        for monitor in (self.live_monitor,):
            monitor.set_overlay(
                beam_on_s=float(counters.get("beam_on_s", 0.0)),
                air_kerma_mgy=float(counters.get("air_kerma_mgy", 0.0)),
                kap_gycm2=float(counters.get("kap_gycm2", 0.0)),
            )
        self.status_dose.setText(
            f"shots {int(counters.get('shots', 0))} · fluoro {counters.get('beam_on_s', 0.0):.1f} s · "
            f"{counters.get('air_kerma_mgy', 0.0):.2f} mGy · {counters.get('kap_gycm2', 0.0):.3f} Gy·cm²"
        )

    def show_device_status(
        self, name: str, status: str, rate_hz: float, message: str, counters: dict
    ) -> None:
        """The instrument source's state."""
        self.instrument_panel.show_status(name, status, rate_hz, message, counters)
        self.status_device.setText(f"{name}: {status}")
        if message:
            self.show_problem(message)

    def show_problem(self, message: str) -> None:
        """A user-facing problem (unplugged device, busy port, corrupt file): banner + status bar."""
        self.banner.setText(message)
        self.banner.setVisible(bool(message))
        if message:
            self.statusBar().showMessage(message, 10_000)

    def _show_xray(self, on: bool) -> None:
        self.xray_indicator.setText("X-RAY ON" if on else "X-RAY OFF")
        self.xray_indicator.setStyleSheet(
            "background: #c00; color: white; font-weight: bold; padding: 4px 10px;"
            if on
            else "background: #444; color: #bbb; padding: 4px 10px;"
        )
        self.live_monitor.set_xray_on(on)

    def _image_settings_changed(self, settings: dict) -> None:
        self.controller.set_image_settings(settings)
        self.status_orientation.setText(self.carm_panel.orientation_label.text())

    # -- trainee actions --------------------------------------------------------------------
    def pin_reference(self) -> None:
        """Copy the live image to the reference monitor."""
        if self.last_frame is not None:
            self.reference_monitor.set_image(self.last_frame.copy())
            self.reference_monitor.set_overlay(
                **{
                    k: getattr(self.live_monitor.overlay, k)
                    for k in (
                        "shot_number",
                        "view_name",
                        "kvp",
                        "ma",
                        "mode",
                        "beam_on_s",
                        "air_kerma_mgy",
                        "kap_gycm2",
                    )
                }
            )

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        key = event.key()
        fine = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat() and not self._space_down:
                self._space_down = True
                self.controller.set_pedal(True)
        elif key == Qt.Key.Key_F and not event.isAutoRepeat():
            self.controller.single_shot()
        elif key in KEY_JOINT_NUDGES:
            name, delta = KEY_JOINT_NUDGES[key]
            self.carm_panel.nudge(name, delta)
        elif key in (Qt.Key.Key_W, Qt.Key.Key_S):
            step = 0.1 if fine else 0.5
            self.controller.advance(step if key == Qt.Key.Key_W else -step)
        elif key in KEY_AIM:
            yaw, pitch = KEY_AIM[key]
            self.controller.aim(yaw, pitch)
        elif key == Qt.Key.Key_T and not event.isAutoRepeat():
            self.controller.set_button("tap", True)
        elif key == Qt.Key.Key_P:
            self.pin_reference()
        elif key == Qt.Key.Key_I:
            self.controller.place_implant()
        elif key == Qt.Key.Key_N:
            self.controller.next_step()
        elif (
            key in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.controller.finish()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.isAutoRepeat():
            return
        if event.key() == Qt.Key.Key_Space and self._space_down:
            self._space_down = False
            self.controller.set_pedal(False)
        elif event.key() == Qt.Key.Key_T:
            self.controller.set_button("tap", False)
        else:
            super().keyReleaseEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        fine = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        step = 0.1 if fine else 0.5
        self.controller.advance(step if event.angleDelta().y() > 0 else -step)

    def show_about(self) -> None:
        """Versions of everything that matters for a bug report."""
        QMessageBox.about(self, "About fluorosim", about_text())

    def start_attempt(self, choice: SignInChoice) -> QProgressDialog | None:
        """Start an attempt; on the first-ever start shows progress while the patient is built."""
        self.settings.setValue(
            "signin/last",
            [
                choice.trainee_id,
                choice.scenario_id,
                choice.mode,
                choice.seed,
                choice.random_patient,
            ],
        )
        progress = QProgressDialog("Preparing the patient and the renderer…", None, 0, 100, self)
        progress.setWindowTitle("fluorosim — preparing")
        progress.setMinimumDuration(300)
        progress.setAutoClose(True)
        self.controller.progress.connect(
            lambda text, pct: (progress.setLabelText(text), progress.setValue(int(pct)))
        )
        self.controller.start_attempt(choice)
        return progress

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.controller.shutdown()
        self.scene3d.close_scene()
        QTimer.singleShot(0, lambda: None)
        super().closeEvent(event)


def about_text() -> str:
    """fluorosim and library versions."""
    import numba
    import vtk
    from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    return (
        f"<h3>fluorosim {__version__}</h3>"
        "<p>Simulator for fluoroscopy-guided spine procedures: SI-joint fusion and endoscopic lumbar "
        "decompression.</p>"
        f"<p>Python {platform.python_version()} · Qt {QT_VERSION_STR} · PyQt {PYQT_VERSION_STR} · "
        f"VTK {vtk.vtkVersion.GetVTKVersion()} · numpy {np.__version__} · numba {numba.__version__}</p>"
        "<p>Open source under the MIT licence. Synthetic patient; not for clinical use.</p>"
    )
