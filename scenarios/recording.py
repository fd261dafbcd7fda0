"""Attempt files: JSON lines written while the attempt runs, read back, and replayed.

Format (``format = "fluorosim-attempt"``, ``version = 1``), one JSON object per line:

1. header: ``{"format", "version", "scenario", "scenario_toml" (the scenario file's text, so a
   replay does not drift when shipped files change), "patient" (generator parameters or
   ``{"ct": stored name or path}``), "patient_version" (the generator version, or the imported
   CT's volume digest: :func:`scenarios.patients.patient_version`), "mode", "started" (ISO 8601
   UTC from the injected clock), "rng_state" (the numpy bit-generator state before the first
   draw), "carm_model", "pulse_rate_pps"}``;
2. ``{"t_s", "type": "command", "command": {...}}`` — every command, in the scripted-attempt action
   syntax (instrument samples from a tracker become ``instrument`` commands);
3. ``{"t_s", "type": "event", "kind", "data": {...}}`` — every event (frame with its image id,
   shot with its joints and view, pose, tissue, breach, step, implant, refused, score);
4. last: ``{"t_s", "type": "report", "report": {...}}`` (the report JSON).

:class:`AttemptWriter` flushes to the operating system at least every second (injected clock) and
fsyncs on every step change and at the end, so a crash loses at most about a second.
:func:`read_attempt` tolerates a truncated last line (the attempt is reported "interrupted");
anything else that is wrong names the file and the line. :func:`replay_attempt` re-issues the
commands at their times on a fresh session with the recorded random state and returns the report;
:func:`check_patient` compares the recorded patient version with the patient it is replayed on
(a recording made before versions were recorded says so too), so a replay on another generator or
another CT is reported, not silently shown on a different patient.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fluorosim.models.instruments import InstrumentSpec
from fluorosim.models.patient import Patient
from fluorosim.scenarios import commands as cmd
from fluorosim.scenarios.loader import parse_scenario_text
from fluorosim.scenarios.patients import patient_version
from fluorosim.scenarios.protocols import Renderer
from fluorosim.scenarios.scoring.report import Report

if TYPE_CHECKING:
    from fluorosim.scenarios.session import Event, Session

FORMAT = "fluorosim-attempt"
VERSION = 1
FLUSH_INTERVAL_S = 1.0


class AttemptFileError(ValueError):
    """An attempt file that cannot be read (message names the file, line and problem)."""


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer | np.floating | np.bool_):
        return value.item()
    return str(value)


def _patient_parameters(patient: Patient) -> dict[str, Any]:
    params = dict(patient.parameters)
    source = patient.source
    if source.startswith("imported:"):
        name = params.get("patient_name") or params.get("imported_from")
        return {"ct": str(name or source.split(":", 1)[1])}
    from fluorosim.models.phantom import PatientParameters

    known = set(PatientParameters.__dataclass_fields__)
    return {k: v for k, v in params.items() if k in known}


class AttemptWriter:
    """Incremental writer of an attempt file (pass as ``recorder=`` to the Session)."""

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = time.monotonic,
        patient_parameters: dict[str, Any] | None = None,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        self.patient_parameters = patient_parameters
        self._file = self.path.open("w", encoding="utf-8")
        self._last_flush = clock()
        self.lines = 0
        self.syncs = 0

    def _write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, default=_json_default, separators=(",", ":")) + "\n")
        self.lines += 1
        now = self.clock()
        if now - self._last_flush >= self.flush_interval_s:
            self._file.flush()
            self._last_flush = now

    def tick(self) -> None:
        """Flush what is buffered when the last flush is a second old (Session.step calls it)."""
        if not self._file.closed and self.clock() - self._last_flush >= self.flush_interval_s:
            self._file.flush()
            self._last_flush = self.clock()

    def sync(self) -> None:
        """Flush and fsync (step changes, finish)."""
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._last_flush = self.clock()
        self.syncs += 1

    def start(self, session: Session) -> None:
        """Write the header (called by the Session when it is created)."""
        started = _dt.datetime.fromtimestamp(float(session.clock()), tz=_dt.UTC)
        params = (
            self.patient_parameters
            if self.patient_parameters is not None
            else _patient_parameters(session.patient)
        )
        self._write(
            {
                "format": FORMAT,
                "version": VERSION,
                "scenario": session.scenario.id,
                "scenario_toml": session.scenario.text,
                "patient": params,
                "patient_version": patient_version(session.patient),
                "mode": session.mode,
                "started": started.isoformat(),
                "rng_state": session.rng.bit_generator.state,
                "carm_model": session.carm_model,
                "pulse_rate_pps": session.pulse_rate_pps,
            }
        )
        self.sync()

    def command(self, t_s: float, command: cmd.Command) -> None:
        """Record a command."""
        self._write(
            {"t_s": round(t_s, 6), "type": "command", "command": cmd.command_to_json(command)}
        )

    def event(self, event: Event) -> None:
        """Record an event."""
        self._write(
            {"t_s": round(event.t_s, 6), "type": "event", "kind": event.kind, "data": event.data}
        )

    def finish(self, report: Report) -> None:
        """Write the report, fsync and close."""
        self._write({"t_s": None, "type": "report", "report": report.as_json()})
        self.sync()
        self.close()

    def close(self) -> None:
        """Flush and close (safe twice)."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()


@dataclass
class RecordedAttempt:
    """An attempt file read back."""

    path: Path
    header: dict[str, Any]
    actions: list[tuple[float, cmd.Command]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] | None = None
    interrupted: bool = False
    note: str = ""


def read_attempt(path: str | Path) -> RecordedAttempt:
    """Read an attempt file; a truncated last line or a missing report marks it interrupted."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AttemptFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    complete = text.endswith("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise AttemptFileError(f"{path.name}: empty file (expected a fluorosim attempt)")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        raise AttemptFileError(
            f"{path.name}: line 1: not a fluorosim attempt header (not JSON)"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise AttemptFileError(f"{path.name}: line 1: format: expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise AttemptFileError(
            f"{path.name}: line 1: version: expected {VERSION}, got {header.get('version')!r}"
        )
    attempt = RecordedAttempt(path, header)
    for number, line in enumerate(lines[1:], start=2):
        last = number == len(lines)
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or "type" not in obj:
                raise ValueError("expected an object with 'type'")
            kind = obj["type"]
            if kind == "command":
                t_s = float(obj["t_s"])
                attempt.actions.append(
                    (t_s, cmd.command_from_json(obj["command"], f"line {number}"))
                )
            elif kind == "event":
                attempt.events.append(obj)
            elif kind == "report":
                attempt.report = obj["report"]
            else:
                raise ValueError(f"unknown line type {kind!r}")
        except (ValueError, KeyError, TypeError, cmd.CommandError) as exc:
            if last and not complete:
                attempt.interrupted = True
                attempt.note = f"interrupted: the last line ({number}) was cut off"
                break
            raise AttemptFileError(f"{path.name}: line {number}: {exc}") from None
    if attempt.report is None and not attempt.interrupted:
        attempt.interrupted = True
        attempt.note = "interrupted: the attempt has no report (it was never finished)"
    return attempt


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A generator restored to a recorded bit-generator state."""
    name = state.get("bit_generator", "PCG64")
    bit_generator = getattr(np.random, name)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


@dataclass(frozen=True)
class PatientCheck:
    """Whether an attempt is replayed on the patient it was recorded on."""

    recorded_version: str | None  # None: recorded before fluorosim stored the version
    replay_version: str
    same: bool
    message: str  # "" when the same; else one plain line naming both versions

    def as_json(self) -> dict[str, Any]:
        """The ``patient_check`` field of ``fluorosim replay --json``."""
        return {
            "recorded_version": self.recorded_version,
            "replay_version": self.replay_version,
            "same_patient": self.same,
            "warning": self.message or None,
        }


def check_patient(header: dict[str, Any], patient: Patient) -> PatientCheck:
    """Compare the header's ``patient_version`` with the patient the attempt is replayed on."""
    recorded = header.get("patient_version")
    current = patient_version(patient)
    if recorded is not None and str(recorded) == current:
        return PatientCheck(str(recorded), current, True, "")
    if recorded is None:
        message = (
            "warning: this attempt was recorded without a patient version (an older fluorosim); "
            f"it is replayed on patient version {current}, which may not be the patient the "
            "trainee saw"
        )
    else:
        message = (
            f"warning: this attempt was recorded on patient version {recorded} but is replayed "
            f"on {current}: the patient differs from the one the trainee saw, so images, "
            "breaches and scores may differ"
        )
    return PatientCheck(None if recorded is None else str(recorded), current, False, message)


def replay_attempt(
    path: str | Path,
    patient: Patient | None = None,
    renderer: Renderer | None = None,
    renderer_factory: Callable[[Patient, str], Renderer | None] | None = None,
    catalogue: dict[str, InstrumentSpec] | None = None,
) -> Report:
    """Re-run a recorded attempt headlessly and return its report.

    ``patient``/``renderer`` may be given (tests, the GUI that already has them); otherwise the
    patient is rebuilt from the header and ``renderer_factory(patient, carm_model)`` (default:
    render.renderer.FluoroRenderer) renders the frames again. An interrupted attempt is scored as
    it stood at its last recorded command. :func:`replay_attempt_checked` also says whether the
    patient is the recorded one.
    """
    return replay_attempt_checked(path, patient, renderer, renderer_factory, catalogue)[0]


def replay_attempt_checked(
    path: str | Path,
    patient: Patient | None = None,
    renderer: Renderer | None = None,
    renderer_factory: Callable[[Patient, str], Renderer | None] | None = None,
    catalogue: dict[str, InstrumentSpec] | None = None,
) -> tuple[Report, PatientCheck]:
    """:func:`replay_attempt` and the :class:`PatientCheck` of the patient it ran on."""
    from fluorosim.scenarios.patients import patient_for
    from fluorosim.scenarios.recorded_technique import RecordedTechnique
    from fluorosim.scenarios.session import Session

    attempt = read_attempt(path)
    header = attempt.header
    scenario = parse_scenario_text(
        str(header.get("scenario_toml", "")), f"{Path(path).name} (embedded scenario)"
    )
    if patient is None:
        patient = patient_for(scenario.patient, dict(header.get("patient") or {}))
    carm_model = str(header.get("carm_model", "ii9"))
    if renderer is None:
        factory = renderer_factory or default_renderer
        renderer = factory(patient, carm_model)
    session = Session(
        scenario,
        patient,
        renderer,
        None,
        lambda: 0.0,
        rng_from_state(header["rng_state"]),
        mode=str(header.get("mode", "learning")),
        catalogue=catalogue,
        carm_model=carm_model,
        pulse_rate_pps=float(header.get("pulse_rate_pps", 8.0)),
        recorded_technique=RecordedTechnique.from_events(attempt.events),
    )
    from fluorosim.scenarios.scripted import run_actions

    actions = [(t, c) for t, c in attempt.actions]
    report = run_actions(session, actions)
    if attempt.interrupted:
        report.findings.append(f"This attempt was {attempt.note}; scored as it stood.")
    return report, check_patient(header, patient)


def default_renderer(patient: Patient, carm_model: str) -> Renderer:
    """The product renderer for a patient (render.renderer.FluoroRenderer)."""
    from fluorosim.render.renderer import FluoroRenderer

    return FluoroRenderer(patient, model=carm_model)
