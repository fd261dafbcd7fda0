"""The window's handle on the session: a GUI-thread facade over the worker on its own thread.

``SessionController`` lives in the GUI thread and offers plain methods (``set_pedal``, ``set_joint``,
``advance``…) that forward to a :class:`~fluorosim.app.session_worker.SessionWorker` living in its own
``QThread`` through queued signals, and re-offers the worker's signals for the window to connect.
The procedure's decisions are in ``scenarios/`` (see :mod:`fluorosim.app.session_runner`).
"""

from __future__ import annotations

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal

from fluorosim.app.overview import SURFACE_GROUPS, overview_surface
from fluorosim.app.session_runner import StartCancelledError, TappedSource
from fluorosim.app.session_worker import SessionWorker
from fluorosim.app.widgets.signin import SignInChoice
from fluorosim.haptics.calibration import Calibration
from fluorosim.scenarios.attempt_files import attempts_directory
from fluorosim.scenarios.entry import raw_pixel, skin_point_on_ray
from fluorosim.scenarios.technique import ImageSettings

__all__ = [
    "SURFACE_GROUPS",
    "SessionController",
    "SessionWorker",
    "StartCancelledError",
    "TappedSource",
    "attempts_directory",
    "overview_surface",
    "raw_pixel",
    "skin_point_on_ray",
]


class SessionController(QObject):
    """GUI-thread facade over a :class:`SessionWorker` on its own thread."""

    _start = pyqtSignal(object)
    _pedal = pyqtSignal(bool)
    _shot = pyqtSignal()
    _joint = pyqtSignal(str, float)
    _view = pyqtSignal(str)
    _advance = pyqtSignal(float)
    _aim = pyqtSignal(float, float)
    _button = pyqtSignal(str, bool)
    _pick = pyqtSignal(float, float)
    _drag = pyqtSignal(float, float)
    _image_settings = pyqtSignal(object)
    _device = pyqtSignal(str)
    _calibration = pyqtSignal(object)
    _next = pyqtSignal()
    _implant = pyqtSignal()
    _finish = pyqtSignal()
    _shutdown = pyqtSignal()
    _interrupt = pyqtSignal()

    def __init__(self, device_url: str = "mouse", patient_ref: str | None = None) -> None:
        super().__init__()
        # the worker's thread under its own name: `thread` would hide QObject.thread()
        self.session_thread = QThread()
        self.session_thread.setObjectName("fluorosim-session")
        self.worker = SessionWorker(device_url, patient_ref)
        self.worker.moveToThread(self.session_thread)
        # the worker's signals, re-offered for the window to connect
        self.frame_ready = self.worker.frame_ready
        self.joints_changed = self.worker.joints_changed
        self.counters_changed = self.worker.counters_changed
        self.xray_changed = self.worker.xray_changed
        self.device_status = self.worker.device_status
        self.step_changed = self.worker.step_changed
        self.scenario_loaded = self.worker.scenario_loaded
        self.report_ready = self.worker.report_ready
        self.problem = self.worker.problem
        self.surfaces_ready = self.worker.surfaces_ready
        self.beam_changed = self.worker.beam_changed
        self.tool_changed = self.worker.tool_changed
        self.raw_sample = self.worker.raw_sample
        self.landmarks_ready = self.worker.landmarks_ready
        self.progress = self.worker.progress
        self.attempt_saved = self.worker.attempt_saved
        self.start_cancelled = self.worker.start_cancelled
        w = self.worker
        for signal, slot in (
            (self._start, w.start_attempt),
            (self._pedal, w.set_pedal),
            (self._shot, w.single_shot),
            (self._joint, w.set_joint),
            (self._view, w.go_to_view),
            (self._advance, w.advance),
            (self._aim, w.aim),
            (self._button, w.set_button),
            (self._pick, w.pick_entry),
            (self._drag, w.drag_aim),
            (self._image_settings, w.set_image_settings),
            (self._device, w.open_device),
            (self._calibration, w.apply_calibration),
            (self._next, w.next_step),
            (self._implant, w.place_implant),
            (self._finish, w.finish),
        ):
            signal.connect(slot)
        # shutdown waits for the worker, which stops its timer and closes the device on its own thread
        # (PyQt6's stub gives connect() only the slot; the real one also takes the connection type)
        blocking = Qt.ConnectionType.BlockingQueuedConnection
        self._shutdown.connect(w.shutdown, blocking)  # type: ignore[call-arg]
        self._interrupt.connect(w.interrupt, blocking)  # type: ignore[call-arg]
        self.session_thread.start()

    def start_attempt(self, choice: SignInChoice) -> None:
        self.worker.cancel_start.clear()
        self._start.emit(choice)

    def cancel_start(self) -> None:
        """Stop preparing the attempt at the next stage (the patient build finishes and is cached)."""
        self.worker.cancel_start.set()

    def attempt_in_progress(self) -> bool:
        """An attempt has started and is not finished."""
        session = self.worker.session
        return session is not None and not session.finished

    def interrupt(self) -> None:
        """Record the attempt in progress as interrupted (waits for the worker)."""
        if self.session_thread.isRunning():
            self._interrupt.emit()

    def set_pedal(self, on: bool) -> None:
        self._pedal.emit(on)

    def single_shot(self) -> None:
        self._shot.emit()

    def set_joint(self, name: str, value: float) -> None:
        self._joint.emit(name, value)

    def go_to_view(self, view: str) -> None:
        self._view.emit(view)

    def advance(self, distance_mm: float) -> None:
        self._advance.emit(distance_mm)

    def aim(self, d_yaw_deg: float, d_pitch_deg: float) -> None:
        self._aim.emit(d_yaw_deg, d_pitch_deg)

    def set_button(self, name: str, pressed: bool) -> None:
        self._button.emit(name, pressed)

    def pick_entry(self, col: float, row: float) -> None:
        self._pick.emit(col, row)

    def drag_aim(self, dx_px: float, dy_px: float) -> None:
        self._drag.emit(dx_px, dy_px)

    def set_image_settings(self, settings: ImageSettings) -> None:
        self._image_settings.emit(settings)

    def open_device(self, url: str) -> None:
        self._device.emit(url)

    def apply_calibration(self, calibration: Calibration) -> None:
        self._calibration.emit(calibration)

    def next_step(self) -> None:
        self._next.emit()

    def place_implant(self) -> None:
        self._implant.emit()

    def finish(self) -> None:
        self._finish.emit()

    def replay(self) -> None:
        self.problem.emit(
            "Replay of this attempt: open it in review mode (fluorosim replay FILE scores it headlessly)."
        )

    def restart(self, new_patient: bool) -> None:
        choice = self.worker.choice
        if choice is not None:
            self.start_attempt(
                SignInChoice(
                    choice.trainee_id,
                    choice.scenario_id,
                    choice.mode,
                    choice.seed,
                    new_patient or choice.random_patient,
                )
            )

    def shutdown(self) -> None:
        """Stop the worker and its thread (waits for the current tick)."""
        if self.session_thread.isRunning():
            self._shutdown.emit()
            self.session_thread.quit()
            self.session_thread.wait(5000)
