"""The worker's command slots: the window's requests, forwarded to the session or the mouse model.

:class:`SessionWorker` is the :class:`~fluorosim.app.session_runner.SessionRunner` plus one slot per
thing the trainee can ask for. Each slot turns a widget's values into a session command (or a move
of the mouse instrument) and leaves every decision to the domain layer.
"""

from __future__ import annotations

from PyQt6.QtCore import pyqtSlot

from fluorosim.app.session_runner import SessionRunner, TappedSource
from fluorosim.haptics.calibration import Calibration
from fluorosim.scenarios import commands as cmd
from fluorosim.scenarios import entry
from fluorosim.scenarios.technique import ImageSettings

#: Wheel and key steps below this (mm) are fine steps of the mouse model.
FINE_STEP_MM = 0.5


class SessionWorker(SessionRunner):
    """Owns the session on the worker thread and takes the window's commands."""

    @pyqtSlot()
    def single_shot(self) -> None:
        self._command("Single shot", cmd.Shot())

    @pyqtSlot(str, float)
    def set_joint(self, name: str, value: float) -> None:
        self._command("C-arm move", cmd.MoveCArm(joints={name: value}))

    @pyqtSlot(str)
    def go_to_view(self, view: str) -> None:
        self._command(f"Go to the {view} view", cmd.MoveCArm(view=view))

    @pyqtSlot(float)
    def advance(self, distance_mm: float) -> None:
        if self.mouse is not None:
            fine = abs(distance_mm) < FINE_STEP_MM
            steps = 1 if fine else max(1, round(abs(distance_mm) / FINE_STEP_MM))
            if distance_mm > 0:
                self.mouse.advance(steps, fine=fine)
            else:
                self.mouse.withdraw(steps, fine=fine)

    @pyqtSlot(float, float)
    def aim(self, d_yaw_deg: float, d_pitch_deg: float) -> None:
        if self.mouse is not None:
            self.mouse.aim(d_yaw_deg, d_pitch_deg)

    @pyqtSlot(float, float)
    def pick_entry(self, col: float, row: float) -> None:
        """A click on the live monitor: put the mouse instrument's entry on the skin under it."""
        self._guard("Picking the entry point", self._pick_entry, col, row)

    def _pick_entry(self, col: float, row: float) -> None:
        if (
            self.mouse is None
            or self.session is None
            or self.patient is None
            or self.session.last_frame is None
        ):
            return
        frame = self.session.last_frame
        skin = entry.picked_skin_entry(
            self.patient,
            frame.geometry,
            self.settings.monitor_image(frame.image).shape,
            self.settings.orientation,
            col,
            row,
            self.mouse.entry_lps_mm,
        )
        if skin is None:
            self.problem.emit("No skin under that point of the image: click on the patient.")
            return
        self.mouse.set_entry(skin)

    @pyqtSlot(float, float)
    def drag_aim(self, dx_px: float, dy_px: float) -> None:
        """A drag on the live monitor tilts the instrument about its entry point."""
        if self.mouse is not None:
            self.mouse.drag(dx_px, dy_px)

    @pyqtSlot(str, bool)
    def set_button(self, name: str, pressed: bool) -> None:
        if self.mouse is not None:
            self.mouse.set_driver(name if pressed else None)

    @pyqtSlot(object)
    def set_image_settings(self, settings: ImageSettings) -> None:
        self.image_settings = settings
        self._apply_technique()

    @pyqtSlot(str)
    def open_device(self, url: str) -> None:
        def swap() -> None:
            self._close_source()
            self.source = self._open_source(url)
            if self.session is not None:
                self.session.source = TappedSource(self.source, self._on_sample)
                self._place_mouse_at_entry()

        self.device_url = url
        self._guard(f"Opening {url}", swap)

    @pyqtSlot(object)
    def apply_calibration(self, calibration: Calibration) -> None:
        self._guard("Applying the calibration", self._apply_calibration, calibration)

    def _apply_calibration(self, calibration: Calibration) -> None:
        """Save the wizard's result and give it to the device; the message says which happened."""
        mount = None
        if calibration.kind == "gimbal" and self.patient is not None:
            mount = entry.gimbal_mount(self._scenario(), self.patient)
        outcome = self.calibrations.apply(calibration, self.source, mount)
        self.problem.emit(outcome.message)

    @pyqtSlot()
    def next_step(self) -> None:
        self._command("Next step", cmd.NextStep())

    @pyqtSlot()
    def place_implant(self) -> None:
        if self.session is None:
            return
        step = self.session.current_step
        implant = step.implant if step is not None and step.implant else None
        if implant is None:
            self.problem.emit("This step places no implant.")
            return
        self._command("Place implant", cmd.PlaceImplant(implant))

    @pyqtSlot()
    def finish(self) -> None:
        self._command("Finish", cmd.Finish())
        if self.session is not None and self.session.finished and self.session.report is not None:
            # after Finish returns: the recorder has written the report line and closed the file
            self._finished()

    @pyqtSlot()
    def interrupt(self) -> None:
        """The trainee leaves mid-attempt: close its file and record it as interrupted."""
        self._stop_timer()
        if self.session is None or self.session.finished or self.attempt is None:
            return
        if self.attempt.entry is None:
            return
        self._guard("Closing the attempt file", self.attempt.writer.close)
        self._guard("Recording the interrupted attempt", self._record_interrupted)

    def _record_interrupted(self) -> None:
        self.attempt.record_interrupted()  # scored as it stood, status interrupted
        self.session = None
        self.attempt_saved.emit(str(self.attempt.path))

    @pyqtSlot()
    def shutdown(self) -> None:
        self._stop_timer()
        self._close_source()
        if self.attempt is not None and self.session is not None and not self.session.finished:
            self._guard("Closing the attempt file", self.attempt.writer.close)
