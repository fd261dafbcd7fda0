"""Named C-arm views computed for one patient from its landmarks, and how far a pose is from them.

Each view is a target point (where the central ray must pass) and a beam direction (source →
detector, LPS unit vector, always running anterior → posterior because the source is under the
table of a prone patient). :func:`ideal_joints` turns them into joint values; :func:`pose_error`
gives the angle between a pose's central ray and the ideal one and the distance of the target from
that central ray — the two numbers scoring uses.

How each view is defined (procedures and radiographic practice, reference/carm.md and procedures.md):

* ``ap`` — true AP of a level: the beam in the level's own AP direction (vertebral body centre →
  spinous tip) projected onto the axial plane, so that the spinous process sits midway between the
  pedicles; no cranio-caudal tilt. Target: the level's body (or disc) centre; default L5-S1 disc.
* ``lateral`` — beam along the level's pedicle line (left → right), so the two pedicles and the
  posterior body walls superimpose (made horizontal when a rotated vertebra would need the beam
  to run posterior → anterior, which the C-arm cannot). Target as for ``ap``.
* ``true_lateral_sacrum`` — beam along the mean of the lines joining the left and right sciatic
  notches and the two ends of the iliac cortical density (ICD) lines, so that both superimpose.
  Target: S1 body centre.
* ``inlet`` — caudally tilted beam parallel to the anterior S1 cortex (promontory →
  ``S1_anterior_cortex_midline``), so the promontory and the anterior S1 cortex superimpose and
  the S1 body is seen as a ring (Eastman & Routt 2015: intra-operative mean 24.9°, 12–38; Ricci et
  al., JBJS Am 2010: 21° on supine CT to profile the anterior S1 body; Rotter et al. 2014: 26.7°).
* ``outlet`` — cranially tilted beam from the superior border of the pubic symphysis
  (``pubic_symphysis_superior``) through the S2 body centre: the clinical end point of the outlet
  ("symphysis over S2", Rotter et al. 2014: 43.7°; Eastman & Routt 2015: 42.4°, 29–52). The beam
  perpendicular to the S1 body would be ≈20° steeper (Ricci 2010: 63°), beyond what a C-arm
  reaches over the table; the symphysis end point is the one surgeons use and gives the S1
  foramina end-on enough to judge a pin's cranio-caudal position. A patient without the symphysis
  point falls back to the S1 foramina axis (anterior → posterior foramen centre, mean of sides).
  Inlet and outlet keep only their sagittal-plane component (no wig-wag).
* ``oblique`` (ipsilateral, needs side and level) — the "Scotty dog": the beam rotated toward the
  side until the dog's ear, the superior articular process (the facet joint centre
  ``facet_<upper>_<lower>_<side>`` of the level's lower vertebra), projects over the middle of the
  target (disc or body centre): the end point for a transforaminal approach (procedures.md 25–35°).
  Without facet landmarks: the ipsilateral pedicle (the eye) over the body centre.
* ``ferguson`` (needs a disc level) — AP tilted until the beam lies in the disc's mid-plane
  (perpendicular to the line joining the adjacent endplate centres), so the endplates are seen
  edge-on, parallel to the beam. For L5-S1 this follows the sacral base: the radiographic Ferguson
  view of the lumbosacral junction is 30–35° cephalad (Spine Secrets), and the sacral base angle is
  the same upright and lying (35.6±7.8° vs 36.5±7.9°, Domínguez-Gasca et al., Acta Med 2015).
* ``contralateral_oblique`` (needs side) — for the SI joint: the beam tangent to the posterior
  half of the joint surface (a plane fitted to ``sij_surface_<side>``), the most AP-like direction
  lying in that plane. Target: ``sij_center_<side>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fluorosim.models import frames
from fluorosim.models.patient import Patient, PatientLandmarks
from fluorosim.render import carm
from fluorosim.render.carm import CArmJoints, CArmModel

VIEWS: tuple[str, ...] = (
    "ap",
    "lateral",
    "true_lateral_sacrum",
    "inlet",
    "outlet",
    "oblique",
    "ferguson",
    "contralateral_oblique",
)
LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
DISC_LEVELS: tuple[str, ...] = ("L1_L2", "L2_L3", "L3_L4", "L4_L5", "L5_S1")
SIDES: tuple[str, ...] = ("left", "right")
DEFAULT_LEVEL = "L5_S1"
#: Landmark at which the C-arm's isocentre sits with every translation at zero.
HOME_LANDMARK = "S1_superior_endplate_center"
#: Outlet: the beam runs from the top of the pubic symphysis through the S2 body.
OUTLET_ANTERIOR_LANDMARK = "pubic_symphysis_superior"


class ViewSpecError(ValueError):
    """A view that cannot be computed (unknown name, missing side/level, missing landmark)."""


@dataclass(frozen=True)
class ViewError:
    """How far a pose is from a view: central-ray angle (deg) and target-to-central-ray (mm)."""

    angle_deg: float
    position_mm: float


@dataclass(frozen=True)
class ViewSpec:
    """A view for one patient: the target point and the ideal beam direction (LPS)."""

    name: str
    target_lps_mm: NDArray[np.float64]
    beam_lps: NDArray[np.float64]


def home_isocenter_lps(patient: Patient) -> NDArray[np.float64]:
    """Isocentre of the C-arm at zero translations: the S1 endplate centre (else volume centre)."""
    if HOME_LANDMARK in patient.landmarks:
        return patient.landmark(HOME_LANDMARK).astype(np.float64)
    low, high = patient.bounds_lps_mm()
    return (low + high) / 2.0


def _lm(patient: PatientLandmarks, name: str) -> NDArray[np.float64]:
    try:
        return patient.landmark(name)
    except KeyError as error:
        raise ViewSpecError(str(error.args[0])) from None


def _anterior_to_posterior(direction: NDArray[np.float64]) -> NDArray[np.float64]:
    d = frames.unit(direction, "beam direction")
    return d if d[1] >= 0 else -d


def _vertebra_for(level: str) -> str:
    """The vertebra whose pedicles/spinous steer the view for a level (a disc uses its upper one)."""
    return level.split("_")[0]


def _target_for(patient: PatientLandmarks, level: str) -> NDArray[np.float64]:
    if level in DISC_LEVELS:
        return _lm(patient, f"disc_{level}_center")
    return _lm(patient, f"{level}_body_center")


def _check_level(level: str | None, allow_vertebra: bool = True) -> str:
    level = level or DEFAULT_LEVEL
    allowed = (LEVELS if allow_vertebra else ()) + DISC_LEVELS
    if level not in allowed:
        raise ViewSpecError(f"unknown level '{level}'; expected one of {', '.join(allowed)}")
    return level


def _check_side(view: str, side: str | None) -> str:
    if side not in SIDES:
        raise ViewSpecError(f"view '{view}' needs --side left or right (got {side!r})")
    return side


def _lr_axis(patient: PatientLandmarks, vertebra: str) -> NDArray[np.float64]:
    """Unit left-pointing axis of a vertebra (right → left pedicle centre)."""
    if vertebra == "S1":
        return frames.unit(
            _lm(patient, "S1_foramen_anterior_left") - _lm(patient, "S1_foramen_anterior_right"),
            "sacral left axis",
        )
    return frames.unit(
        _lm(patient, f"{vertebra}_pedicle_center_left")
        - _lm(patient, f"{vertebra}_pedicle_center_right"),
        f"{vertebra} pedicle line",
    )


def _ap_beam(patient: PatientLandmarks, vertebra: str) -> NDArray[np.float64]:
    """The vertebra's body → spinous direction with its S component removed."""
    ap = _lm(patient, f"{vertebra}_spinous_tip") - _lm(patient, f"{vertebra}_body_center")
    ap[2] = 0.0
    return _anterior_to_posterior(ap)


def _sagittal(
    direction: NDArray[np.float64], left_axis: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``direction`` with its component along the patient's left axis removed."""
    sagittal: NDArray[np.float64] = direction - np.dot(direction, left_axis) * left_axis
    return sagittal


def _facet_for(level: str, side: str) -> str | None:
    """The facet joint holding the superior articular process of the level's lower vertebra."""
    if level in DISC_LEVELS:
        return f"facet_{level}_{side}"
    index = LEVELS.index(level)
    return f"facet_{LEVELS[index - 1]}_{level}_{side}" if index > 0 else None


def _inlet_beam(patient: PatientLandmarks) -> NDArray[np.float64]:
    """Along the anterior S1 cortex (promontory → mid-S1 anterior cortex), sagittal part."""
    cortex = _lm(patient, "S1_anterior_cortex_midline") - _lm(patient, "sacral_promontory")
    return _anterior_to_posterior(_sagittal(cortex, _lr_axis(patient, "S1")))


def _outlet_beam(patient: PatientLandmarks) -> NDArray[np.float64]:
    """Symphysis top → S2 body centre (sagittal part), else along the S1 foramina."""
    if OUTLET_ANTERIOR_LANDMARK in patient.landmarks:
        axis = _lm(patient, "S2_body_center") - _lm(patient, OUTLET_ANTERIOR_LANDMARK)
    else:
        axes = [
            _lm(patient, f"S1_foramen_posterior_{s}") - _lm(patient, f"S1_foramen_anterior_{s}")
            for s in SIDES
        ]
        axis = np.mean([frames.unit(a) for a in axes], axis=0)
    return _anterior_to_posterior(_sagittal(axis, _lr_axis(patient, "S1")))


def view_spec(
    patient: PatientLandmarks, view: str, side: str | None = None, level: str | None = None
) -> ViewSpec:
    """Target point and ideal beam direction of a named view for this patient."""
    if view not in VIEWS:
        raise ViewSpecError(f"unknown view '{view}'; expected one of {', '.join(VIEWS)}")
    if view in ("ap", "lateral"):
        level = _check_level(level)
        vertebra = _vertebra_for(level)
        target = _target_for(patient, level)
        # lateral: source on the patient's left, beam toward the right
        beam = _ap_beam(patient, vertebra) if view == "ap" else -_lr_axis(patient, vertebra)
        if beam[1] < 0:
            # a real patient's pedicle line tilts a little (or the patient lies rotated on a CT
            # table): the nearest beam the C-arm reaches from under the table is the horizontal one
            beam = beam - beam[1] * carm.AXIS_P
        return ViewSpec(view, target, frames.unit(beam))
    if view == "true_lateral_sacrum":
        pairs = [
            ("sciatic_notch_left", "sciatic_notch_right"),
            ("icd_line_left_anterior", "icd_line_right_anterior"),
            ("icd_line_left_posterior", "icd_line_right_posterior"),
        ]
        lines = [frames.unit(_lm(patient, a) - _lm(patient, b)) for a, b in pairs]
        beam = -frames.unit(np.mean(lines, axis=0), "sacral lateral axis")
        if beam[1] < 0:  # keep it anterior → posterior only if the lines allow it
            beam = beam - 2 * beam[1] * carm.AXIS_P
        return ViewSpec(view, _lm(patient, "S1_body_center"), beam)
    if view == "inlet":
        return ViewSpec(view, _lm(patient, "S1_body_center"), _inlet_beam(patient))
    if view == "outlet":
        target = 0.5 * (_lm(patient, "S1_body_center") + _lm(patient, "S2_body_center"))
        return ViewSpec(view, target, _outlet_beam(patient))
    if view == "oblique":
        side = _check_side(view, side)
        level = _check_level(level)
        target = _target_for(patient, level)
        facet = _facet_for(level, side)
        if facet is not None and facet in patient.landmarks:
            beam = _lm(patient, facet) - target
        else:
            vertebra = _vertebra_for(level)
            beam = _lm(patient, f"{vertebra}_pedicle_center_{side}") - _lm(
                patient, f"{vertebra}_body_center"
            )
        beam[2] = 0.0  # rotate about the long axis only
        return ViewSpec(view, target, _anterior_to_posterior(beam))
    if view == "ferguson":
        level = _check_level(level, allow_vertebra=False)
        upper, lower = level.split("_")
        upper_plate = _lm(patient, f"{upper}_inferior_endplate_center")
        lower_plate = _lm(patient, f"{lower}_superior_endplate_center")
        disc_axis = frames.unit(upper_plate - lower_plate, f"disc {level} axis")
        ap = _ap_beam(patient, upper)
        beam = ap - np.dot(ap, disc_axis) * disc_axis
        return ViewSpec(view, _lm(patient, f"disc_{level}_center"), _anterior_to_posterior(beam))
    # contralateral_oblique
    side = _check_side(view, side)
    surface = np.asarray(_lm(patient, f"sij_surface_{side}"), dtype=np.float64).reshape(-1, 3)
    if len(surface) < 3:
        raise ViewSpecError(f"sij_surface_{side} needs at least 3 points to fit the joint plane")
    posterior = surface[surface[:, 1] >= np.median(surface[:, 1])]
    if len(posterior) >= 3:
        surface = posterior
    centred = surface - surface.mean(axis=0)
    normal = np.linalg.svd(centred, full_matrices=False)[2][-1]
    beam = carm.AXIS_P - np.dot(carm.AXIS_P, normal) * normal
    return ViewSpec(view, _lm(patient, f"sij_center_{side}"), _anterior_to_posterior(beam))


def ideal_joints(
    patient: Patient,
    view: str,
    side: str | None = None,
    level: str | None = None,
    model: str | CArmModel = "ii9",
) -> CArmJoints:
    """Joint values of the named view for this patient (isocentre on the view's target).

    ``model`` is accepted for symmetry with the renderer: the joint values of a view do not depend
    on the preset, because every preset turns about the same isocentre.
    """
    carm.get_model(model)
    spec = view_spec(patient, view, side, level)
    joints = carm.joints_for_beam(spec.beam_lps, spec.target_lps_mm, home_isocenter_lps(patient))
    return carm.check_limits(joints)


def pose_error(
    patient: Patient,
    joints: CArmJoints,
    view: str,
    side: str | None = None,
    level: str | None = None,
) -> ViewError:
    """Angle (deg) between the pose's central ray and the view's, and target → central-ray (mm)."""
    spec = view_spec(patient, view, side, level)
    beam = carm.beam_direction(joints)
    iso = carm.isocenter_position_lps(joints, home_isocenter_lps(patient))
    offset = spec.target_lps_mm - iso
    off_axis = offset - np.dot(offset, beam) * beam
    return ViewError(
        angle_deg=frames.angle_between_deg(beam, spec.beam_lps),
        position_mm=float(np.linalg.norm(off_axis)),
    )
