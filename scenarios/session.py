"""The headless session: one attempt of one scenario on one patient, commanded and observed.

Public, stable API (the GUI wraps it; tests, scripted attempts and replay drive the same object)::

    session = Session(scenario, patient, renderer, source, clock, rng,
                      mode="learning" | "exam", recorder=None)
    unsubscribe = session.subscribe(callback)        # callback(Event)
    session.command(MoveCArm(view="inlet"))          # or MoveCArm(joints={"orbital_deg": 90})
    session.command(Pedal(True)); session.step(0.5); session.command(Pedal(False))
    session.command(Shot())
    session.command(InstrumentPose("guide_pin", tip, direction))   # or Advance(mm), Aim(dir)
    session.command(PlaceImplant("sij_implant")); session.command(NextStep())
    report = session.command(Finish()) or session.report

Properties: ``t_s``, ``joints`` (render.carm.CArmJoints), ``current_step`` (spec.Step or None),
``counters`` (shots, frames, beam_on_s, kap_gycm2, air_kerma_mgy), ``last_frame``, ``tool_pose``,
``implants``, ``report`` (after Finish), ``log`` (scenarios.attempt.AttemptLog), ``hints_allowed``.

Time comes only from :meth:`step` (``dt_s``); ``clock`` (a callable returning epoch seconds) only
stamps the recording's start. Frames are rendered by the injected renderer when a shot is taken
and, while the pedal is down, at the pulse rate on a fixed schedule (pulse k at t_on + k/pps), so
that a replay that issues the same commands at the same times renders the same frames with the same
random numbers. Events (``Event.kind``): ``carm``, ``refused``, ``pedal``, ``frame``, ``shot``,
``sample`` (every tracker sample with its status, also MISSING ones), ``pose``, ``tissue``,
``breach``, ``implant``, ``step``, ``score``.

Modes: ``learning`` allows going to a named view (when the scenario allows it) and hints;
``exam`` allows neither (the command is refused, recorded and reported).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fluorosim.haptics.source import SampleSource
from fluorosim.models.instruments import InstrumentPose as RenderPose
from fluorosim.models.instruments import InstrumentSpec, load_catalogue
from fluorosim.models.patient import Patient
from fluorosim.models.pose import wrap_roll_deg
from fluorosim.render import carm, dose, views
from fluorosim.render.carm import CArmJoints, CArmLimitError
from fluorosim.render.dose import Technique
from fluorosim.render.exposure import Exposure
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.image_chain import ChainSettings
from fluorosim.render.metering import DoseRateControl
from fluorosim.scenarios import commands as cmd
from fluorosim.scenarios.attempt import AttemptLog, ImplantRecord, PoseSample, ShotRecord
from fluorosim.scenarios.protocols import Frame, FrameDose, Recorder, Renderer, TechniqueRenderer
from fluorosim.scenarios.recorded_technique import RecordedExposure, RecordedTechnique
from fluorosim.scenarios.scoring.breaches import depths_along_shaft, resolve_risks
from fluorosim.scenarios.scoring.geometry import shaft_points
from fluorosim.scenarios.scoring.report import Report
from fluorosim.scenarios.scoring.views import view_level
from fluorosim.scenarios.spec import Scenario, Step

MODES = ("learning", "exam")
DEFAULT_PULSE_RATE_PPS = 8.0
#: Length of a single-shot exposure (s); approx., a last-image-hold spot of 0.05–0.2 s.
SINGLE_SHOT_S = 0.1


@dataclass(frozen=True)
class Event:
    """Something that happened, for observers and the recording."""

    kind: str
    t_s: float
    data: dict[str, Any] = field(default_factory=dict)


class SessionError(RuntimeError):
    """A command that cannot run now (no instrument, attempt finished…); message says why."""


class MissingStructuresError(ValueError):
    """The patient lacks labels or landmarks the scenario needs (an imported CT without roots…)."""

    def __init__(self, message: str, missing: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.missing = missing


def image_id(image: np.ndarray) -> str:
    """Stable id of a displayed image (SHA-1 of its bytes and shape, 16 hex digits)."""
    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes())
    digest.update(repr(image.shape).encode())
    return digest.hexdigest()[:16]


class Session:
    """One attempt (see the module docstring for the API)."""

    def __init__(
        self,
        scenario: Scenario,
        patient: Patient,
        renderer: Renderer | None,
        source: SampleSource | None,
        clock: Callable[[], float],
        rng: np.random.Generator,
        mode: str = "learning",
        recorder: Recorder | None = None,
        *,
        catalogue: dict[str, InstrumentSpec] | None = None,
        carm_model: str = "ii9",
        pulse_rate_pps: float = DEFAULT_PULSE_RATE_PPS,
        exposure_factory: Callable[[str, float], Exposure | None] | None = None,
        recorded_technique: RecordedTechnique | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        from fluorosim.scenarios.patients import describe_missing, missing_structures

        # Up front: a scenario the patient cannot support would otherwise drop its risks silently
        # or fail at the first view or score.
        message = describe_missing(scenario, patient)
        if message:
            raise MissingStructuresError(message, missing_structures(scenario, patient))
        self.scenario = scenario
        self.patient = patient
        self.renderer = renderer
        self.source = source
        self.clock = clock
        self.rng = rng
        self.mode = mode
        self.recorder = recorder
        self.catalogue = catalogue if catalogue is not None else load_catalogue()
        self.carm_model = carm_model
        self.pulse_rate_pps = float(pulse_rate_pps)
        #: The panel's technique (fluoroscopy mode and rate, magnification, collimation).
        self.technique = cmd.Technique(pulse_rate_pps=min(max(self.pulse_rate_pps, 0.5), 30.0))
        self._exposure_factory = exposure_factory or self._default_exposure
        #: a replay's recorded technique per frame (scenarios.recorded_technique), else metered
        self._recorded_technique = recorded_technique
        #: the dose-rate control's kVp and tube current per pose (_metered_technique)
        self._dose_rate_control = DoseRateControl(patient.hu, patient.lps_from_voxel)
        self.log = AttemptLog(scenario.id, mode)
        self._t_s = 0.0
        self._joints = CArmJoints()
        self._view: str | None = None  # named view the C-arm was sent to, until moved by hand
        self._step_index = 0
        self._tool: PoseSample | None = None
        self._instrument: str | None = self._first_instrument()
        self._pedal_on_t: float | None = None
        self._pulses_done = 0
        self._pedal_shot: dict[str, Any] | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._risks = resolve_risks(scenario, patient)
        self._breaching: set[tuple[int, str]] = set()
        self._tissue: str | None = None
        self.last_frame: Frame | None = None
        self.report: Report | None = None
        self.counters: dict[str, float] = {
            "shots": 0,
            "frames": 0,
            "beam_on_s": 0.0,
            "kap_gycm2": 0.0,
            "air_kerma_mgy": 0.0,
        }
        self.log.step_changes.append((0.0, self.scenario.steps[0].id))
        if recorder is not None:
            recorder.start(self)

    # -- observation -------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _emit(self, kind: str, **data: Any) -> None:
        event = Event(kind, self._t_s, data)
        if self.recorder is not None:
            self.recorder.event(event)
        for callback in list(self._subscribers):
            callback(event)

    @property
    def t_s(self) -> float:
        """Seconds since the attempt started (advanced only by :meth:`step`)."""
        return self._t_s

    @property
    def joints(self) -> CArmJoints:
        """Current C-arm joints."""
        return self._joints

    @property
    def current_step(self) -> Step | None:
        """The step in progress (None after the last one)."""
        if self._step_index < len(self.scenario.steps):
            return self.scenario.steps[self._step_index]
        return None

    @property
    def tool_pose(self) -> PoseSample | None:
        """The current instrument pose (None before one is placed or after an implant)."""
        return self._tool

    @property
    def implants(self) -> list[ImplantRecord]:
        """Implants placed so far."""
        return list(self.log.implants)

    @property
    def finished(self) -> bool:
        """Whether Finish has been received."""
        return self.report is not None

    @property
    def hints_allowed(self) -> bool:
        """Hints and the 3D view are for learning mode only."""
        return self.mode == "learning"

    def hint(self) -> str | None:
        """Plain-words hint for the current step (learning mode only, else None)."""
        step = self.current_step
        if not self.hints_allowed or step is None:
            return None
        if step.kind == "view" and step.view:
            return f"Obtain the {step.view.replace('_', ' ')} view; check it with a single shot."
        views_text = " and ".join(v.replace("_", " ") for v in step.confirm_views) or "two views"
        return f"{step.title}: advance in small steps and confirm the tip on the {views_text} view."

    # -- time ----------------------------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        """Advance time by ``dt_s``: poll the instrument source, render due pulsed frames."""
        if dt_s < 0:
            raise ValueError(f"dt_s must be ≥ 0, got {dt_s}")
        if self.finished:
            return
        target = self._t_s + float(dt_s)
        if self._pedal_on_t is not None:
            period = 1.0 / self.pulse_rate_pps
            while self._pedal_on_t + self._pulses_done * period <= target + 1e-12:
                self._t_s = max(self._t_s, self._pedal_on_t + self._pulses_done * period)
                self._pulses_done += 1
                self._expose("pulsed")
        self._t_s = target
        if self.recorder is not None:
            self.recorder.tick()
        if self.source is not None:
            sample = self.source.poll()
            if sample is not None:
                self._emit(
                    "sample",
                    device_t_s=float(sample.t_s),
                    status=sample.status.value,
                    buttons=sorted(sample.buttons),
                )
            if sample is not None and sample.has_pose and self._instrument is not None:
                tip, direction = sample.tip_lps_mm, sample.direction_lps
                assert tip is not None and direction is not None  # has_pose says so
                self.command(
                    cmd.InstrumentPose(
                        self._instrument,
                        (float(tip[0]), float(tip[1]), float(tip[2])),
                        (float(direction[0]), float(direction[1]), float(direction[2])),
                        float(sample.roll_deg),
                    )
                )

    # -- commands ------------------------------------------------------------------------------
    def command(self, command: cmd.Command) -> Report | None:
        """Apply one command now (recorded); returns the report on Finish."""
        if self.finished:
            raise SessionError("the attempt is finished; start a new session")
        if self.recorder is not None:
            self.recorder.command(self._t_s, command)
        if isinstance(command, cmd.MoveCArm):
            self._move_carm(command)
        elif isinstance(command, cmd.Pedal):
            self._pedal(command.on)
        elif isinstance(command, cmd.Shot):
            self._expose("single")
        elif isinstance(command, cmd.InstrumentPose):
            self._select(command.instrument)
            self._set_pose(
                np.array(command.tip_lps_mm), np.array(command.direction_lps), command.roll_deg
            )
        elif isinstance(command, cmd.Advance):
            tool = self._require_tool()
            self._set_pose(
                tool.tip_lps_mm + command.distance_mm * tool.direction_lps,
                tool.direction_lps,
                tool.roll_deg,
            )
        elif isinstance(command, cmd.Aim):
            tool = self._require_tool()
            self._set_pose(tool.tip_lps_mm, np.array(command.direction_lps), tool.roll_deg)
        elif isinstance(command, cmd.SelectInstrument):
            self._select(command.name)
        elif isinstance(command, cmd.PlaceImplant):
            self._place_implant(command.name)
        elif isinstance(command, cmd.NextStep):
            self._next_step()
        elif isinstance(command, cmd.Finish):
            return self._finish()
        elif isinstance(command, cmd.Technique):
            self._set_technique(command)
        else:
            raise SessionError(f"unknown command {command!r}")
        return None

    def _refuse(self, what: str, why: str) -> None:
        self.log.refused.append((self._t_s, f"{what}: {why}"))
        self._emit("refused", command=what, reason=why)

    def _move_carm(self, command: cmd.MoveCArm) -> None:
        if command.view is not None:
            if self.mode == "exam":
                self._refuse(
                    f"go to view {command.view}", "named views are not available in exam mode"
                )
                return
            if not self.scenario.allow_named_views:
                self._refuse(
                    f"go to view {command.view}", "this scenario trains positioning by hand"
                )
                return
            level = view_level(self.scenario, self.current_step, command.view)
            try:
                joints = views.ideal_joints(
                    self.patient,
                    command.view,
                    side=self.scenario.side,
                    level=level,
                    model=self.carm_model,
                )
            except (views.ViewSpecError, CArmLimitError, KeyError) as exc:
                self._refuse(f"go to view {command.view}", str(exc))
                return
            self._joints = joints
            self._view = command.view
        else:
            changes = dict(command.joints or {})
            known = set(self._joints.as_dict())
            unknown = sorted(set(changes) - known)
            if unknown:
                self._refuse("move C-arm", f"unknown joint(s) {unknown}; known: {sorted(known)}")
                return
            try:
                joints = carm.check_limits(self._joints.moved(**changes))
            except CArmLimitError as exc:
                self._refuse("move C-arm", str(exc))
                return
            self._joints = joints
            self._view = None
        self._emit("carm", joints=self._joints.as_dict(), view=self._view)

    def _pedal(self, on: bool) -> None:
        if on and self._pedal_on_t is None:
            self._pedal_on_t = self._t_s
            self._pulses_done = 0
            self._pedal_shot = None
            self._emit("pedal", on=True)
            self.step(0.0)  # the first pulse fires at once
        elif not on and self._pedal_on_t is not None:
            self._pedal_on_t = None
            self._pedal_shot = None
            self._emit("pedal", on=False)

    # -- technique -----------------------------------------------------------------------------
    def _set_technique(self, technique: cmd.Technique) -> None:
        """Apply the panel's technique: the pedal's frame rate and exposure mode, the
        magnification mode (field size) and the collimation of the following frames."""
        self.technique = technique
        self.pulse_rate_pps = technique.frame_rate_pps
        if self._pedal_on_t is not None:  # the pulse schedule restarts at the new rate
            self._pedal_on_t = self._t_s
            self._pulses_done = 1
        if isinstance(self.renderer, TechniqueRenderer):
            self.renderer.mode = self.magnification_mode
        self._emit(
            "technique",
            fluoro_mode=technique.fluoro_mode,
            pulse_rate_pps=technique.pulse_rate_pps,
            magnification_mode=self.magnification_mode,
            iris_fraction=technique.iris_fraction,
            shutter_fraction=technique.shutter_fraction,
        )

    @property
    def magnification_mode(self) -> str:
        """The C-arm model's mode for the technique's magnification level (largest field first)."""
        model = carm.get_model(self.carm_model)
        names = sorted(model.modes, key=lambda name: -model.modes[name])
        return names[min(self.technique.magnification, len(names) - 1)]

    def chain_settings(self) -> ChainSettings:
        """The image chain's settings for the technique: magnification mode and collimation
        (iris diameter and the shutter opening along the detector columns, mm at the detector)."""
        from fluorosim.render.exposure import Collimation

        model = carm.get_model(self.carm_model)
        field_mm = model.field_mm(self.magnification_mode)
        t = self.technique
        iris = t.iris_fraction * field_mm if t.iris_fraction < 1.0 else None
        half = t.shutter_fraction * field_mm / 2.0
        shutters = (-half, half) if t.shutter_fraction < 1.0 else None
        return ChainSettings.for_model(
            model,
            magnification_mode=self.magnification_mode,
            collimation=Collimation(iris, shutters, None),
        )

    def _expose(self, mode: str) -> None:
        exposure = self._exposure_factory(mode, self.pulse_rate_pps)
        frame: Frame | None = None
        geometry: ProjectionGeometry | None = None
        if self.renderer is not None:
            frame = self.renderer.render_frame(
                self._joints,
                self._render_instruments(),
                exposure,
                chain_settings=self.chain_settings(),
                rng=self.rng,
            )
            geometry = frame.geometry
        else:  # headless scoring without images: the beam geometry still gives dose and hands
            geometry = carm.carm_geometry(
                self._joints,
                self.carm_model,
                views.home_isocenter_lps(self.patient),
                mode=self.magnification_mode,
            )
        frame_dose = self._frame_dose(frame, exposure, geometry)
        beam_on_s = float(frame_dose.beam_on_s) if frame_dose is not None else 0.0
        kap = float(frame_dose.kap_gycm2) if frame_dose is not None else 0.0
        kerma = float(frame_dose.air_kerma_mgy) if frame_dose is not None else 0.0
        ident = image_id(frame.image) if frame is not None else ""
        hand = self._hand_in_beam(geometry, mode)
        self.last_frame = frame
        self.counters["frames"] += 1
        self.counters["beam_on_s"] += beam_on_s
        self.counters["kap_gycm2"] += kap
        self.counters["air_kerma_mgy"] += kerma
        step = self.current_step
        step_id = step.id if step is not None else self.scenario.steps[-1].id
        new_shot = self._starts_shot(mode)
        if new_shot:
            self.counters["shots"] += 1
            record = ShotRecord(
                index=int(self.counters["shots"]),
                t_s=self._t_s,
                joints=self._joints.as_dict(),
                view=self._view,
                mode=mode,
                step_id=step_id,
                frames=1,
                beam_on_s=beam_on_s,
                kap_gycm2=kap,
                air_kerma_mgy=kerma,
                image_ids=(ident,) if ident else (),
                hand_in_beam=hand,
                tool=self._tool,
            )
            self.log.shots.append(record)
            if mode == "pulsed":
                self._pedal_shot = {"index": len(self.log.shots) - 1}
        else:
            position = self._pedal_shot["index"]  # type: ignore[index]
            old = self.log.shots[position]
            self.log.shots[position] = ShotRecord(
                index=old.index,
                t_s=old.t_s,
                joints=old.joints,
                view=old.view,
                mode=old.mode,
                step_id=old.step_id,
                frames=old.frames + 1,
                beam_on_s=old.beam_on_s + beam_on_s,
                kap_gycm2=old.kap_gycm2 + kap,
                air_kerma_mgy=old.air_kerma_mgy + kerma,
                image_ids=old.image_ids + ((ident,) if ident else ()),
                hand_in_beam=old.hand_in_beam or hand,
                tool=old.tool,
            )
        self._emit(
            "frame",
            image_id=ident,
            mode=mode,
            shot=int(self.counters["shots"]),
            kvp=None if exposure is None else float(exposure.kvp),
            ma=None if exposure is None else float(exposure.ma),
        )
        if new_shot:
            self._emit(
                "shot",
                index=int(self.counters["shots"]),
                view=self._view,
                joints=self._joints.as_dict(),
                mode=mode,
                hand_in_beam=hand,
                exposure=_exposure_json(exposure),
            )

    def _default_exposure(self, mode: str, pulse_rate_pps: float) -> Exposure:
        """The render.exposure Exposure of a single shot or of one pulsed pedal frame.

        Technique as the automatic dose-rate control settles at for this pose of this patient
        (render.metering: the patient metered in the central half of the field, the typical
        current for the field scaled to it up to the rate limit, then the kVp raised from the
        renderer's) — the same with or without a renderer; a single shot lasts :data:`SINGLE_SHOT_S`; a pulsed
        frame covers one pulse interval 1/pps of pedal-down time.
        """
        renderer = self.renderer
        kvp = renderer.kvp if isinstance(renderer, TechniqueRenderer) else dose.DEFAULT_KVP
        recorded = self._recorded_exposure(mode)
        if recorded is not None:  # a replay doses as the attempt was dosed
            kvp, ma = recorded.kvp, recorded.ma
        else:
            technique = self._metered_technique(kvp)
            kvp, ma = technique.kvp, technique.ma
        if mode == "single":
            return Exposure(kvp, ma, "single_shot", None, SINGLE_SHOT_S)
        fluoro = self.technique.fluoro_mode
        if fluoro == "continuous":
            return Exposure(kvp, ma, "continuous", None, 1.0 / cmd.CONTINUOUS_FRAME_RATE)
        return Exposure(kvp, ma, fluoro, pulse_rate_pps, 1.0 / pulse_rate_pps)

    def _starts_shot(self, mode: str) -> bool:
        """Whether the frame about to be exposed starts a shot (a single shot, or a pedal run's
        first pulse)."""
        return mode == "single" or self._pedal_shot is None

    def _recorded_exposure(self, mode: str) -> RecordedExposure | None:
        """The technique the replayed attempt recorded for the frame about to be exposed (None:
        not a replay, or the recording does not say)."""
        if self._recorded_technique is None:
            return None
        shot = int(self.counters["shots"]) + (1 if self._starts_shot(mode) else 0)
        return self._recorded_technique.for_frame(int(self.counters["frames"]) + 1, shot)

    def _metered_technique(self, kvp: float) -> Technique:
        """The dose-rate control's kVp and tube current for the current pose, starting from
        ``kvp`` (metered once per pose)."""
        joints, mode = self._joints, self.magnification_mode
        return self._dose_rate_control.technique(
            (joints.key(), mode, float(kvp)),
            lambda: carm.carm_geometry(
                joints,
                self.carm_model,
                views.home_isocenter_lps(self.patient),
                size_px=64,
                mode=mode,
            ),
            kvp,
            carm.get_model(self.carm_model).field_mm(mode),
        )

    def _frame_dose(
        self, frame: Frame | None, exposure: Exposure | None, geometry: ProjectionGeometry | None
    ) -> FrameDose | None:
        """The frame's dose record, computed with render.dose when the renderer gave none."""
        dose_record = frame.dose if frame is not None else None
        if dose_record is not None or exposure is None or geometry is None:
            return dose_record
        return dose.exposure_dose(  # the renderer's own entry point (round II field)
            exposure,
            geometry,
            model=carm.get_model(self.carm_model),
            collimation=self.chain_settings().collimation,
        )

    def _hand_in_beam(self, geometry: ProjectionGeometry | None, mode: str) -> bool:
        """Whether the instrument's handle (where the hand holds it) is inside the beam.

        Counted during live (pedal) fluoroscopy only: a single shot is taken hands-off, while
        live fluoroscopy is used to watch the instrument being moved, hand on the handle.
        """
        if geometry is None or self._tool is None or mode != "pulsed":
            return False
        spec = self.catalogue.get(self._tool.instrument)
        if spec is None:
            return False
        pose = RenderPose.placed(spec.name, self._tool.pose)
        points = pose.handle_points_lps(spec)
        pixels = geometry.project(points)
        depth = (points - geometry.source_lps_mm) @ geometry.detector_normal_lps
        inside = (
            (pixels[:, 0] >= 0)
            & (pixels[:, 0] <= geometry.width_px - 1)
            & (pixels[:, 1] >= 0)
            & (pixels[:, 1] <= geometry.height_px - 1)
            & (depth > 0)
            & (depth < geometry.sid_mm)
        )
        return bool(inside.any())

    def _render_instruments(self) -> list[RenderPose]:
        poses = [
            RenderPose.placed(i.name, i.pose) for i in self.log.implants if i.name in self.catalogue
        ]
        if self._tool is not None and self._tool.instrument in self.catalogue:
            poses.append(RenderPose.placed(self._tool.instrument, self._tool.pose))
        return poses

    def _first_instrument(self) -> str | None:
        for step in self.scenario.steps:
            if step.instrument:
                return step.instrument
        return None

    def _select(self, name: str) -> None:
        if name not in self.scenario.kit:
            raise SessionError(f"instrument {name!r} is not in the kit {list(self.scenario.kit)}")
        step = self.current_step
        if step is not None and step.instrument != name:
            later = [
                i
                for i, s in enumerate(self.scenario.steps)
                if i > self._step_index and s.instrument == name
            ]
            if later:
                self._go_to_step(later[0])
        if name != self._instrument:
            self._instrument = name
            self._tool = None

    def _require_tool(self) -> PoseSample:
        if self._tool is None:
            raise SessionError("no instrument is placed yet: give an instrument pose first")
        return self._tool

    def _set_pose(self, tip: np.ndarray, direction: np.ndarray, roll_deg: float = 0.0) -> None:
        direction = direction / np.linalg.norm(direction)
        step = self.current_step
        step_id = step.id if step is not None else self.scenario.steps[-1].id
        assert self._instrument is not None
        roll_deg = wrap_roll_deg(roll_deg)
        sample = PoseSample(
            self._t_s, self._instrument, tip.astype(np.float64), direction, step_id, roll_deg
        )
        self._tool = sample
        self.log.poses.append(sample)
        self._emit(
            "pose",
            instrument=sample.instrument,
            tip_mm=tip.tolist(),
            direction=direction.tolist(),
            roll_deg=roll_deg,
        )
        tissue = self.patient.label_name(int(self.patient.labels_at(tip[None, :])[0]))
        if tissue != self._tissue:
            self._tissue = tissue
            self._emit("tissue", label=tissue)
        spec = self.catalogue.get(sample.instrument)
        length = spec.length_mm if spec is not None else 250.0
        points = shaft_points(self.patient, tip, direction, length)
        depths = depths_along_shaft(self.patient, points, self._risks)
        for key, depth in depths.items():
            if key not in self._breaching:
                risk = self._risks[key[0]].risk
                self._emit(
                    "breach",
                    structure=risk.name,
                    label=key[1],
                    severity=risk.severity,
                    depth_mm=round(depth, 2),
                )
        self._breaching = set(depths)

    def _place_implant(self, name: str) -> None:
        if name not in self.scenario.kit:
            raise SessionError(f"implant {name!r} is not in the kit {list(self.scenario.kit)}")
        tool = self._require_tool()
        spec = self.catalogue.get(name)
        length = spec.length_mm if spec is not None else 40.0
        diameter = spec.diameter_mm if spec is not None else 7.0
        step = self.current_step
        step_id = step.id if step is not None else self.scenario.steps[-1].id
        record = ImplantRecord(
            name,
            step_id,
            self._t_s,
            tool.tip_lps_mm.copy(),
            tool.direction_lps.copy(),
            length,
            diameter,
            tool.roll_deg,
        )
        self.log.implants.append(record)
        self._emit("implant", name=name, step=step_id, tip_mm=tool.tip_lps_mm.tolist())
        self._tool = None
        self._breaching = set()
        if step is not None and step.implant == name:
            self._next_step()

    def _go_to_step(self, index: int) -> None:
        self._step_index = index
        step = self.current_step
        step_id = step.id if step is not None else "done"
        self.log.step_changes.append((self._t_s, step_id))
        if self.recorder is not None:
            self.recorder.sync()
        self._emit("step", step=step_id)

    def _next_step(self) -> None:
        if self._step_index < len(self.scenario.steps):
            self._go_to_step(self._step_index + 1)
            step = self.current_step
            if step is not None and step.instrument and step.instrument != self._instrument:
                self._instrument = step.instrument
                self._tool = None

    def _finish(self) -> Report:
        from fluorosim.scenarios.scoring.composite import score_attempt

        if self._pedal_on_t is not None:
            self._pedal(False)
        self.log.finished_t_s = self._t_s
        self.report = score_attempt(
            self.scenario, self.patient, self.log, self.catalogue, carm_model=self.carm_model
        )
        self._emit("score", score=self.report.score, passed=self.report.passed)
        if self.recorder is not None:
            self.recorder.finish(self.report)
        return self.report


def _exposure_json(exposure: Exposure | None) -> dict[str, Any] | None:
    """The technique of a shot for the recording (kVp, mA, mode, pulse rate, duration)."""
    if exposure is None:
        return None
    return {
        name: getattr(exposure, name, None)
        for name in ("kvp", "ma", "mode", "pulse_rate_pps", "duration_s")
    }
