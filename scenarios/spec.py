"""Typed scenario model: what a procedure scenario file (TOML) says once it has been validated.

A scenario names its patient, side and level, the instrument kit, the steps, the targets and
corridors (by landmark and label names, see :mod:`scenarios.vocabulary`), tolerances, risk
structures with severity, required confirming views, dose reference levels and the pass criteria.
Files are read by :func:`scenarios.loader.load_scenario`; this module only holds the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from render import views

#: Procedures the scoring knows; each selects its procedure-specific checks.
PROCEDURES = ("sij_lateral", "sij_posterior", "teld", "ield", "view_drill")
#: Named C-arm views: the renderer's list, so a view it can compute is a view a scenario may name.
VIEW_NAMES = views.VIEWS
SEVERITIES = ("major", "minor")
STEP_KINDS = ("trajectory", "view")


@dataclass(frozen=True)
class PointSpec:
    """A point defined from landmarks: one landmark, a fraction between two, a mean, or a surface.

    ``lateral_mm`` moves away from the midline toward the scenario's side, ``anterior_mm`` toward
    the front (−P), ``cranial_mm`` toward the head (+S). Names may contain ``{side}``/``{contra}``.
    """

    landmark: str | None = None
    between: tuple[str, str] | None = None
    fraction: float = 0.5
    mean: tuple[str, ...] = ()
    surface: str | None = None  # an (N, 3) joint-surface landmark, e.g. "sij_surface_{side}"
    height_fraction: float = 0.5  # surface form: 0 = caudal end of the joint, 1 = cranial end
    from_anterior_mm: float = 0.0  # surface form: distance behind the anterior joint margin
    lateral_mm: float = 0.0
    anterior_mm: float = 0.0
    cranial_mm: float = 0.0

    def names(self) -> tuple[str, ...]:
        """Every landmark name the point depends on."""
        if self.landmark is not None:
            return (self.landmark,)
        if self.between is not None:
            return self.between
        if self.surface is not None:
            return (self.surface,)
        return self.mean


@dataclass(frozen=True)
class RiskStructure:
    """A labelled structure that must not be entered; ``label`` may hold ``*`` and ``{side}``."""

    label: str
    severity: str  # "major" (vessel, root, thecal sac, bowel) | "minor" (wrong bone, cortex)
    name: str  # plain words for the report: "S1 nerve root"


@dataclass(frozen=True)
class Step:
    """One step of a procedure: a trajectory for an instrument, or a C-arm view to obtain."""

    id: str
    title: str
    kind: str  # "trajectory" | "view"
    instrument: str | None = None
    entry: PointSpec | None = None  # a point on the planned corridor before the target
    target: PointSpec | None = None
    tolerance_mm: float = 5.0  # tip-to-target
    angle_tolerance_deg: float = 10.0  # axial and sagittal trajectory errors
    confirm_views: tuple[str, ...] = ()  # views that must show the final tip before moving on
    end_labels: tuple[str, ...] = ()  # the safe zone: labels the tip may finish in
    must_cross: tuple[str, ...] = ()  # labels the shaft must cross (e.g. the SI joint)
    implant: str | None = None  # implant placed over this trajectory at the end of the step
    view: str | None = None  # for "view" steps: the named view to obtain
    view_level: str | None = None
    view_tolerance_deg: float = 3.0
    view_tolerance_mm: float = 10.0
    max_shots: int | None = None


@dataclass(frozen=True)
class DoseReference:
    """Dose reference levels for the whole attempt (carm.md, procedures.md)."""

    shots: int
    beam_on_s: float
    kap_gycm2: float
    air_kerma_mgy: float


@dataclass(frozen=True)
class PatientSpec:
    """Which patient: generator parameters (with optional variant) or an imported CT."""

    parameters: dict[str, Any] = field(default_factory=dict)
    ct: str | None = None  # path of an imported CT with label map and landmarks


@dataclass(frozen=True)
class Scenario:
    """A validated procedure scenario."""

    id: str
    version: int
    title: str
    description: str
    procedure: str
    side: str | None
    level: str | None
    patient: PatientSpec
    kit: tuple[str, ...]
    steps: tuple[Step, ...]
    risks: tuple[RiskStructure, ...]
    dose: DoseReference
    pass_mark_pct: float
    allow_named_views: bool
    views: tuple[str, ...]  # named views used to classify each shot
    checks: dict[str, float]
    time_limit_s: float = 1800.0
    path: Path | None = None
    text: str = ""  # the file's TOML text (embedded in recordings so replays do not drift)

    def step(self, step_id: str) -> Step:
        """A step by id (KeyError naming the known steps)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(
            f"scenario {self.id} has no step '{step_id}'; steps: {[s.id for s in self.steps]}"
        )
