"""The simulator window, laid out like a C-arm cart: the live and reference monitors side by side
and as large as the screen allows, the C-arm, procedure and instrument panels and the learning-mode
3D view as dock widgets beside them (arrangement and geometry remembered), keyboard control that
acts wherever focus is (:mod:`app.widgets.keyboard`) with a help card on F1, and a status bar with
device and dose.

The window owns no simulation state: it sends the trainee's commands to the
:class:`app.controller.SessionController` and shows what it emits. Rendering and device I/O run on
the controller's worker thread, so the event loop never waits for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt6.QtCore import QEvent, QSettings, Qt, QTimer
from PyQt6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QKeySequence,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PyQt6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QApplication,
    QComboBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QTextBrowser,
    QWidget,
)

from fluorosim.app.about import about_text
from fluorosim.app.controller import SessionController
from fluorosim.app.panel_settings import settings_from_panel
from fluorosim.app.review_window import open_review
from fluorosim.app.widgets.carm_panel import CArmPanel
from fluorosim.app.widgets.cart_layout import (
    LAYOUT_VERSION,
    apply_default_layout,
    default_monitor_side,
    make_dock,
    scrolling,
)
from fluorosim.app.widgets.instrument_panel import InstrumentPanel
from fluorosim.app.widgets.keyboard import HelpOverlay, TraineeActions, TraineeKeys
from fluorosim.app.widgets.monitor import kap_text
from fluorosim.app.widgets.monitor_cart import MonitorCart
from fluorosim.app.widgets.procedure_panel import ProcedurePanel
from fluorosim.app.widgets.scene3d import Scene3DWidget
from fluorosim.app.widgets.signin import SignInChoice

#: After the first show, the default layout follows the window's size for this long (ms).
SETTLE_MS = 1500


class MainWindow(QMainWindow):
    """The trainee's C-arm cart."""

    def __init__(self, controller: SessionController, settings: QSettings | None = None) -> None:
        super().__init__()
        self.controller = controller
        self.settings = settings or QSettings("fluorosim", "fluorosim")
        self.setWindowTitle("fluorosim")
        self.learning_mode = True
        self.last_frame: np.ndarray | None = None
        self.progress_dialog: QProgressDialog | None = None
        self.restored_layout = False
        #: Asked before the window closes during an attempt; a smoke run, the benchmark or a test
        #: puts in one that does not ask.
        self.ask_to_leave: Callable[[], bool] = self.ask_trainee_to_leave
        #: The interrupted-attempts banner :func:`fluorosim.app.gui.offer_recovery` puts on top.
        self.recovery_offer: QWidget | None = None

        self.carm_panel = CArmPanel()
        self.instrument_panel = InstrumentPanel()
        self.procedure_panel = ProcedurePanel()
        self.scene3d = Scene3DWidget()
        self.carm_dock = make_dock(self, "C-arm", "carm", scrolling(self.carm_panel))
        self.procedure_dock = make_dock(
            self, "Procedure", "procedure", scrolling(self.procedure_panel)
        )
        self.instrument_dock = make_dock(
            self, "Instrument", "instrument", scrolling(self.instrument_panel)
        )
        self.scene_dock = make_dock(self, "3D view (learning mode)", "scene3d", self.scene3d)
        self.panel_docks = [self.carm_dock, self.procedure_dock, self.instrument_dock]
        self.report_view = QTextBrowser()
        self.report_view.setAccessibleName("Score report")
        self.setCentralWidget(self._build_central())

        self.help_overlay = HelpOverlay(self)
        self.status_device = QLabel("device: —")
        self.status_dose = QLabel("dose: —")
        self.status_orientation = QLabel("monitor: standard")
        for label in (self.status_device, self.status_dose, self.status_orientation):
            self.statusBar().addPermanentWidget(label)
        self._build_menus()
        self._connect()
        self._keep_keyboard_focus_off_buttons()
        self.keys = TraineeKeys(self, self._trainee_actions())
        QApplication.instance().installEventFilter(self.keys)
        self._restore_layout()

    # -- construction -----------------------------------------------------------------------
    def _build_central(self) -> QWidget:
        cart = MonitorCart(self.scene_dock)
        self.banner = cart.banner
        self.live_monitor = cart.live_monitor
        self.reference_monitor = cart.reference_monitor
        self.reference_slot = cart.reference_slot
        self.monitors = cart.monitors
        self.pedal_button = cart.pedal_button
        self.shot_button = cart.shot_button
        self.pin_button = cart.pin_button
        self.swap_button = cart.swap_button
        self.help_button = cart.help_button
        self.xray_indicator = cart.xray_indicator
        self.pedal_button.pressed.connect(lambda: self.controller.set_pedal(True))
        self.pedal_button.released.connect(lambda: self.controller.set_pedal(False))
        self.shot_button.clicked.connect(self.controller.single_shot)
        self.pin_button.clicked.connect(self.pin_reference)
        self.swap_button.clicked.connect(self.swap_reference_and_3d)
        self.help_button.clicked.connect(lambda: self.help_overlay.toggle())
        self.cart = cart
        return cart

    def _keep_keyboard_focus_off_buttons(self) -> None:
        """Buttons, boxes and sliders work with the mouse but never take keyboard focus, so a
        clicked "−" cannot catch the pedal; the monitors take focus back when clicked."""
        for kind in (QAbstractButton, QComboBox, QAbstractSlider):
            for widget in self.findChildren(kind):
                widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for monitor in (self.live_monitor, self.reference_monitor):
            monitor.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.scene3d.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

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
        for dock in (*self.panel_docks, self.scene_dock):
            view_menu.addAction(dock.toggleViewAction())
        default_layout = QAction("Default layout", self)
        default_layout.triggered.connect(self.default_layout)
        view_menu.addAction(default_layout)
        help_menu = self.menuBar().addMenu("&Help")
        self.help_action = QAction("Keyboard shortcuts", self)
        self.help_action.setShortcut(QKeySequence("F1"))
        self.help_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.help_action.triggered.connect(self.help_overlay.toggle)
        help_menu.addAction(self.help_action)
        self.addAction(self.help_action)  # F1 works even with the menu bar hidden
        about_action = QAction("About fluorosim", self)
        about_action.triggered.connect(self.show_about)
        help_menu.addAction(about_action)

    def _connect(self) -> None:
        c = self.controller
        c.frame_ready.connect(self.show_frame)
        c.joints_changed.connect(self.carm_panel.show_joints)
        c.counters_changed.connect(self.show_counters)
        c.xray_changed.connect(self.cart.show_xray)
        c.device_status.connect(self.show_device_status)
        c.step_changed.connect(self.procedure_panel.show_current_step)
        c.scenario_loaded.connect(self.show_scenario)
        c.report_ready.connect(self.procedure_panel.show_report)
        c.report_ready.connect(self._show_report_large)
        c.start_cancelled.connect(self._start_cancelled)
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
        self._image_settings_changed(self.carm_panel.image_settings())  # defaults from the start
        self.instrument_panel.device_requested.connect(c.open_device)
        self.instrument_panel.wizard.calibration_done.connect(c.apply_calibration)
        self.procedure_panel.next_step_requested.connect(c.next_step)
        self.procedure_panel.place_implant_requested.connect(c.place_implant)
        self.procedure_panel.finish_requested.connect(c.finish)
        self.procedure_panel.replay_requested.connect(c.replay)
        self.procedure_panel.restart_requested.connect(c.restart)

    def _restore_layout(self) -> None:
        """Geometry and dock arrangement from the last run (else the default, maximised)."""
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:  # maximised; the geometry too, for an X server without a window manager (Xvfb)
            screen = QGuiApplication.primaryScreen()
            if screen is not None:
                self.setGeometry(screen.availableGeometry())
            self.setWindowState(Qt.WindowState.WindowMaximized)
        self.restored_layout = state is not None and self.restoreState(state, LAYOUT_VERSION)
        self._settling = False

    def showEvent(self, event: QShowEvent | None) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self.restored_layout:
            self.restored_layout = True
            # the window manager maximises after show: lay out again while the size settles
            self._settling = True
            QTimer.singleShot(0, self.default_layout)
            QTimer.singleShot(SETTLE_MS, lambda: setattr(self, "_settling", False))

    def resizeEvent(self, event: QResizeEvent | None) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._settling:
            QTimer.singleShot(0, self.default_layout)

    def default_layout(self) -> None:
        """Monitors as large as the screen allows; panels in one column (View → Default layout)."""
        self.scene_dock.setVisible(self.learning_mode and not self.reference_slot.swapped)
        apply_default_layout(
            self,
            [self.carm_dock, self.instrument_dock],
            self.procedure_dock,
            self.scene_dock,
            default_monitor_side(self.width(), self.height()),
        )

    # -- what the session emits -------------------------------------------------------------
    def show_scenario(self, info: dict[str, Any]) -> None:
        """A new attempt began: title, steps, mode."""
        self.learning_mode = info.get("mode", "learning") == "learning"
        self.procedure_panel.show_scenario(
            f"{info.get('title', '')} — {info.get('mode', '')} mode", info.get("steps", [])
        )
        self.carm_panel.set_learning_mode(self.learning_mode)
        if not (self.reference_slot.swapped and self.learning_mode):
            self.reference_slot.show_reference()
        self.scene_dock.setVisible(self.learning_mode and not self.reference_slot.swapped)
        self.swap_button.setVisible(self.learning_mode)
        self.live_monitor.set_image(None)
        self.reference_monitor.set_image(None)
        self.banner.hide()
        self.setWindowTitle(f"fluorosim — {info.get('title', '')} — {info.get('trainee', '')}")

    def show_frame(self, image: np.ndarray, info: dict[str, Any]) -> None:
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

    def show_counters(self, counters: dict[str, float]) -> None:
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
            f"{counters.get('air_kerma_mgy', 0.0):.2f} mGy · {kap_text(counters.get('kap_gycm2', 0.0))}"
        )

    def _show_report_large(self, _report: dict[str, Any]) -> None:
        """The score report, as the procedure panel shows it, in the reference monitor's place."""
        self.report_view.setHtml(self.procedure_panel.report.toHtml())
        self.reference_slot.show_page(self.report_view)
        self.scene_dock.setVisible(self.learning_mode)
        self.procedure_dock.raise_()

    def show_device_status(
        self, name: str, status: str, rate_hz: float, message: str, counters: dict[str, int]
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

    def _image_settings_changed(self, values: dict[str, Any]) -> None:
        """The panel's values as the typed settings the session takes."""
        try:
            self.controller.set_image_settings(settings_from_panel(values))
        except ValueError as error:  # a panel choice the technique does not know
            self.show_problem(f"C-arm technique: {error}")
        self.status_orientation.setText(self.carm_panel.orientation_label.text())

    # -- trainee actions --------------------------------------------------------------------
    def pin_reference(self) -> None:
        """Copy the live image to the reference monitor (and show it, if the report was there)."""
        if self.reference_slot.currentWidget() is self.report_view:
            self.reference_slot.show_reference()
        if self.last_frame is not None:
            self.reference_monitor.pin_from(self.live_monitor, self.last_frame)

    # -- the trainee's keys -------------------------------------------------------------------
    def _trainee_actions(self) -> TraineeActions:
        c = self.controller
        return TraineeActions(
            set_pedal=c.set_pedal,
            single_shot=c.single_shot,
            nudge_joint=self.carm_panel.nudge,
            advance=c.advance,
            aim=c.aim,
            set_tap=lambda on: c.set_button("tap", on),
            pin_reference=self.pin_reference,
            place_implant=c.place_implant,
            next_step=c.next_step,
            swap_reference_and_3d=self.swap_reference_and_3d,
            finish=c.finish,
        )

    def swap_reference_and_3d(self) -> None:
        """Learning mode: the 3D view takes the reference monitor's place, or gives it back."""
        if not self.learning_mode:
            return
        self.reference_slot.swap()
        self.scene_dock.setVisible(not self.reference_slot.swapped)

    def changeEvent(self, event: QEvent | None) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self.keys.release_held()  # a key released in another window must not leave the beam on
        super().changeEvent(event)

    def wheelEvent(self, event: QWheelEvent | None) -> None:  # noqa: N802 - Qt override
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
        progress = QProgressDialog(
            "Preparing the patient and the renderer…", "Cancel", 0, 100, self
        )
        progress.setWindowTitle("fluorosim — preparing")
        progress.setMinimumDuration(300)
        progress.setAutoClose(True)
        progress.setAutoReset(True)
        progress.canceled.connect(self.controller.cancel_start)

        def show_progress(text: str, pct: float) -> None:
            progress.setLabelText(text)
            progress.setValue(int(pct))

        self.controller.progress.connect(show_progress)
        self.progress_dialog = progress
        self.controller.start_attempt(choice)
        return progress

    def _start_cancelled(self) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.reset()
        self.show_problem("Start cancelled. File → New attempt… (Ctrl+N) starts again.")

    def ask_trainee_to_leave(self) -> bool:
        """Closing during an attempt: ask; the attempt is kept in the records as interrupted."""
        answer = QMessageBox.question(
            self,
            "Leave the attempt?",
            "An attempt is in progress. If you close now it is kept in your records as "
            "interrupted (scored as it stands, not as a pass or a fail).",
            QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Close

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802 - Qt override
        if self.controller.attempt_in_progress():
            if not self.ask_to_leave():
                event.ignore()
                return
            self.controller.interrupt()
        self.keys.release_held()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.controller.shutdown()
        self.scene3d.close_scene()
        QTimer.singleShot(0, lambda: None)
        super().closeEvent(event)
