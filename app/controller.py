"""The bridge between the window and the headless session, on a worker thread.

``SessionController`` lives in the GUI thread and offers plain methods (``set_pedal``, ``set_joint``,
``advance``…) that forward to a ``SessionWorker`` living in its own ``QThread`` through queued
signals. The worker owns everything that takes time — building or loading the patient, rendering,
polling devices, scoring, writing the attempt file — and emits what the window shows. So the GUI
event loop never waits on a render or a port.

Every slot of the worker catches the errors a user can cause (a refused C-arm move, a device that
will not open, a corrupt file) and turns them into a ``problem`` message; the attempt carries on.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, Qt, QThread, QTimer, pyqtSignal, pyqtSlot

from fluorosim.app.widgets.signin import SignInChoice
from fluorosim.models.tissue import label_tissue
from fluorosim.scenarios.records import journal

TICK_MS = 33  # ≈30 Hz session steps
STATUS_PERIOD_S = 0.25

#: Label-name tests → 3D style for the learning-mode surfaces.
SURFACE_GROUPS = {
    "bone": lambda n: label_tissue(n).bone,
    "neural": lambda n: n.startswith("root_") or n == "thecal_sac",
    "vessel": lambda n: "artery" in n or "vein" in n or n in ("aorta", "vena_cava"),
}


def overview_surface(
    patient: Any, label_names: list[str], step_vox: int = 3, max_cells: int = 30_000
) -> Any:
    """A coarse surface of some labels for the 3D overview (every ``step_vox``-th voxel, < 1 s).

    The printable, full-resolution meshes are :func:`models.io.meshes.structure_mesh`; the 3D view
    only has to show where things are, and must not hold the session's thread for seconds.
    """
    import pyvista as pv

    values = [patient.label_table[name] for name in label_names if name in patient.label_table]
    if not values:
        return None
    mask = np.isin(patient.labels[::step_vox, ::step_vox, ::step_vox], values).astype(np.float32)
    if not mask.any():
        return None
    grid = pv.ImageData(dimensions=mask.shape, spacing=tuple(patient.spacing_mm * step_vox))
    grid.point_data["mask"] = mask.ravel(order="F")
    surface = grid.contour([0.5], scalars="mask").smooth(n_iter=15)
    if surface.n_cells > max_cells:  # a software renderer draws 30k triangles in tens of ms
        surface = surface.decimate(1.0 - max_cells / surface.n_cells)
    lps_from_grid = patient.lps_from_voxel.copy()
    lps_from_grid[:3, :3] = lps_from_grid[:3, :3] / patient.spacing_mm  # the grid is already in mm
    return surface.transform(lps_from_grid, inplace=False)


class TappedSource:
    """Forwards an instrument source to the session and shows each new sample to ``on_sample``.

    The session consumes samples; the calibration wizard also needs the raw ones (tracker poses,
    gimbal angles), including uncalibrated samples the session ignores.
    """

    def __init__(self, source: Any, on_sample: Any) -> None:
        self.source = source
        self.on_sample = on_sample

    def poll(self) -> Any:
        sample = self.source.poll()
        if sample is not None:
            self.on_sample(sample)
        return sample

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


def raw_pixel(
    col: float, row: float, shown_shape: tuple[int, int], orientation: Any
) -> tuple[float, float]:
    """The raw detector position (col, row) shown at (col, row) of the oriented monitor image.

    Continuous pixel coordinates with pixel i spanning [i, i + 1); flips and quarter turns move the
    pixel (looked up exactly) and turn the offset within it (by the orientation's linear part).
    """
    height, width = shown_shape
    # a quarter turn swaps the raw image's rows and columns
    if orientation.rotate_quarter_turns % 2:
        height, width = width, height
    rows, cols = np.mgrid[0:height, 0:width]  # raw indices, shown as the monitor shows the image
    raw_rows = orientation.apply(rows)
    raw_cols = orientation.apply(cols)
    r = int(np.clip(np.floor(row), 0, raw_rows.shape[0] - 1))
    c = int(np.clip(np.floor(col), 0, raw_rows.shape[1] - 1))
    # how one shown pixel step (right, down) moves in raw pixels
    c2 = c + 1 if c + 1 < raw_rows.shape[1] else c - 1
    r2 = r + 1 if r + 1 < raw_rows.shape[0] else r - 1
    step_col = np.array([raw_cols[r, c2] - raw_cols[r, c], raw_rows[r, c2] - raw_rows[r, c]]) * (
        1 if c2 > c else -1
    )
    step_row = np.array([raw_cols[r2, c] - raw_cols[r, c], raw_rows[r2, c] - raw_rows[r, c]]) * (
        1 if r2 > r else -1
    )
    offset = (col - c - 0.5) * step_col + (row - r - 0.5) * step_row
    return float(raw_cols[r, c] + 0.5 + offset[0]), float(raw_rows[r, c] + 0.5 + offset[1])


def skin_point_on_ray(
    patient: Any, source: np.ndarray, pixel_lps: np.ndarray, near: np.ndarray | None
) -> np.ndarray | None:
    """Where the ray source→pixel crosses the skin: the entry or exit nearer to ``near``."""
    direction = (pixel_lps - source) / np.linalg.norm(pixel_lps - source)
    steps = np.arange(0.0, float(np.linalg.norm(pixel_lps - source)), 1.0)
    points = source[None, :] + steps[:, None] * direction[None, :]
    inside = (patient.labels_at(points) != 0) & patient.inside(points)
    if not inside.any():
        return None
    candidates = [
        points[int(np.argmax(inside))],
        points[len(inside) - 1 - int(np.argmax(inside[::-1]))],
    ]
    if near is None:
        return candidates[0]
    return min(candidates, key=lambda p: float(np.linalg.norm(p - near)))


MAGNIFICATION_LEVELS = {"normal": 0, "mag 1": 1, "mag 2": 2}


def technique_from_settings(settings: dict[str, Any]) -> Any:
    """The session's Technique for the C-arm panel's image settings (None: nothing to set yet)."""
    from fluorosim.scenarios.commands import Technique

    if not settings:
        return None
    pulse_mode = str(settings.get("pulse_mode", "pulsed 7.5 pps"))
    if pulse_mode == "continuous":
        fluoro, rate = "continuous", 7.5
    elif pulse_mode.startswith("pulsed"):
        fluoro, rate = "pulsed", float(pulse_mode.split()[1])
    else:  # low dose, and the pedal's fluoroscopy in single-shot mode is never used
        fluoro, rate = "low_dose", 7.5
    return Technique(
        fluoro,
        rate,
        MAGNIFICATION_LEVELS.get(str(settings.get("magnification", "normal")), 0),
        float(settings.get("iris_fraction", 1.0)),
        float(settings.get("shutter_fraction", 1.0)),
    )


def attempts_directory() -> Path:
    """Where attempt files are written (per-user data directory)."""
    import os

    import platformdirs

    override = os.environ.get("FLUOROSIM_ATTEMPTS_DIR")
    return (
        Path(override) if override else Path(platformdirs.user_data_dir("fluorosim")) / "attempts"
    )


def aim_angles_deg(direction_lps: np.ndarray) -> tuple[float, float]:
    """Yaw/pitch of the mouse instrument model for a shaft direction (see haptics.mouse)."""
    d = np.asarray(direction_lps, float) / np.linalg.norm(direction_lps)
    yaw = math.degrees(math.atan2(d[0], -d[1]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, d[2]))))
    return yaw, pitch


def skin_entry(patient: Any, entry: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Where the line target→entry, continued outward, leaves the body (first background voxel)."""
    direction = (entry - target) / np.linalg.norm(entry - target)
    distances = np.arange(0.0, 400.0, 1.0)
    points = entry[None, :] + distances[:, None] * direction[None, :]
    outside = (patient.labels_at(points) == 0) | ~patient.inside(points)
    index = int(np.argmax(outside)) if outside.any() else len(distances) - 1
    return points[index]


class StartCancelledError(Exception):
    """The trainee cancelled while the attempt was being prepared."""


class SessionWorker(QObject):
    """Owns the session on the worker thread."""

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
        self.session: Any = None
        self.patient: Any = None
        self.renderer: Any = None
        self.source: Any = None
        self.mouse: Any = None
        self.choice: SignInChoice | None = None
        self.image_settings: dict[str, Any] = {}
        self.timer: QTimer | None = None
        self._last_tick = time.monotonic()
        self._last_status = 0.0
        self._frame_seen: Any = None
        self._pedal = False
        self._breaches = 0
        self._last_raw_emit = 0.0
        self._device_pedal: bool | None = None
        self.attempt_path: Path | None = None
        self.recorder: Any = None
        self.journal_entry: journal.JournalEntry | None = None
        self._tool_from_tip: np.ndarray | None = None
        self._patient_from_tracker: np.ndarray | None = None
        self.started_utc = ""
        self.cancel_start = threading.Event()  # set from the GUI thread: stop preparing

    # -- helpers ---------------------------------------------------------------------------
    def _guard(self, action: str, function, *args) -> Any:
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
        from fluorosim.models.phantom import PatientParameters, load_or_build_patient
        from fluorosim.render.renderer import FluoroRenderer
        from fluorosim.scenarios.loader import load_shipped
        from fluorosim.scenarios.session import Session

        self._stop_timer()
        self._close_source()
        self.choice = choice
        self._stage("Loading the scenario…", 5)
        scenario = load_shipped(choice.scenario_id)
        parameters = dict(scenario.patient.parameters)
        seed = (
            int(np.random.default_rng().integers(0, 1_000_000))
            if choice.random_patient
            else choice.seed
        )
        parameters["seed"] = seed
        if self.patient_ref:
            from fluorosim.models.io.store import load_patient
            from fluorosim.scenarios.patients import describe_missing

            self._stage(f"Loading the patient {self.patient_ref}…", 10)
            patient = load_patient(self.patient_ref)
            missing = describe_missing(scenario, patient)
            if missing:  # before anything is recorded
                raise ValueError(missing)
            parameters = {"ct": self.patient_ref}
        else:
            self._stage(
                "Building the patient (the first time takes up to a minute; then it is cached)…",
                10,
            )
            patient = load_or_build_patient(PatientParameters(**parameters))
        self.patient = patient
        self._stage("Warming up the renderer…", 60)
        self.renderer = FluoroRenderer(patient)
        self._warm_up_renderer(patient)
        self._stage("Connecting the instrument…", 85)
        self.source = self._open_source(self.device_url)
        self.recorder = self._make_recorder(choice, parameters)
        self.session = Session(
            scenario,
            patient,
            self.renderer,
            TappedSource(self.source, self._on_sample),
            time.time,
            np.random.default_rng(seed),
            mode=choice.mode,
            recorder=self.recorder,
        )
        self._breaches = 0
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

    def _warm_up_renderer(self, patient: Any) -> None:
        """Render one complete frame with a pin in view so every kernel is compiled before the
        trainee's first shot (numba compiles on first use; the progress dialog covers it)."""
        from fluorosim.models.instruments import InstrumentPose as RenderPose
        from fluorosim.render.carm import CArmJoints

        centre = np.mean(patient.bounds_lps_mm(), axis=0)
        pin = RenderPose("guide_pin", centre, np.array([1.0, 0.0, 0.0]))
        self.renderer.render_frame(CArmJoints(), [pin], None, rng=np.random.default_rng(0))

    def _make_recorder(self, choice: SignInChoice, parameters: dict[str, Any]) -> Any:
        from fluorosim.scenarios.recording import AttemptWriter

        directory = attempts_directory()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe_trainee = "".join(c if c.isalnum() or c in "-_" else "_" for c in choice.trainee_id)
        self.attempt_path = directory / f"{stamp}-{safe_trainee}-{choice.scenario_id}.jsonl"
        self.started_utc = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        self.journal_entry = journal.begin(
            self.attempt_path, choice.trainee_id, choice.scenario_id, choice.mode, self.started_utc
        )
        return AttemptWriter(self.attempt_path, patient_parameters=parameters)

    def _open_source(self, url: str) -> Any:
        from fluorosim.haptics.mouse import MouseInstrument, MouseSource, tissue_classifier

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

    def _planned_corridor(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(skin entry, unit direction) of the first trajectory step's planned corridor."""
        from fluorosim.scenarios.points import resolve_point

        scenario = self.session.scenario if self.session is not None else None
        if scenario is None:
            from fluorosim.scenarios.loader import load_shipped

            scenario = load_shipped(self.choice.scenario_id)
        step = next(
            (s for s in scenario.steps if s.kind == "trajectory" and s.entry and s.target), None
        )
        if step is None:
            return None
        entry = resolve_point(self.patient, step.entry, scenario.side)
        target = resolve_point(self.patient, step.target, scenario.side)
        return skin_entry(self.patient, entry, target), (target - entry) / np.linalg.norm(
            target - entry
        )

    def _gimbal_rig(self) -> Any:
        """An STP/1 gimbal mounted on the phantom at the planned skin entry, facing along the
        planned approach (its yaw 0 / pitch 0 is the horizontal part of the planned direction).
        6-DOF and IMU rigs report a kind mismatch until the wizard's registration is applied."""
        from fluorosim.haptics.rig_models import GimbalRig, patient_from_rig_at
        from fluorosim.models.frames import POSTERIOR

        corridor = self._planned_corridor()
        if corridor is None:
            return GimbalRig()
        skin, direction = corridor
        horizontal = direction - np.dot(direction, POSTERIOR) * POSTERIOR
        return GimbalRig(patient_from_rig_at(skin, horizontal, POSTERIOR))

    def _on_sample(self, sample: Any) -> None:
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
        from fluorosim.scenarios.points import resolve_point

        if self.mouse is None:
            return
        scenario = self.session.scenario
        step = next(
            (s for s in scenario.steps if s.kind == "trajectory" and s.entry and s.target), None
        )
        if step is None:
            return
        entry = resolve_point(self.patient, step.entry, scenario.side)
        target = resolve_point(self.patient, step.target, scenario.side)
        skin = skin_entry(self.patient, entry, target)
        direction = (target - entry) / np.linalg.norm(target - entry)
        yaw, pitch = aim_angles_deg(direction)
        if self.session.mode == "exam":
            rng = np.random.default_rng(self.choice.seed if self.choice else 0)
            yaw += float(rng.uniform(-12, 12))
            pitch += float(rng.uniform(-12, 12))
        self.mouse.set_entry(skin)
        self.mouse.set_aim(yaw, pitch)

    def _build_surfaces(self) -> None:
        surfaces = {}
        for style, test in SURFACE_GROUPS.items():
            names = [n for n in self.patient.label_table if test(n)]
            mesh = overview_surface(self.patient, names)
            if mesh is not None:
                surfaces[style] = (mesh, style)
        self.surfaces_ready.emit(surfaces)

    # -- periodic work ----------------------------------------------------------------------
    @pyqtSlot()
    def tick(self) -> None:
        now = time.monotonic()
        dt_s = min(0.1, max(0.0, now - self._last_tick))
        self._last_tick = now
        if self.session is None or self.session.finished:
            return
        self._guard("Simulation step", self.session.step, dt_s)
        if (
            self._device_pedal is not None
            and self._device_pedal != self._pedal
            and self.mouse is None
        ):
            self.set_pedal(self._device_pedal)  # the foot pedal of the tracked device
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

    def _on_event(self, event: Any) -> None:
        kind = event.kind
        if kind == "frame":
            self._emit_frame(hold=False)
            self._emit_counters()
        elif kind == "pedal":
            # The last-image hold goes out before "X-ray off", so whoever sees the beam go off
            # (the indicator, a test) already has the held frame: queued signals keep their order.
            if not event.data.get("on") and self.session.last_frame is not None:
                self._emit_frame(hold=True)
            self.xray_changed.emit(bool(event.data.get("on")))
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
                from fluorosim.haptics.serial_source import tissue_to_haptic_level

                self._guard("Haptic cue", send, tissue_to_haptic_level(event.data.get("label", "")))
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
        from fluorosim.render.carm import MonitorOrientation

        frame = self.session.last_frame
        if frame is None:
            return
        orientation = MonitorOrientation(
            bool(self.image_settings.get("flip_horizontal")),
            bool(self.image_settings.get("flip_vertical")),
            int(self.image_settings.get("rotate_quarter_turns", 0)),
        )
        image = orientation.apply(np.asarray(frame.image))
        if self.image_settings.get("invert"):
            image = 255 - image
        dose = getattr(frame, "dose", None)
        shot = self.session.log.shots[-1] if self.session.log.shots else None
        self.frame_ready.emit(
            image,
            {
                "shot": int(self.session.counters["shots"]),
                "view": (shot.view or "").replace("_", " ") if shot else "",
                "kvp": float(frame.kvp),
                "ma": float(getattr(dose, "ma", 0.0) or 0.0),
                "mode": str(self.image_settings.get("pulse_mode", "pulsed"))
                if self._pedal
                else "single shot",
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
        corners = np.array(
            [
                g.detector_origin_lps_mm,
                g.detector_origin_lps_mm + (g.width_px - 1) * g.pixel_mm * g.detector_u_lps,
                g.detector_origin_lps_mm
                + (g.width_px - 1) * g.pixel_mm * g.detector_u_lps
                + (g.height_px - 1) * g.pixel_mm * g.detector_v_lps,
                g.detector_origin_lps_mm + (g.height_px - 1) * g.pixel_mm * g.detector_v_lps,
            ]
        )
        self.beam_changed.emit(g.source_lps_mm, corners)

    def _finished(self) -> None:
        report = self.session.report
        data = report.as_json()
        self.report_ready.emit(data)
        self._stop_timer()
        self._guard("Saving the attempt to the records", self._record, data)

    def _record(self, report: dict) -> None:
        from fluorosim.scenarios.records.database import RecordStore

        with RecordStore.open() as store:
            store.add_trainee(self.choice.trainee_id, self.choice.trainee_id)
            store.ensure_scenario(self.session.scenario.id, self.session.scenario.title)
            store.record_attempt(
                self.choice.trainee_id,
                self.session.scenario.id,
                report,
                self.started_utc,
                time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                self.attempt_path,
                mode=self.session.mode,
            )
        if self.journal_entry is not None:
            journal.end(self.journal_entry)
            self.journal_entry = None
        if self.attempt_path is not None:
            self.attempt_saved.emit(str(self.attempt_path))

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None

    # -- commands from the window -------------------------------------------------------------
    def _command(self, action: str, command: Any) -> None:
        if self.session is None or self.session.finished:
            return
        self._guard(action, self.session.command, command)

    @pyqtSlot(bool)
    def set_pedal(self, on: bool) -> None:
        from fluorosim.scenarios.commands import Pedal

        if self.image_settings.get("pulse_mode") == "single shot":
            if on:  # in single-shot mode the pedal takes one exposure
                self.single_shot()
            return
        self._pedal = on
        self._command("Fluoroscopy pedal", Pedal(on))

    @pyqtSlot()
    def single_shot(self) -> None:
        from fluorosim.scenarios.commands import Shot

        self._command("Single shot", Shot())

    @pyqtSlot(str, float)
    def set_joint(self, name: str, value: float) -> None:
        from fluorosim.scenarios.commands import MoveCArm

        self._command("C-arm move", MoveCArm(joints={name: value}))

    @pyqtSlot(str)
    def go_to_view(self, view: str) -> None:
        from fluorosim.scenarios.commands import MoveCArm

        self._command(f"Go to the {view} view", MoveCArm(view=view))

    @pyqtSlot(float)
    def advance(self, distance_mm: float) -> None:
        if self.mouse is not None:
            steps = max(1, round(abs(distance_mm) / 0.5)) if abs(distance_mm) >= 0.5 else 1
            fine = abs(distance_mm) < 0.5
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
        from fluorosim.render.carm import MonitorOrientation

        if self.mouse is None or self.session is None or self.session.last_frame is None:
            return
        frame = self.session.last_frame
        orientation = MonitorOrientation(
            bool(self.image_settings.get("flip_horizontal")),
            bool(self.image_settings.get("flip_vertical")),
            int(self.image_settings.get("rotate_quarter_turns", 0)),
        )
        raw_col, raw_row = raw_pixel(col, row, np.asarray(frame.image).shape, orientation)
        g = frame.geometry
        pixel_lps = (
            g.detector_origin_lps_mm
            + raw_col * g.pixel_mm * g.detector_u_lps
            + raw_row * g.pixel_mm * g.detector_v_lps
        )
        skin = skin_point_on_ray(self.patient, g.source_lps_mm, pixel_lps, self.mouse.entry_lps_mm)
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

    @pyqtSlot(dict)
    def set_image_settings(self, settings: dict) -> None:
        self.image_settings = dict(settings)
        self._apply_technique()

    def _apply_technique(self) -> None:
        """Send the panel's technique to the session when it differs (recorded for replay)."""
        if self.session is None or self.session.finished:
            return
        technique = self._guard("C-arm technique", technique_from_settings, self.image_settings)
        if technique is not None and technique != self.session.technique:
            self._command("C-arm technique", technique)

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
    def apply_calibration(self, calibration: Any) -> None:
        self._guard("Applying the calibration", self._apply_calibration, calibration)

    def _apply_calibration(self, calibration: Any) -> None:
        """Give a wizard result to the device: a pivot sets tool_from_tip, a registration
        patient_from_tracker (for an STP/1 6-DOF rig the rig is rebuilt with both); saved to disk."""
        from fluorosim.haptics.calibration import save_calibration
        from fluorosim.haptics.rig_models import PoseRig
        from fluorosim.haptics.serial_source import SerialStp1Source

        source = self.source
        if calibration.kind == "pivot":
            self._tool_from_tip = np.asarray(calibration.matrix)
        elif calibration.kind in ("registration", "paired_point"):
            self._patient_from_tracker = np.asarray(calibration.matrix)
        saved = save_calibration(calibration)
        if isinstance(source, SerialStp1Source) and calibration.kind != "gimbal":
            if self._tool_from_tip is not None:
                source.rig = PoseRig(self._patient_from_tracker, self._tool_from_tip)
        elif calibration.kind == "gimbal" and isinstance(source, SerialStp1Source):
            rig = self._gimbal_rig()
            details = calibration.details
            rig.yaw_zero_deg = float(details.get("zero_yaw_deg", 0.0))
            rig.pitch_zero_deg = float(details.get("zero_pitch_deg", 0.0))
            rig.roll_zero_deg = float(details.get("zero_roll_deg", 0.0))
            rig.depth_zero_mm = float(details.get("zero_depth", 0.0))
            source.rig = rig
        elif hasattr(source, "patient_from_tracker"):
            if self._tool_from_tip is not None:
                source.tool_from_tip = self._tool_from_tip
            if self._patient_from_tracker is not None:
                source.patient_from_tracker = self._patient_from_tracker
        self.problem.emit(
            f"{calibration.name} applied (error {calibration.error_mm:.2f} mm), saved to {saved}"
        )

    @pyqtSlot()
    def next_step(self) -> None:
        from fluorosim.scenarios.commands import NextStep

        self._command("Next step", NextStep())

    @pyqtSlot()
    def place_implant(self) -> None:
        from fluorosim.scenarios.commands import PlaceImplant

        if self.session is None:
            return
        step = self.session.current_step
        implant = step.implant if step is not None and step.implant else None
        if implant is None:
            self.problem.emit("This step places no implant.")
            return
        self._command("Place implant", PlaceImplant(implant))

    @pyqtSlot()
    def finish(self) -> None:
        from fluorosim.scenarios.commands import Finish

        self._command("Finish", Finish())
        if self.session is not None and self.session.finished and self.session.report is not None:
            # after Finish returns: the recorder has written the report line and closed the file
            self._finished()

    @pyqtSlot()
    def interrupt(self) -> None:
        """The trainee leaves mid-attempt: close its file and record it as interrupted."""
        self._stop_timer()
        if self.session is None or self.session.finished or self.journal_entry is None:
            return
        self._guard("Closing the attempt file", self.recorder.close)
        self._guard("Recording the interrupted attempt", self._record_interrupted)

    def _record_interrupted(self) -> None:
        from fluorosim.scenarios.records.database import RecordStore

        with RecordStore.open() as store:
            journal.recover(store, self.journal_entry)  # scored as it stood, status interrupted
        self.journal_entry = None
        self.session = None
        if self.attempt_path is not None:
            self.attempt_saved.emit(str(self.attempt_path))

    @pyqtSlot()
    def shutdown(self) -> None:
        self._stop_timer()
        self._close_source()
        if self.recorder is not None and self.session is not None and not self.session.finished:
            self._guard("Closing the attempt file", self.recorder.close)


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
    _image_settings = pyqtSignal(dict)
    _device = pyqtSignal(str)
    _calibration = pyqtSignal(object)
    _next = pyqtSignal()
    _implant = pyqtSignal()
    _finish = pyqtSignal()
    _shutdown = pyqtSignal()
    _interrupt = pyqtSignal()

    def __init__(self, device_url: str = "mouse", patient_ref: str | None = None) -> None:
        super().__init__()
        self.thread = QThread()
        self.thread.setObjectName("fluorosim-session")
        self.worker = SessionWorker(device_url, patient_ref)
        self.worker.moveToThread(self.thread)
        for name in (
            "frame_ready",
            "joints_changed",
            "counters_changed",
            "xray_changed",
            "device_status",
            "step_changed",
            "scenario_loaded",
            "report_ready",
            "problem",
            "surfaces_ready",
            "beam_changed",
            "tool_changed",
            "raw_sample",
            "landmarks_ready",
            "progress",
            "attempt_saved",
            "start_cancelled",
        ):
            setattr(self, name, getattr(self.worker, name))
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
        self._shutdown.connect(w.shutdown, Qt.ConnectionType.BlockingQueuedConnection)
        self._interrupt.connect(w.interrupt, Qt.ConnectionType.BlockingQueuedConnection)
        self.thread.start()

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
        if self.thread.isRunning():
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

    def set_image_settings(self, settings: dict) -> None:
        self._image_settings.emit(settings)

    def open_device(self, url: str) -> None:
        self._device.emit(url)

    def apply_calibration(self, calibration: Any) -> None:
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
        if self.thread.isRunning():
            self._shutdown.emit()
            self.thread.quit()
            self.thread.wait(5000)
