"""Plain-words findings a trainee can act on, e.g.::

    Implant 2 (Pin and implant 2 in S1 (caudal)): the guide pin entered the S1 nerve root in its
    foramen (root S1 left) by 3.1 mm at 04:12; visible on the outlet view at shot 14.

Breaches come first (most serious first), then every failed metric's sentence, then notes.
"""

from __future__ import annotations

from fluorosim.scenarios.attempt import AttemptLog
from fluorosim.scenarios.scoring.breaches import Breach
from fluorosim.scenarios.scoring.report import Metric
from fluorosim.scenarios.scoring.views import ShotView
from fluorosim.scenarios.spec import Scenario
from fluorosim.scenarios.vocabulary import plain_label


def clock(t_s: float) -> str:
    """mm:ss of a time in seconds."""
    seconds = int(round(t_s))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def breach_sentence(scenario: Scenario, breach: Breach, shot_views: dict[int, ShotView]) -> str:
    """One breach in plain words."""
    steps = [s.id for s in scenario.steps]
    number = steps.index(breach.step_id) + 1 if breach.step_id in steps else 0
    title = scenario.steps[number - 1].title if number else breach.step_id
    what = breach.instrument.replace("_", " ")
    label = plain_label(breach.label)
    if breach.kind == "exit":
        text = (
            f"Step {number} ({title}): the {what} went through the {breach.structure} into the "
            f"{label}, {breach.depth_mm:.1f} mm beyond it, at {clock(breach.t_s)}"
        )
    else:
        core = label.split(" (")[0]
        named = breach.structure if core in breach.structure else f"{breach.structure} ({label})"
        text = (
            f"Step {number} ({title}): the {what} entered the {named} "
            f"by {breach.depth_mm:.1f} mm at {clock(breach.t_s)}"
        )
    if breach.shot is not None:
        view = shot_views.get(breach.shot)
        name = (view.view if view and view.view else None) or breach.shot_view
        where = f"on the {name.replace('_', ' ')} view" if name else "on an unnamed view"
        text += f"; visible {where} at shot {breach.shot}."
    else:
        text += "; no shot was taken while it lasted — it was never seen."
    return text


def findings(
    scenario: Scenario,
    log: AttemptLog,
    metrics: list[Metric],
    breaches: list[Breach],
    shot_views: dict[int, ShotView],
) -> list[str]:
    """The report's findings list."""
    lines: list[str] = []
    ordered = sorted(breaches, key=lambda b: (b.severity != "major", b.t_s))
    lines.extend(breach_sentence(scenario, b, shot_views) for b in ordered)
    critical = [m for m in metrics if m.passed is False and m.critical and m.finding]
    other = [m for m in metrics if m.passed is False and not m.critical and m.finding]
    lines.extend(m.finding for m in critical if m.finding)
    lines.extend(m.finding for m in other if m.finding)
    for t_s, what in log.refused:
        lines.append(f"At {clock(t_s)} the simulator refused: {what}.")
    if not lines:
        lines.append("No errors found: every metric is within its reference.")
    return lines


def summary(
    scenario: Scenario,
    score: float,
    passed: bool,
    critical: list[Metric],
    weighted_mean: float | None = None,
) -> str:
    """One line: score, pass mark and, if failed, why."""
    verdict = "PASSED" if passed else "FAILED"
    text = f"{scenario.title}: {score:.0f} % (pass mark {scenario.pass_mark_pct:g} %) — {verdict}"
    if critical:
        names = (m.name.replace(".", " ").replace("_", " ") for m in critical)
        text += "; critical: " + ", ".join(dict.fromkeys(names))
        if weighted_mean is not None and weighted_mean > score + 0.5:
            text += f" (scaled down from {weighted_mean:.0f} %)"
    elif not passed:
        text += "; below the pass mark"
    return text
