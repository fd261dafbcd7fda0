"""What the instructor's review shows about one attempt, computed without a window: its replay
(every image re-rendered from the attempt file, with cumulative dose), its events over time, the
instrument tip path, and the texts of the attempt list, the attempt detail and the CUSUM verdict.

The review window (``app.review_window``) only puts these into widgets; tests and any headless tool
reach the same functions with no Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fluorosim.scenarios.records.cusum import CusumParameters
from fluorosim.scenarios.records.database import Actor, AttemptRow, SignedInInstructor
from fluorosim.scenarios.records.learning import LearningCurve

#: (t_s, image, info with "shot", "view" and the cumulative dose) of one re-rendered frame.
ReplayFrame = tuple[float, np.ndarray, dict[str, Any]]

#: Surfaces for the 3D view: style name → (mesh, style).
Surfaces = dict[str, tuple[Any, str]]

#: Event kinds listed in the "events over time" table.
TIMELINE_KINDS = ("shot", "breach", "step", "tissue", "implant", "refused", "score")

#: Columns of the attempts table: score and result first, so they are never off-screen.
ATTEMPT_COLUMNS = ("#", "score", "result", "scenario", "mode", "status", "finished")

#: Columns of the cohort comparison table.
COHORT_COLUMNS = ("trainee", "attempts", "pass rate", "median", "best", "to first pass")

#: Dose fields a frame carries, in the order they are summed.
DOSE_FIELDS = ("beam_on_s", "air_kerma_mgy", "kap_gycm2")


class FrameKeeper:
    """Wraps a renderer and keeps every frame image it renders, and that frame's dose, in order."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer
        self.images: list[np.ndarray] = []
        self.doses: list[tuple[float, ...]] = []  # beam_on_s, air_kerma_mgy, kap_gycm2

    def render_frame(self, *args: Any, **kwargs: Any) -> Any:
        frame = self.renderer.render_frame(*args, **kwargs)
        self.images.append(np.asarray(frame.image))
        dose = getattr(frame, "dose", None)
        self.doses.append(tuple(float(getattr(dose, name, 0.0) or 0.0) for name in DOSE_FIELDS))
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self.renderer, name)


@dataclass
class ReplayResult:
    """What the worker thread hands back: the re-rendered frames, the patient surfaces, a problem."""

    frames: list[ReplayFrame] = field(default_factory=list)
    surfaces: Surfaces = field(default_factory=dict)
    problem: str = ""


def replay_frames(
    attempt_file: str | Path,
    patient: Any = None,
    renderer_factory: Callable[[Any, str], Any] | None = None,
    surfaces_of: Callable[[Any], Surfaces] | None = None,
) -> ReplayResult:
    """Replay an attempt headlessly (same commands, same random state) and pair each re-rendered
    image with its recorded frame event (time, shot number, view, dose so far).

    ``patient``/``renderer_factory`` default to what the attempt header names; ``surfaces_of``
    gives the patient's surfaces for a 3D view (none when not given).
    """
    from fluorosim.scenarios.recording import default_renderer, read_attempt, replay_attempt

    keepers: list[FrameKeeper] = []
    patients: list[Any] = []

    def factory(replay_patient: Any, carm_model: str) -> FrameKeeper:
        patients.append(replay_patient)
        keepers.append(
            FrameKeeper((renderer_factory or default_renderer)(replay_patient, carm_model))
        )
        return keepers[-1]

    replay_attempt(attempt_file, patient=patient, renderer_factory=factory)
    recorded = read_attempt(attempt_file)
    frame_events = [e for e in recorded.events if e.get("kind") == "frame"]
    shot_views = {
        e["data"].get("index"): e["data"].get("view")
        for e in recorded.events
        if e.get("kind") == "shot"
    }
    images = keepers[0].images if keepers else []
    doses = np.cumsum(keepers[0].doses, axis=0) if keepers and images else np.zeros((0, 3))
    result = ReplayResult()
    for event, image, dose in zip(frame_events, images, doses, strict=False):
        shot = event["data"].get("shot")
        info: dict[str, Any] = {"shot": shot, "view": shot_views.get(shot)}
        info.update(zip(DOSE_FIELDS, (float(d) for d in dose), strict=True))  # cumulative
        result.frames.append((float(event.get("t_s", 0.0)), image, info))
    if len(images) != len(frame_events):
        result.problem = (
            f"the replay rendered {len(images)} images but the attempt file records "
            f"{len(frame_events)} frames"
        )
    if surfaces_of is not None and patients:
        result.surfaces = surfaces_of(patients[0])
    return result


def describe_event(kind: str, data: dict[str, Any]) -> str:
    """One line for the events-over-time table."""
    if kind == "shot":
        return (
            f"shot {data.get('index')} ({data.get('mode', '')}, {data.get('view') or 'free pose'})"
        )
    if kind == "breach":
        return (
            f"BREACH {data.get('structure')} ({data.get('label')}), "
            f"{data.get('depth_mm')} mm, {data.get('severity', '')}"
        )
    if kind == "step":
        return f"step {data.get('step')}"
    if kind == "tissue":
        return f"tip in {data.get('label')}"
    if kind == "implant":
        return f"implant {data.get('name')} placed ({data.get('step')})"
    if kind == "refused":
        return f"refused {data.get('command')}: {data.get('reason')}"
    if kind == "score":
        score = data.get("score")
        score_text = f"{score:.1f}" if isinstance(score, int | float) else str(score)
        return f"score {score_text} ({'passed' if data.get('passed') else 'not passed'})"
    return str(data)


def attempt_timeline(events: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """(t_s, kind, description) of the events an instructor follows: shots, breaches, steps…"""
    return [
        (float(e.get("t_s") or 0.0), str(e["kind"]), describe_event(e["kind"], e.get("data", {})))
        for e in events
        if e.get("kind") in TIMELINE_KINDS
    ]


def instrument_path(events: list[dict[str, Any]]) -> np.ndarray:
    """(N, 3) LPS mm tip positions of the recorded "pose" events, in order."""
    tips = [
        e["data"]["tip_mm"] for e in events if e.get("kind") == "pose" and "tip_mm" in e["data"]
    ]
    return np.asarray(tips, dtype=float).reshape(-1, 3)


def frame_at(frame_times_s: Iterable[float], t_s: float) -> int:
    """Index of the first frame taken at or after ``t_s`` (the last frame when none is)."""
    times = list(frame_times_s)
    return next((i for i, frame_t in enumerate(times) if frame_t >= t_s - 1e-6), len(times) - 1)


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def attempt_cells(attempt: AttemptRow) -> list[str]:
    """The cells of one row of the attempts table (see :data:`ATTEMPT_COLUMNS`)."""
    return [
        str(attempt.id),
        _score(attempt.score),
        {True: "pass", False: "fail", None: "—"}[attempt.passed]
        + (" ✍" if attempt.signoffs else ""),
        attempt.scenario_id,
        attempt.mode,
        attempt.status,
        (attempt.finished_utc or "")[5:16].replace("T", " "),
    ]


def cohort_cells(summary: list[dict[str, Any]]) -> list[list[str]]:
    """Rows of the cohort comparison table (see :data:`COHORT_COLUMNS`) from ``cohort_summary``."""
    return [
        [
            item["trainee_id"],
            str(item["attempts"]),
            f"{100 * item['pass_rate']:.0f} %",
            _score(item["median_score"]),
            _score(item["best_score"]),
            str(item["attempts_to_first_pass"] or "—"),
        ]
        for item in summary
    ]


def attempt_detail_html(attempt: AttemptRow) -> str:
    """The attempt's heading, findings, metrics and sign-offs (superseded ones struck through)."""
    result = {True: "passed", False: "not passed", None: "no pass/fail"}[attempt.passed]
    lines = [
        f"<h3>Attempt {attempt.id}: {attempt.scenario_id} ({attempt.mode})</h3>",
        f"<p>Trainee {attempt.trainee_id}; started {attempt.started_utc}; "
        f"status {attempt.status}; score {_score(attempt.score)}; {result}.</p><ul>",
    ]
    lines += [f"<li>{finding}</li>" for finding in attempt.findings]
    lines.append("</ul><h4>Metrics</h4><ul>")
    lines += [
        f"<li>{name}: {m['value']} {m['unit'] or ''} (reference {m['reference']})"
        f"{'' if m['passed'] is None else (' ✔' if m['passed'] else ' ✘')}</li>"
        for name, m in attempt.metrics.items()
    ]
    lines.append("</ul><h4>Sign-offs</h4><ul>")
    lines += [
        f"<li>{'<s>' if s.get('superseded_by') else ''}{s['decision'].replace('_', ' ')} by "
        f"{s.get('instructor_name') or s['instructor_id']} ({s['instructor_id']}) at {s['t_utc']}: "
        f"{s['comment']}{'</s> (superseded)' if s.get('superseded_by') else ''}"
        f"{'' if s.get('signed', True) else ' (unsigned)'}</li>"
        for s in attempt.signoffs
    ] or ["<li>none yet</li>"]
    lines.append("</ul>")
    return "".join(lines)


def cusum_text(programme: str, params: CusumParameters, curve: LearningCurve) -> str:
    """The CUSUM line under the charts: the programme's parameters, limits and verdict."""
    chart = curve.cusum
    if chart is None:
        return f"CUSUM ({programme}): no chart."
    verdict = (
        f"unacceptable performance signalled at attempt {chart.unacceptable_at}"
        if chart.unacceptable_at
        else f"competence signalled at attempt {chart.competent_at}"
        if chart.competent_at
        else "no signal yet"
    )
    return (
        f"CUSUM ({programme}): p0 = {params.p0:g}, p1 = {params.p1:g}, "
        f"α = {params.alpha:g}, β = {params.beta:g} → s = {params.s:.3f}, "
        f"h0 = {chart.h0:+.2f}, h1 = {chart.h1:+.2f}; {curve.attempts} finished attempts, "
        f"{verdict}."
    )


def signoff_refusal(
    instructor: Actor, attempt_id: int, attempt: AttemptRow | None, decision: str, comment: str
) -> str:
    """Why ``instructor`` may not sign ``decision`` on the attempt ("" when they may, subject to
    :func:`needs_confirmation`): only an instructor signed in with their passphrase signs, and
    approving a failed attempt needs a comment saying why."""
    if not isinstance(instructor, SignedInInstructor):
        return (
            f"Not signed: only an instructor signed in with their passphrase can sign off "
            f"({instructor.id} is a {instructor.role})."
        )
    if needs_confirmation(attempt, decision) and not comment:
        return f"Not signed: attempt {attempt_id} failed; approving it needs a comment saying why."
    return ""


def needs_confirmation(attempt: AttemptRow | None, decision: str) -> bool:
    """Approving a failed attempt needs the instructor's explicit confirmation."""
    return decision == "approved" and attempt is not None and attempt.passed is False


def superseded_signoff(attempt: AttemptRow | None, decision: str) -> dict[str, Any] | None:
    """The sign-off a new ``decision`` supersedes: the attempt's current decision (a comment
    supersedes nothing)."""
    current = attempt.current_decision() if attempt is not None else None
    return current if decision != "comment" else None


def attempt_events(attempt: AttemptRow) -> tuple[list[dict[str, Any]] | None, str]:
    """The events of the attempt's file, or None and the reason it cannot be replayed."""
    from fluorosim.scenarios.recording import read_attempt

    if not attempt.attempt_file:
        return None, f"Attempt {attempt.id} has no attempt file to replay."
    try:
        return read_attempt(attempt.attempt_file).events, ""
    except ValueError as error:  # AttemptFileError names the file and line
        return None, f"Cannot replay attempt {attempt.id}: {error}"
