"""Breaches: which risk structures the instrument shaft is in, how deep, when, and on which shot.

Detection is geometric against the LABEL volume: the shaft is sampled tip → skin entry every
0.5 mm (:func:`scenarios.scoring.geometry.shaft_points`) and each risk structure's depth is the
path length of the shaft inside that structure (for a tip that stopped inside it, how far the tip
went past its boundary; for a shaft that passed through, the chord). An episode starts at the first
pose in the structure and ends when the shaft leaves it; its depth is the deepest pose. It was
*visible* on the first shot taken while the episode lasted whose field contained the tip.

An *exit* risk (``kind = "exit"``: the anterior sacral cortex, the pelvis's inner table) is a
cortex rather than a structure: the shaft, followed from the skin toward the tip, leaves the bone
``label`` through a cortex facing ``toward`` the stated direction (its outward normal, estimated
from the bone around the exit point, within 60° of it: :data:`EXIT_COSINE`) into anything but the
bone itself or the ``allowed`` labels (the SI joint and the sacrum beyond the ilium); its depth is
how far the shaft runs on outside the bone, and the label reported is the tissue it went into.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.patient import Patient
from fluorosim.render import carm, views
from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.attempt import AttemptLog, ShotRecord
from fluorosim.scenarios.scoring.geometry import SHAFT_STEP_MM, shaft_points
from fluorosim.scenarios.spec import RiskStructure, Scenario

#: Depth below which a contact is not counted (one voxel of a 1 mm phantom, half a sample).
MIN_BREACH_MM = 1.0
#: An exit counts when the cortex it goes through faces the risk's way at least this much (cos 60°).
EXIT_COSINE = 0.5
#: LPS unit vectors of the exit directions (medial/lateral need the side: see _toward_lps).
_DIRECTIONS_LPS = {
    "anterior": np.array([0.0, -1.0, 0.0]),
    "posterior": np.array([0.0, 1.0, 0.0]),
    "cranial": np.array([0.0, 0.0, 1.0]),
    "caudal": np.array([0.0, 0.0, -1.0]),
}


@dataclass(frozen=True)
class ResolvedRisk:
    """A risk structure of the scenario with the label values it covers on this patient."""

    risk: RiskStructure
    label_names: tuple[str, ...]
    label_values: tuple[int, ...]
    allowed_values: tuple[int, ...] = ()  # exit risks: labels past the cortex that are fine
    toward_lps: NDArray[np.float64] | None = None  # exit risks: the direction that counts


def _toward_lps(toward: str | None, side: str | None) -> NDArray[np.float64] | None:
    if toward is None:
        return None
    if toward in ("medial", "lateral"):
        left = np.array([1.0, 0.0, 0.0])
        lateral = left if (side or "left") == "left" else -left
        return -lateral if toward == "medial" else lateral
    return _DIRECTIONS_LPS[toward]


@dataclass(frozen=True)
class Breach:
    """One breach episode of one structure."""

    structure: str  # plain name from the scenario ("S1 nerve root in its foramen")
    label: str  # the label actually entered ("root_S1_left")
    severity: str
    depth_mm: float
    t_s: float
    t_end_s: float | None
    step_id: str
    instrument: str
    shot: int | None  # first shot index on which it was visible
    shot_view: str | None
    kind: str = "enter"  # "exit": through a cortex; ``label`` is then the tissue beyond it

    def as_json(self) -> dict:
        """The report's breach entry."""
        return {
            "structure": self.structure,
            "label": self.label,
            "severity": self.severity,
            "depth_mm": round(self.depth_mm, 2),
            "t_s": round(self.t_s, 3),
            "shot": self.shot,
            "view": self.shot_view,
            "step": self.step_id,
            "instrument": self.instrument,
            "exit": self.kind == "exit",
        }


def resolve_risks(scenario: Scenario, patient: Patient) -> list[ResolvedRisk]:
    """Expand each risk's label pattern on this patient (patterns that match nothing are dropped)."""
    resolved = []
    table = set(patient.label_table)
    for risk in scenario.risks:
        pattern = vocabulary.expand(risk.label, scenario.side)
        names = vocabulary.matching_labels(pattern, table)
        if names:
            values = tuple(patient.label_table[n] for n in names)
            allowed = tuple(
                patient.label_table[n]
                for a in risk.allowed
                for n in vocabulary.matching_labels(vocabulary.expand(a, scenario.side), table)
            )
            resolved.append(
                ResolvedRisk(
                    risk, tuple(names), values, allowed, _toward_lps(risk.toward, scenario.side)
                )
            )
    return resolved


#: Offsets (mm) around an exit point sampled to find which way the cortex faces there.
_NORMAL_OFFSETS = np.stack(
    np.meshgrid(*[np.arange(-3.0, 3.01, 1.5)] * 3, indexing="ij"), axis=-1
).reshape(-1, 3)


def outward_normal(
    patient: Patient, point: NDArray[np.float64], values: tuple[int, ...]
) -> NDArray[np.float64]:
    """Unit vector from the bone's nearby mass toward ``point`` (the cortex's outward normal)."""
    samples = point[None, :] + _NORMAL_OFFSETS
    inside = np.isin(patient.labels_at(samples), values)
    if not inside.any() or inside.all():
        return np.zeros(3)
    normal = samples[~inside].mean(axis=0) - samples[inside].mean(axis=0)
    norm = float(np.linalg.norm(normal))
    return normal / norm if norm > 0 else normal


def exit_depth_mm(
    labels_skin_to_tip: NDArray[np.integer],
    points_skin_to_tip: NDArray[np.float64],
    patient: Patient,
    resolved: ResolvedRisk,
) -> tuple[float, int]:
    """(depth in mm past the cortex, label value the tip went into) of an exit risk; (0, 0) if
    the shaft did not leave the bone through the cortex facing the risk's direction."""
    bone = np.isin(labels_skin_to_tip, resolved.label_values)
    fine = bone | np.isin(labels_skin_to_tip, resolved.allowed_values)
    # every place where the shaft steps from the bone itself into tissue that is not fine
    exits = np.nonzero(bone[:-1] & ~fine[1:])[0] + 1
    for start in exits.tolist():
        toward = resolved.toward_lps
        if toward is not None:
            exit_point = 0.5 * (points_skin_to_tip[start - 1] + points_skin_to_tip[start])
            normal = outward_normal(patient, exit_point, resolved.label_values)
            if float(np.dot(normal, toward)) < EXIT_COSINE:
                continue  # a cortex facing another way (e.g. the posterior one between bones)
        run = int(np.argmax(fine[start:])) if fine[start:].any() else len(fine) - start
        return run * SHAFT_STEP_MM, int(labels_skin_to_tip[start + run - 1])
    return 0.0, 0


def depths_along_shaft(
    patient: Patient, points: NDArray[np.float64], risks: list[ResolvedRisk]
) -> dict[tuple[int, str], float]:
    """{(risk index, label name): path length in mm} for every risk label the shaft is inside.

    ``points`` run from the tip back toward the skin (:func:`shaft_points`). For an exit risk the
    label name is the tissue the shaft went into past the cortex.
    """
    labels = patient.labels_at(points)
    depths: dict[tuple[int, str], float] = {}
    for index, resolved in enumerate(risks):
        if resolved.risk.kind == "exit":
            depth, value = exit_depth_mm(labels[::-1], points[::-1], patient, resolved)
            if depth >= MIN_BREACH_MM:
                depths[(index, patient.label_name(value))] = depth
            continue
        for name, value in zip(resolved.label_names, resolved.label_values, strict=True):
            count = int(np.count_nonzero(labels == value))
            if count:
                depth = count * SHAFT_STEP_MM
                if depth >= MIN_BREACH_MM:
                    depths[(index, name)] = depth
    return depths


def tip_in_field(
    patient: Patient, shot: ShotRecord, point_lps: NDArray[np.float64], carm_model: str = "ii9"
) -> bool:
    """Whether a point projects inside the detector field of a shot (between source and detector)."""
    geometry = carm.carm_geometry(
        carm.CArmJoints.from_dict(shot.joints),
        carm_model,
        views.home_isocenter_lps(patient),
        size_px=64,
        enforce_limits=False,
    )
    col, row = geometry.project(np.asarray(point_lps, dtype=np.float64)[None, :])[0]
    centre = (geometry.width_px - 1) / 2.0
    radius = geometry.width_px / 2.0
    if carm.get_model(carm_model).detector == "image_intensifier":  # round field
        inside = (col - centre) ** 2 + (row - centre) ** 2 <= radius**2
    else:  # flat panel: square field
        inside = abs(col - centre) <= radius and abs(row - centre) <= radius
    depth = float(np.dot(point_lps - geometry.source_lps_mm, geometry.detector_normal_lps))
    return bool(inside and 0.0 < depth < geometry.sid_mm)


def _visible_on(
    patient: Patient,
    shots: list[ShotRecord],
    start: float,
    end: float | None,
    tip: NDArray[np.float64],
    carm_model: str,
) -> ShotRecord | None:
    for shot in shots:
        during = shot.t_s >= start and (end is None or shot.t_s < end)
        if during and tip_in_field(patient, shot, tip, carm_model):
            return shot
    return None


def breach_timeline(
    scenario: Scenario,
    patient: Patient,
    log: AttemptLog,
    lengths_mm: dict[str, float],
    carm_model: str = "ii9",
) -> list[Breach]:
    """Every breach episode of the attempt, in time order (implants included at placement)."""
    risks = resolve_risks(scenario, patient)
    open_episodes: dict[tuple[int, str], dict] = {}
    closed: list[dict] = []
    previous_instrument = None
    for pose in log.poses:
        if previous_instrument is not None and pose.instrument != previous_instrument:
            # a new instrument: the old one's episodes end (its shaft is gone)
            for episode in open_episodes.values():
                episode["end"] = pose.t_s
                closed.append(episode)
            open_episodes = {}
        previous_instrument = pose.instrument
        length = lengths_mm.get(pose.instrument, 250.0)
        points = shaft_points(patient, pose.tip_lps_mm, pose.direction_lps, length)
        depths = depths_along_shaft(patient, points, risks)
        for key in list(open_episodes):
            if key not in depths:
                open_episodes[key]["end"] = pose.t_s
                closed.append(open_episodes.pop(key))
        for key, depth in depths.items():
            if key in open_episodes:
                open_episodes[key]["depth"] = max(open_episodes[key]["depth"], depth)
            else:
                open_episodes[key] = {
                    "key": key,
                    "start": pose.t_s,
                    "end": None,
                    "depth": depth,
                    "step": pose.step_id,
                    "instrument": pose.instrument,
                    "tip": pose.tip_lps_mm,
                }
    closed.extend(open_episodes.values())
    for implant in log.implants:
        points = shaft_points(patient, implant.tip_lps_mm, implant.direction_lps, implant.length_mm)
        for key, depth in depths_along_shaft(patient, points, risks).items():
            closed.append(
                {
                    "key": key,
                    "start": implant.t_s,
                    "end": None,
                    "depth": depth,
                    "step": implant.step_id,
                    "instrument": implant.name,
                    "tip": implant.tip_lps_mm,
                }
            )
    breaches = []
    for episode in sorted(closed, key=lambda e: (e["start"], e["key"])):
        index, label = episode["key"]
        shot = _visible_on(
            patient, log.shots, episode["start"], episode["end"], episode["tip"], carm_model
        )
        breaches.append(
            Breach(
                structure=risks[index].risk.name,
                label=label,
                severity=risks[index].risk.severity,
                depth_mm=float(episode["depth"]),
                t_s=float(episode["start"]),
                t_end_s=episode["end"],
                step_id=episode["step"],
                instrument=episode["instrument"],
                shot=shot.index if shot else None,
                shot_view=shot.view if shot else None,
                kind=risks[index].risk.kind,
            )
        )
    return breaches
