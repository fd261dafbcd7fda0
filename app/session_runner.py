"""The session's thread: runs the headless session and turns its events into signals for the window.

:class:`SessionRunner` is the part of the worker (:class:`fluorosim.app.session_worker.SessionWorker`)
that starts attempts, steps the session and relays its events; the worker adds the window's
commands. The runner owns everything that takes time — building or loading the patient, rendering, polling
devices, scoring, writing the attempt file — so the GUI event loop never waits on a render or a
port. It decides nothing about the procedure: the skin entry of a click, the corridor and the start
pose come from :mod:`fluorosim.scenarios.entry`, the technique is the typed
:class:`~fluorosim.scenarios.technique.ImageSettings`, the pedal, last-image hold and haptic cues from
:class:`~fluorosim.scenarios.pedal.BeamPolicy`, calibrations from
:mod:`fluorosim.scenarios.calibration_apply` and the attempt's files from
:mod:`fluorosim.scenarios.attempt_files`.

Every slot catches the errors a user can cause (a refused C-arm move, a device that will not open, a
corrupt file) and turns them into a ``problem`` message; the attempt carries on.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal, pyqtSlot

from fluorosim.app.overview import overview_surfaces
from fluorosim.app.widgets.signin import SignInChoice
from fluorosim.scenarios import commands as cmd
from fluorosim.scenarios import entry
from fluorosim.scenarios.attempt_files import AttemptFile
from fluorosim.scenarios.attempt_setup import attempt_patient, warm_up_renderer
from fluorosim.scenarios.calibration_apply import DeviceCalibrations
from fluorosim.scenarios.pedal import BeamPolicy
from fluorosim.scenarios.technique import ImageSettings

if TYPE_CHECKING:
    from fluorosim.haptics.mouse import MouseInstrument
    from fluorosim.haptics.rig_models import GimbalRig
    from fluorosim.haptics.source import InstrumentSource, ToolSample
    from fluorosim.models.patient import Patient
    from fluorosim.render.renderer import FluoroRenderer
    from fluorosim.scenarios.session import Event, Session
    from fluorosim.scenarios.spec import Scenario

TICK_MS = 33  # ≈30 Hz session steps
STATUS_PERIOD_S = 0.25


class TappedSource:
    """Forwards an instrument source to the session and shows each new sample to ``on_sample``.

    The session consumes samples; the calibration wizard also needs the raw ones (tracker poses,
    gimbal angles), including uncalibrated samples the session ignores.
    """

    def __init__(self, source: InstrumentSource, on_sample: Callable[[ToolSample], None]) -> None:
        self.source = source
        self.on_sample = on_sample

    def poll(self) -> ToolSample | None:
        sample = self.source.poll()
        if sample is not None:
            self.on_sample(sample)
        return sample

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


class StartCancelledError(Exception):
    """The trainee cancelled while the attempt was being prepared."""


class SessionRunner(QObject):
    """Owns the session on the worker thread: the attempt's lifecycle, the clock and the events."""

    frame_ready = pyqtSignal(object, dict)
    joints_changed = pyqtSignal(object)
    counters_changed = pyqtSignal(dict)
    xray_changed = pyqtSignal(bool)
    device_status = pyqtSignal(str, str, float, str, dict)
    step_changed = pyqtSignal(int, str)
    scenario_loaded = pyqtSignal(dict)
    report_ready = pyqtSignal(dict)
    problem = pyqtSignal(str)
    surfaces_ready = pyqtSignal(dict)
    beam_changed = pyqtSignal(object, object)
    tool_changed = pyqtSignal(object, object)
    raw_sample = pyqtSignal(dict)
    landmarks_ready = pyqtSignal(dict)
    progress = pyqtSignal(str, float)
    attempt_saved = pyqtSignal(str)
    start_cancelled = pyqtSignal()

    def __init__(self, device_url: str = "mouse", patient_ref: str | None = None) -> None:
        super().__init__()
        self.device_url = device_url
        #: ``fluorosim run --patient``: a stored patient's name or a CT path, used for every attempt
        self.patient_ref = patient_ref
        self.session: Session | None = None
        self.patient: Patient | None = None
        self.renderer: FluoroRenderer | None = None
        self.source: InstrumentSource | None = None
        self.mouse: MouseInstrument | None = None
        self.choice: SignInChoice | None = None
        #: The C-arm panel's settings (None until the window sends them).
        self.image_settings: ImageSettings | None = None
        self.beam = BeamPolicy()
        self.calibrations = DeviceCalibrations()
        self.attempt: AttemptFile | None = None
        self.timer: QTimer | None = None
        self._last_tick = time.monotonic()
        self._last_status = 0.0
        self._breaches = 0
        self._last_raw_emit = 0.0
        self._device_pedal: bool | None = None
        self.cancel_start = threading.Event()  # set from the GUI thread: stop preparing

    @property
    def settings(self) -> ImageSettings:
        """The panel's settings, or the panel's defaults before it sent any."""
        return self.image_settings or ImageSettings()

    @property
    def attempt_path(self) -> Path | None:
        """The current attempt's file (None before the first attempt)."""
        return self.attempt.path if self.attempt is not None else None

    # -- helpers ---------------------------------------------------------------------------
    def _guard(self, action: str, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function``; turn a user-caused error into a problem message."""
        try:
            return function(*args)
        except StartCancelledError:
            raise
        except (ValueError, KeyError, OSError, RuntimeError) as error:
            self.problem.emit(f"{action}: {error}")
        except Exception as error:  # never let a slot kill the worker thread
            traceback.print_exc()
            self.problem.emit(f"{action} failed unexpectedly: {error!r}")
        return None

    # -- attempt lifecycle -------------------------------------------------------------------
    @pyqtSlot(object)
    def start_attempt(self, choice: SignInChoice) -> None:
        try:
            self._guard("Starting the attempt", self._start_attempt, choice)
        except StartCancelledError:
            self.session = None
            self.start_cancelled.emit()

    def _stage(self, text: str, percent: float) -> None:
        """Report progress; stop here when the trainee cancelled (raises StartCancelledError)."""
        if self.cancel_start.is_set():
            raise StartCancelledError
        self.progress.emit(text, percent)

    def _start_attempt(self, choice: SignInChoice) -> None:
        from fluorosim.render.renderer import FluoroRenderer
        from fluorosim.scenarios.loader import load_shipped
        from fluorosim.scenarios.session import Session

        self._stop_timer()
        self._close_source()
        self.choice = choice
        self._stage("Loading the scenario…", 5)
        scenario = load_shipped(choice.scenario_id)
        chosen = attempt_patient(
            scenario, choice.seed, choice.random_patient, self.patient_ref, self._stage
        )
        patient, seed, parameters = chosen.patient, chosen.seed, chosen.parameters
        self.patient = patient
        self._stage("Warming up the renderer…", 60)
        self.renderer = FluoroRenderer(patient)
        warm_up_renderer(self.renderer, patient)  # numba compiles; the progress dialog covers it
        self._stage("Connecting the instrument…", 85)
        self.source = self._open_source(self.device_url)
        self.attempt = AttemptFile.begin(
            choice.trainee_id, choice.scenario_id, choice.mode, parameters
        )
        self.session = Session(
            scenario,
            patient,
            self.renderer,
            TappedSource(self.source, self._on_sample),
            time.time,
            np.random.default_rng(seed),
            mode=choice.mode,
            recorder=self.attempt.writer,
        )
        self._breaches = 0
        self.beam = BeamPolicy()
        self.session.subscribe(self._on_event)
        self._apply_technique()
        self._place_mouse_at_entry()
        self.scenario_loaded.emit(
            {
                "title": scenario.title,
                "steps": [s.title for s in scenario.steps],
                "mode": choice.mode,
                "trainee": choice.trainee_id,
                "seed": seed,
            }
        )
        self.joints_changed.emit(self.session.joints)
        self.step_changed.emit(0, self.session.hint() or "")
        self.landmarks_ready.emit(
            {k: v for k, v in patient.landmarks.items() if np.asarray(v).shape == (3,)}
        )
        self._emit_counters()
        self.progress.emit("Ready.", 100)
        self._last_tick = time.monotonic()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.timer.start(TICK_MS)
        if choice.mode == "learning":
            self._guard("Building the 3D view", self._build_surfaces)

    def _open_source(self, url: str) -> InstrumentSource:
        from fluorosim.haptics.mouse import MouseInstrument, MouseSource, tissue_classifier

        source: InstrumentSource
        if url == "mouse":
            self.mouse = MouseInstrument(tissue_at=tissue_classifier(self.patient))
            source = MouseSource(self.mouse)
        else:
            from fluorosim.haptics.urls import describe_url, open_source

            self.mouse = None
            kwargs: dict[str, Any] = {}
            if describe_url(url) == "stp1":
                kwargs["rig"] = self._gimbal_rig()
            source = open_source(url, **kwargs)
        source.start()
        if source.message:
            self.problem.emit(source.message)
        return source

    def _scenario(self) -> Scenario:
        """The attempt's scenario (before the session exists: the signed-in choice's)."""
        if self.session is not None:
            return self.session.scenario
        from fluorosim.scenarios.loader import load_shipped

        return load_shipped(self.choice.scenario_id)

    def _gimbal_rig(self) -> GimbalRig:
        """An STP/1 gimbal mounted on the phantom at the planned skin entry (see
        :func:`fluorosim.scenarios.entry.gimbal_mount`). 6-DOF and IMU rigs report a kind mismatch
        until the wizard's registration is applied."""
        from fluorosim.haptics.rig_models import GimbalRig

        assert self.patient is not None, "the rig is mounted on the attempt's patient"
        return GimbalRig(entry.gimbal_mount(self._scenario(), self.patient))

    def _on_sample(self, sample: ToolSample) -> None:
        self._device_pedal = "pedal" in sample.buttons
        now = time.monotonic()
        if now - self._last_raw_emit >= 0.1:  # the wizard needs the newest, not every one
            self._last_raw_emit = now
            self.raw_sample.emit(dict(sample.raw))

    def _close_source(self) -> None:
        if self.source is not None:
            try:
                self.source.close()
            except Exception:  # closing a vanished device must not stop a new attempt
                traceback.print_exc()
            self.source = None

    def _place_mouse_at_entry(self) -> None:
        """Put the mouse instrument on the skin over the first trajectory step's planned corridor."""
        if self.mouse is None or self.session is None or self.patient is None:
            return
        seed = self.choice.seed if self.choice else None
        start = entry.mouse_start_pose(self.session.scenario, self.patient, self.session.mode, seed)
        if start is None:
            return
        self.mouse.set_entry(start.entry_lps_mm)
        self.mouse.set_aim(start.yaw_deg, start.pitch_deg)

    def _build_surfaces(self) -> None:
        if self.patient is not None:
            self.surfaces_ready.emit(overview_surfaces(self.patient))

    # -- periodic work ----------------------------------------------------------------------
    @pyqtSlot()
    def tick(self) -> None:
        now = time.monotonic()
        dt_s = min(0.1, max(0.0, now - self._last_tick))
        self._last_tick = now
        if self.session is None or self.session.finished:
            return
        self._guard("Simulation step", self.session.step, dt_s)
        pedal = self.beam.device_pedal(self._device_pedal, self.mouse is not None)
        if pedal is not None:
            self.set_pedal(pedal)  # the foot pedal of the tracked device
        if self.source is not None and now - self._last_status >= STATUS_PERIOD_S:
            self._last_status = now
            rate = float(getattr(self.source, "rate_hz", 0.0) or 0.0)
            self.device_status.emit(
                self.source.name,
                self.source.status.value,
                rate,
                self.source.message or "",
                dict(self.source.counters),
            )

    def _on_event(self, event: Event) -> None:
        kind = event.kind
        if kind == "frame":
            self._emit_frame(hold=False)
            self._emit_counters()
        elif kind == "pedal":
            on = bool(event.data.get("on"))
            # The last-image hold goes out before "X-ray off", so whoever sees the beam go off
            # (the indicator, a test) already has the held frame: queued signals keep their order.
            if self.beam.holds_last_image(on, self.session.last_frame is not None):
                self._emit_frame(hold=True)
            self.xray_changed.emit(on)
        elif kind == "carm":
            self.joints_changed.emit(self.session.joints)
            self._emit_beam()
        elif kind == "refused":
            self.problem.emit(f"Refused: {event.data.get('command')}: {event.data.get('reason')}")
        elif kind == "pose":
            self.tool_changed.emit(
                np.array(event.data["tip_mm"]), np.array(event.data["direction"])
            )
        elif kind == "tissue":
            send = getattr(self.source, "send_haptic", None)
            if send is not None:
                level = self.beam.haptic_level(event.data.get("label", ""))
                self._guard("Haptic cue", send, level)
        elif kind == "breach":
            self._breaches += 1
            self._emit_counters()
            if self.session.hints_allowed:
                self.problem.emit(
                    f"Breach: {event.data.get('structure')} ({event.data.get('depth_mm')} mm)"
                )
        elif kind == "step":
            steps = list(self.session.scenario.steps)
            current = self.session.current_step
            self.step_changed.emit(
                steps.index(current) if current in steps else len(steps) - 1,
                self.session.hint() or "",
            )

    def _emit_frame(self, hold: bool) -> None:
        frame = self.session.last_frame
        if frame is None:
            return
        settings = self.settings
        dose = getattr(frame, "dose", None)
        shot = self.session.log.shots[-1] if self.session.log.shots else None
        self.frame_ready.emit(
            settings.monitor_image(frame.image),
            {
                "shot": int(self.session.counters["shots"]),
                "view": (shot.view or "").replace("_", " ") if shot else "",
                "kvp": float(frame.kvp),
                "ma": float(getattr(dose, "ma", 0.0) or 0.0),
                "mode": self.beam.frame_mode(settings),
                "hold": hold,
            },
        )

    def _emit_counters(self) -> None:
        counters = dict(self.session.counters)
        counters["elapsed_s"] = self.session.t_s
        counters["breaches"] = self._breaches
        self.counters_changed.emit(counters)

    def _emit_beam(self) -> None:
        g = self.renderer.geometry(self.session.joints)
        self.beam_changed.emit(g.source_lps_mm, entry.detector_corners_lps(g))

    def _finished(self) -> None:
        data = self.session.report.as_json()
        self.report_ready.emit(data)
        self._stop_timer()
        self._guard("Saving the attempt to the records", self._record, data)

    def _record(self, report: dict) -> None:
        self.attempt.record_finished(self.session.scenario.title, report)
        self.attempt_saved.emit(str(self.attempt.path))

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None

    # -- the pedal (the window's and the device's) ---------------------------------------------
    def _command(self, action: str, command: cmd.Command) -> None:
        if self.session is None or self.session.finished:
            return
        self._guard(action, self.session.command, command)

    @pyqtSlot(bool)
    def set_pedal(self, on: bool) -> None:
        """Pedal pressed or released: live fluoroscopy, or one exposure in single-shot mode."""
        command = self.beam.pedal(on, self.settings)
        if command is not None:
            self._command(
                "Single shot" if isinstance(command, cmd.Shot) else "Fluoroscopy pedal", command
            )

    def _apply_technique(self) -> None:
        """Send the panel's technique to the session when it differs (recorded for replay)."""
        if self.session is None or self.session.finished or self.image_settings is None:
            return
        technique = self.image_settings.technique
        if technique != self.session.technique:
            self._command("C-arm technique", technique)
