"""The mobile C-arm: named joints with limits, detector presets, and the pose → projection geometry.

Frames and conventions (reference/carm.md). The patient lies prone on the table and the LPS patient
frame is also the room frame of the C-arm kinematics: the room's vertical ("up") is +P (posterior),
the table's long axis is S, and the C-arm stands beside the table on the patient's right with its
horizontal arm reaching across the table toward +L.

As in the lab, the X-ray source is under the table (anterior to the patient) and the detector
above. At all joints zero the beam runs anterior → posterior (+P) through the isocentre; detector
columns increase toward the patient's left (+L) and rows toward the feet (−S), so the raw image
already shows the patient's left on the screen's right with the head up (AP convention).

Joints (units in the names), applied as a kinematic chain about the isocentre:

* ``wigwag_deg`` — rotation of the whole C about the vertical (+P) axis;
* ``angular_deg`` — cranio-caudal tilt about the horizontal arm (+L axis); + tilts the beam
  cranially (its direction gains +S: outlet), − caudally (inlet);
* ``orbital_deg`` — the C sliding in its track, about the (tilted) long axis (+S); +90 is a lateral
  with the source on the patient's left, the beam running left → right, anterior on the screen's left;
* ``lift_mm`` (+ = C raised, isocentre moves +P), ``horizontal_mm`` (+ = arm further in, +L);
* ``table_longitudinal_mm`` (+ = table and patient toward the head: the beam lands more caudally),
  ``table_lateral_mm`` (+ = patient toward their left), ``table_height_mm`` (+ = table raised).

So the beam direction is ``R_P(wigwag) · R_L(angular) · R_S(orbital) · (+P)``. Limits follow the
ranges of reference/carm.md; a value outside them is refused with a message naming the joint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.models import frames
from fluorosim.render.geometry import ProjectionGeometry

AXIS_L = np.array([1.0, 0.0, 0.0])
AXIS_P = np.array([0.0, 1.0, 0.0])
AXIS_S = np.array([0.0, 0.0, 1.0])
#: Raw detector axes and beam at all joints zero (see module docstring).
DETECTOR_U0 = AXIS_L
DETECTOR_V0 = -AXIS_S
BEAM0 = AXIS_P


class CArmLimitError(ValueError):
    """A joint value outside the C-arm's travel; the message names the joint, value and range."""


@dataclass(frozen=True)
class CArmJoints:
    """Joint readouts of a mobile C-arm and its table (mm and degrees)."""

    orbital_deg: float = 0.0
    angular_deg: float = 0.0
    wigwag_deg: float = 0.0
    lift_mm: float = 0.0
    horizontal_mm: float = 0.0
    table_longitudinal_mm: float = 0.0
    table_lateral_mm: float = 0.0
    table_height_mm: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Joint name → value (for recordings and JSON)."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> CArmJoints:
        """Joints from a name → value mapping; unknown names are refused with the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CArmLimitError(f"unknown C-arm joint(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: float(v) for k, v in values.items()})

    def key(self) -> tuple[float, ...]:
        """A hashable, rounded key (1e-6 mm/deg) identifying the pose for caches."""
        # the fields read directly: asdict deep-copies them (≈40 µs, twice per frame)
        return tuple(round(float(getattr(self, name)), 6) for name in _JOINT_NAMES)

    def moved(self, **changes: float) -> CArmJoints:
        """A copy with some joints changed."""
        return replace(self, **changes)


#: The joints' field names, in declaration order (CArmJoints.key).
_JOINT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(CArmJoints))

#: Joint travel (min, max). Orbital: reference −40…+110 on the usual side, extended to −95 so
#: that a lateral or oblique can be taken from either side; angular ±50 (reference ±45–55);
#: wig-wag ±25 (reference ±10–40); lift 400 mm and horizontal 200 mm travel (reference), table
#: moves as a typical mobile-C-arm-compatible OR table.
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "orbital_deg": (-95.0, 110.0),
    "angular_deg": (-50.0, 50.0),
    "wigwag_deg": (-25.0, 25.0),
    "lift_mm": (-200.0, 200.0),
    "horizontal_mm": (-100.0, 100.0),
    "table_longitudinal_mm": (-500.0, 500.0),
    "table_lateral_mm": (-150.0, 150.0),
    "table_height_mm": (-200.0, 200.0),
}


def check_limits(
    joints: CArmJoints, limits: dict[str, tuple[float, float]] | None = None
) -> CArmJoints:
    """Return ``joints`` if every joint lies within its travel, else raise :class:`CArmLimitError`."""
    limits = JOINT_LIMITS if limits is None else limits
    problems = []
    for name, value in joints.as_dict().items():
        if not np.isfinite(value):
            problems.append(f"{name}={value} is not a number")
            continue
        low, high = limits[name]
        if not low - 1e-9 <= value <= high + 1e-9:
            problems.append(f"{name}={value:g} outside its travel [{low:g}, {high:g}]")
    if problems:
        raise CArmLimitError("C-arm pose refused: " + "; ".join(problems))
    return joints


@dataclass(frozen=True)
class CArmModel:
    """A C-arm preset: distances, detector kind and field sizes (mm at the detector input)."""

    name: str
    description: str
    sid_mm: float
    source_isocenter_mm: float
    detector: str  # "image_intensifier" (round field) or "flat_panel" (square field)
    modes: dict[str, float] = field(default_factory=dict)  # magnification mode → field mm
    default_mode: str = ""

    def field_mm(self, mode: str | None = None) -> float:
        """Field size (diameter or side) of a magnification mode at the detector input, mm."""
        mode = mode or self.default_mode
        try:
            return self.modes[mode]
        except KeyError:
            raise KeyError(
                f"C-arm '{self.name}' has no magnification mode '{mode}'; modes: {list(self.modes)}"
            ) from None

    @property
    def magnification_at_isocenter(self) -> float:
        """SID / source–isocentre distance."""
        return self.sid_mm / self.source_isocenter_mm


#: Presets (reference/carm.md: SID 980–1020 mm, source–isocentre 530–600 mm, 9" = 230 mm II with
#: 6" (150 mm) and 4.5" (110 mm) modes, 12" (300 mm) II, ≈300 mm flat panel e.g. Siemens Cios 1020).
CARM_MODELS: dict[str, CArmModel] = {
    "ii9": CArmModel(
        "ii9",
        '9" image intensifier with 6" and 4.5" magnification modes',
        sid_mm=1000.0,
        source_isocenter_mm=600.0,
        detector="image_intensifier",
        modes={"9in": 230.0, "6in": 150.0, "4.5in": 110.0},
        default_mode="9in",
    ),
    "ii12": CArmModel(
        "ii12",
        '12" image intensifier with 9" and 6" magnification modes',
        sid_mm=1000.0,
        source_isocenter_mm=600.0,
        detector="image_intensifier",
        modes={"12in": 300.0, "9in": 230.0, "6in": 150.0},
        default_mode="12in",
    ),
    "fpd30": CArmModel(
        "fpd30",
        "30 cm flat-panel detector (Cios-like SID 1020 mm)",
        sid_mm=1020.0,
        source_isocenter_mm=600.0,
        detector="flat_panel",
        modes={"30cm": 300.0, "20cm": 200.0, "15cm": 150.0},
        default_mode="30cm",
    ),
}


def get_model(model: str | CArmModel) -> CArmModel:
    """A preset by name (or the model itself); KeyError naming the presets when unknown."""
    if isinstance(model, CArmModel):
        return model
    try:
        return CARM_MODELS[model]
    except KeyError:
        raise KeyError(f"unknown C-arm model '{model}'; presets: {sorted(CARM_MODELS)}") from None


def carm_rotation(joints: CArmJoints) -> NDArray[np.float64]:
    """3x3 rotation world_from_carm of the C (wig-wag · angular · orbital)."""
    return (
        frames.rotation_about_axis(AXIS_P, joints.wigwag_deg)
        @ frames.rotation_about_axis(AXIS_L, joints.angular_deg)
        @ frames.rotation_about_axis(AXIS_S, joints.orbital_deg)
    )


def beam_direction(joints: CArmJoints) -> NDArray[np.float64]:
    """Unit direction of the central ray (source → detector) in LPS."""
    direction: NDArray[np.float64] = carm_rotation(joints) @ BEAM0
    return direction


def isocenter_position_lps(
    joints: CArmJoints, home_isocenter_lps: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Where the C-arm's isocentre lies in the patient frame for these joints.

    ``home_isocenter_lps`` is the isocentre with every translation at zero. C-arm moves shift the
    isocentre; table moves shift the patient, i.e. the isocentre the opposite way.
    """
    home = np.asarray(home_isocenter_lps, dtype=np.float64)
    return (
        home
        + (joints.lift_mm - joints.table_height_mm) * AXIS_P
        + (joints.horizontal_mm - joints.table_lateral_mm) * AXIS_L
        - joints.table_longitudinal_mm * AXIS_S
    )


def carm_geometry(
    joints: CArmJoints,
    model: str | CArmModel,
    isocenter_lps: NDArray[np.float64],
    size_px: int = 512,
    mode: str | None = None,
    enforce_limits: bool = True,
) -> ProjectionGeometry:
    """Projection geometry of the pose: source under the table, detector of the mode's field.

    ``isocenter_lps`` is the home isocentre (all translations zero). The square detector grid of
    ``size_px``² pixels covers the mode's field (an intensifier's round field is inscribed).
    """
    if enforce_limits:
        check_limits(joints)
    carm = get_model(model)
    rotation = carm_rotation(joints)
    beam = rotation @ BEAM0
    u = rotation @ DETECTOR_U0
    v = rotation @ DETECTOR_V0
    iso = isocenter_position_lps(joints, isocenter_lps)
    source = iso - carm.source_isocenter_mm * beam
    center = source + carm.sid_mm * beam
    pixel_mm = carm.field_mm(mode) / size_px
    origin = center - (size_px - 1) / 2 * pixel_mm * (u + v)
    return ProjectionGeometry(source, origin, u, v, pixel_mm, size_px, size_px).validate()


def joints_for_beam(
    direction_lps: NDArray[np.float64],
    target_lps: NDArray[np.float64],
    home_isocenter_lps: NDArray[np.float64],
) -> CArmJoints:
    """Joint values whose central ray runs along ``direction_lps`` through ``target_lps``.

    Near-AP beams use orbital + angular (wig-wag 0); near-lateral beams, where angulation only
    spins the image, use orbital + wig-wag (angular 0), as a radiographer would. The isocentre is
    put on the target with lift, horizontal and table-longitudinal moves.
    """
    d = frames.unit(direction_lps, "beam direction")
    if d[1] < 0:
        raise CArmLimitError(
            "beam direction must run anterior → posterior (source under the table); "
            f"got {np.round(d, 3).tolist()}"
        )
    dx, dy, dz = d
    orbital_rad = np.arcsin(np.clip(-dx, -1.0, 1.0))
    wigwag = 0.0
    angular = float(np.degrees(np.arctan2(dz, dy)))
    if abs(dx) > 0.7:  # lateral-ish: orbital + wig-wag
        orbital_rad = np.sign(-dx) * np.arccos(np.clip(dy, -1.0, 1.0))
        s = np.sin(orbital_rad)
        wigwag = float(np.degrees(np.arctan2(dz / s, -dx / s)))
        angular = 0.0
    offset = np.asarray(target_lps, dtype=np.float64) - np.asarray(home_isocenter_lps)
    return CArmJoints(
        orbital_deg=float(np.degrees(orbital_rad)),
        angular_deg=angular,
        wigwag_deg=wigwag,
        lift_mm=float(offset[1]),
        horizontal_mm=float(offset[0]),
        table_longitudinal_mm=float(-offset[2]),
    )


@dataclass(frozen=True)
class MonitorOrientation:
    """How the raw detector image is shown: optional flips, then quarter turns counter-clockwise.

    The default (no flip, no turn) shows the lab convention of reference/carm.md: for an AP the
    patient's left on the screen's right and the head up; for a lateral (orbital +90) anterior on the
    left.
    """

    flip_horizontal: bool = False
    flip_vertical: bool = False
    rotate_quarter_turns: int = 0

    def apply(self, image: NDArray[Any]) -> NDArray[Any]:
        """The image as the monitor shows it (rows × cols, first axes)."""
        out = image
        if self.flip_horizontal:
            out = out[:, ::-1]
        if self.flip_vertical:
            out = out[::-1, :]
        if self.rotate_quarter_turns % 4:
            out = np.rot90(out, self.rotate_quarter_turns % 4)
        return np.ascontiguousarray(out)

    def describe(self) -> str:
        """A one-line label for the GUI/status bar."""
        parts = []
        if self.flip_horizontal:
            parts.append("flipped left-right")
        if self.flip_vertical:
            parts.append("flipped up-down")
        if self.rotate_quarter_turns % 4:
            parts.append(f"rotated {90 * (self.rotate_quarter_turns % 4)}° CCW")
        return "monitor: " + (", ".join(parts) if parts else "standard (AP: patient left on right)")
