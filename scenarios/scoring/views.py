"""View quality: how far each shot's C-arm pose was from the ideal named view for this patient.

Each shot is compared with every view the scenario uses (``views`` plus the drill's view) through
``render.views.pose_error`` (central-ray angle in degrees and target-to-central-ray distance in mm);
the shot *is* the view it is closest to when that angle is within :data:`RECOGNISED_DEG`, otherwise
it is an unnamed view. A confirming view counts when it is recognised.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluorosim.models.patient import Patient
from fluorosim.render import views as render_views
from fluorosim.render.carm import CArmJoints
from fluorosim.scenarios.attempt import ShotRecord
from fluorosim.scenarios.spec import Scenario, Step

#: A shot within this central-ray angle of a named view is taken to be that view (deg).
RECOGNISED_DEG = 5.0
#: Reference for the mean view error of the shots of a procedure (deg).
VIEW_QUALITY_REFERENCE_DEG = 5.0

_LEVEL_VIEWS = ("ap", "lateral", "oblique")


def view_level(scenario: Scenario, step: Step | None, view: str) -> str | None:
    """The level a named view is taken at for this scenario/step (None: the view has none)."""
    if step is not None and step.view_level and step.view == view:
        return step.view_level
    level = scenario.level
    if view == "ferguson":
        return level if level in render_views.DISC_LEVELS else "L5_S1"
    if view in _LEVEL_VIEWS:
        if level in render_views.LEVELS or level in render_views.DISC_LEVELS:
            return level
        return "L5_S1"
    return None


def view_side(scenario: Scenario, view: str) -> str | None:
    """The side a named view needs (oblique, contralateral oblique)."""
    if view in ("oblique", "contralateral_oblique"):
        return scenario.side or "left"
    return None


@dataclass(frozen=True)
class ShotView:
    """The view a shot was recognised as, and its errors against that view."""

    shot: int
    view: str | None  # None: not recognised as any named view
    angle_deg: float
    position_mm: float
    nearest: str


def pose_error(
    patient: Patient, scenario: Scenario, step: Step | None, joints: dict[str, float], view: str
) -> tuple[float, float]:
    """(angle_deg, position_mm) of joints against a named view of this scenario."""
    error = render_views.pose_error(
        patient,
        CArmJoints.from_dict(joints),
        view,
        side=view_side(scenario, view),
        level=view_level(scenario, step, view),
    )
    return float(error.angle_deg), float(error.position_mm)


def candidate_views(scenario: Scenario) -> list[str]:
    """Named views a shot of this scenario is compared with."""
    names = list(scenario.views)
    for step in scenario.steps:
        if step.view and step.view not in names:
            names.append(step.view)
        for view in step.confirm_views:
            if view not in names:
                names.append(view)
    return names


def classify_shots(patient: Patient, scenario: Scenario, shots: list[ShotRecord]) -> list[ShotView]:
    """Each shot's recognised view and errors (the nearest candidate view by angle)."""
    steps = {s.id: s for s in scenario.steps}
    candidates = candidate_views(scenario)
    result = []
    for shot in shots:
        step = steps.get(shot.step_id)
        errors = {
            view: pose_error(patient, scenario, step, shot.joints, view) for view in candidates
        }
        nearest = min(errors, key=lambda v: (errors[v][0], v != shot.view))
        angle, position = errors[nearest]
        recognised = nearest if angle <= RECOGNISED_DEG else None
        result.append(ShotView(shot.index, recognised, angle, position, nearest))
    return result
