"""Typed scenario model: what a procedure scenario file (TOML) says once it has been validated.

A scenario names its patient, side and level, the instrument kit, the steps, the targets and
corridors (by landmark and label names, see :mod:`scenarios.vocabulary`), risk structures with
severity, required confirming views, the definition of every scored metric (tolerance, credit
curve, weight, critical or not: :class:`scenarios.scoring.credit.MetricDef`) and the pass mark.
Files are read by :func:`scenarios.loader.load_scenario` (schema: :mod:`scenarios.schema`); this
module only holds the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluorosim.render import views
from fluorosim.scenarios.scoring.credit import MetricDef

#: Procedures the scoring knows; each selects its procedure-specific checks.
PROCEDURES = ("sij_lateral", "sij_posterior", "teld", "ield", "view_drill")
#: Named C-arm views: the renderer's list, so a view it can compute is a view a scenario may name.
VIEW_NAMES = views.VIEWS
SEVERITIES = ("major", "minor")
STEP_KINDS = ("trajectory", "view")
#: Frames a point's offsets may be given in → the landmarks that define the frame's axes:
#: ``world`` the patient axes (LPS); ``sacrum`` cranial = S2 → S1 body centre (the sacral axis),
#: anterior = the front (−P) made perpendicular to it in the mid-sagittal plane, lateral = the
#: remaining axis toward the scenario's side.
OFFSET_FRAMES: dict[str, tuple[str, ...]] = {
    "world": (),
    "sacrum": ("S1_body_center", "S2_body_center"),
}


@dataclass(frozen=True)
class PointSpec:
    """A point defined from landmarks: one landmark, a fraction between two, a mean, a surface,
    or ``through``: on the line from the step's entry through a landmark, ``past_mm`` beyond it
    (a needle through the incentre of Kambin's triangle and on into the disc).

    ``lateral_mm`` moves away from the midline toward the scenario's side, ``anterior_mm`` toward
    the front, ``cranial_mm`` toward the head. With ``frame = "world"`` those are the patient
    axes (−P, +S); with ``frame = "sacrum"`` the sacrum's own axes (:data:`OFFSET_FRAMES`,
    :func:`scenarios.points.offset_axes`), so an offset follows a tilted, kyphotic sacrum. Names
    may contain ``{side}``/``{contra}``.
    """

    landmark: str | None = None
    between: tuple[str, str] | None = None
    fraction: float = 0.5
    mean: tuple[str, ...] = ()
    surface: str | None = None  # an (N, 3) joint-surface landmark, e.g. "sij_surface_{side}"
    through: str | None = None  # the step's corridor through this landmark, ``past_mm`` beyond it
    past_mm: float = 0.0
    dorsal_to: str | None = None  # then moved straight back until out of this label (the dura)…
    clearance_mm: float = 0.0  # …and this much further
    height_fraction: float = 0.5  # surface form: 0 = caudal end of the joint, 1 = cranial end
    from_anterior_mm: float = 0.0  # surface form: distance behind the anterior joint margin
    lateral_mm: float = 0.0
    anterior_mm: float = 0.0
    cranial_mm: float = 0.0
    frame: str = "world"  # the axes of the three offsets: one of OFFSET_FRAMES

    def names(self) -> tuple[str, ...]:
        """Every landmark name the point depends on (the offset frame's landmarks included)."""
        if self.landmark is not None:
            base: tuple[str, ...] = (self.landmark,)
        elif self.between is not None:
            base = self.between
        elif self.surface is not None:
            base = (self.surface,)
        elif self.through is not None:
            base = (self.through,)
        else:
            base = self.mean
        extra = tuple(n for n in OFFSET_FRAMES[self.frame] if n not in base)
        return base + extra


@dataclass(frozen=True)
class RiskStructure:
    """A labelled structure that must not be entered; ``label`` may hold ``*`` and ``{side}``.

    ``kind = "exit"``: the risk is leaving the bone ``label`` through its cortex heading
    ``toward`` a direction (anterior sacral cortex, the pelvis's inner table) into anything but
    the ``allowed`` labels; the depth is how far the shaft went on beyond that cortex.
    """

    label: str
    severity: str  # "major" (vessel, root, thecal sac, bowel) | "minor" (wrong bone, cortex)
    name: str  # plain words for the report: "S1 nerve root"
    kind: str = "enter"
    toward: str | None = None
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One step of a procedure: a trajectory for an instrument, or a C-arm view to obtain."""

    id: str
    title: str
    kind: str  # "trajectory" | "view"
    instrument: str | None = None
    entry: PointSpec | None = None  # a point on the planned corridor before the target
    target: PointSpec | None = None
    confirm_views: tuple[str, ...] = ()  # views that must show the final tip before moving on
    end_labels: tuple[str, ...] = ()  # the intended structure: labels the tip must finish in
    end_name: str | None = None  # that structure in plain words ("L5-S1 interlaminar window")
    must_cross: tuple[str, ...] = ()  # labels the shaft must cross (e.g. the SI joint)
    implant: str | None = None  # implant placed over this trajectory at the end of the step
    view: str | None = None  # for "view" steps: the named view to obtain
    view_level: str | None = None
    #: this step's metric definitions (the scenario's, with the step's own overrides)
    metrics: dict[str, MetricDef] = field(default_factory=dict)

    def metric(self, name: str) -> MetricDef:
        """The definition of one of this step's metrics."""
        return self.metrics[name]

    @property
    def tolerance_mm(self) -> float:
        """Tip-to-target distance with full credit."""
        return self.metrics["tip_to_target_mm"].tolerance

    @property
    def angle_tolerance_deg(self) -> float:
        """Trajectory angle error (axial, sagittal) with full credit."""
        return self.metrics["trajectory_axial_deg"].tolerance

    @property
    def max_shots(self) -> int | None:
        """Shots to obtain a view with full credit (view steps)."""
        metric = self.metrics.get("shots_to_view")
        return int(metric.allowed()) if metric is not None else None


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
    pass_mark_pct: float
    allow_named_views: bool
    views: tuple[str, ...]  # named views used to classify each shot
    metrics: dict[str, MetricDef]  # every scored metric's definition (scenario-wide)
    path: Path | None = None
    text: str = ""  # the file's TOML text (embedded in recordings so replays do not drift)

    def metric(self, name: str) -> MetricDef:
        """The scenario-wide definition of a metric (KeyError naming the known ones)."""
        if name not in self.metrics:
            raise KeyError(f"scenario {self.id} defines no metric '{name}'")
        return self.metrics[name]

    def step(self, step_id: str) -> Step:
        """A step by id (KeyError naming the known steps)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(
            f"scenario {self.id} has no step '{step_id}'; steps: {[s.id for s in self.steps]}"
        )
