"""Instruments and implants: their catalogue (assets/instruments.toml) and their pose in the patient.

An instrument is a straight rigid body described along its axis from the TIP backwards: the
radio-opaque shaft occupies axial distances [0, length_mm] behind the tip, an (almost radiolucent)
handle follows for handle_length_mm. ``InstrumentPose`` places it in the LPS patient frame (mm): the
tip point and the unit direction pointing from the handle toward the tip. For shapes that are not
round (the triangular implant) ``roll_deg`` turns the cross-section about the axis, measured from
the reference direction given by :func:`cross_section_axes`.

Shapes (``InstrumentSpec.shape``):

- ``cylinder``: solid rod of ``diameter_mm``; a conical tip of length ``tip_bevel_mm`` (0 = flat).
- ``needle``: a cannula with its stylet in place, solid in projection, with a conical bevel.
- ``tube``: hollow, ``diameter_mm`` outside and ``inner_diameter_mm`` inside, open ends.
- ``triangular_prism``: equilateral triangle of inscribed-circle diameter ``diameter_mm``
  (iFuse-style implants are named by it); ``inner_diameter_mm`` > 0 makes it cannulated.

The catalogue file has ``schema_version = 1`` and one ``[instruments.<name>]`` table per entry; a bad
file raises :class:`CatalogueError` whose message names the file, the entry and the field.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models import frames
from fluorosim.models.materials import MATERIALS
from fluorosim.models.pose import ToolPose

SCHEMA_VERSION = 1
DEFAULT_CATALOGUE_PATH = Path(__file__).resolve().parent.parent / "assets" / "instruments.toml"
SHAPES = ("cylinder", "needle", "tube", "triangular_prism")
KINDS = ("pin", "wire", "needle", "dilator", "cannula", "implant")
#: Entries every shipped catalogue must contain (cross-package contract).
REQUIRED_ENTRIES = (
    "guide_pin",
    "nitinol_wire",
    "jamshidi_needle",
    "dilator",
    "working_cannula",
    "sij_implant",
    "allograft_dowel",
)


class CatalogueError(ValueError):
    """A catalogue file or entry that cannot be used; the message names file, entry and field."""


@dataclass(frozen=True)
class InstrumentSpec:
    """Geometry and material of one instrument or implant (mm)."""

    name: str
    kind: str
    diameter_mm: float
    length_mm: float
    material: str
    shape: str
    inner_diameter_mm: float = 0.0
    handle_length_mm: float = 0.0
    tip_bevel_mm: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        problem = _spec_problem(self)
        if problem is not None:
            field_name, message = problem
            raise CatalogueError(f"instrument {self.name!r}: field {field_name!r}: {message}")

    @property
    def radius_mm(self) -> float:
        """Outer radius (inscribed radius for the triangular prism)."""
        return self.diameter_mm / 2

    @property
    def bounding_radius_mm(self) -> float:
        """Radius of the smallest axis-centred cylinder holding the cross-section."""
        if self.shape == "triangular_prism":
            return self.diameter_mm  # circumradius of an equilateral triangle = 2 × inradius
        return self.diameter_mm / 2

    def with_length(self, length_mm: float) -> InstrumentSpec:
        """The same instrument in another length (e.g. a 30–70 mm implant size)."""
        return dataclasses.replace(self, length_mm=float(length_mm))


def _spec_problem(spec: InstrumentSpec) -> tuple[str, str] | None:
    """(field, what is wrong) for the first invalid field of ``spec``, or None."""
    if spec.kind not in KINDS:
        return "kind", f"expected one of {', '.join(KINDS)}, got {spec.kind!r}"
    if spec.shape not in SHAPES:
        return "shape", f"expected one of {', '.join(SHAPES)}, got {spec.shape!r}"
    if spec.material not in MATERIALS:
        return "material", f"expected one of {', '.join(MATERIALS)}, got {spec.material!r}"
    for name in ("diameter_mm", "length_mm"):
        value = getattr(spec, name)
        if not (math.isfinite(value) and value > 0):
            return name, f"expected a positive number of mm, got {value!r}"
    for name in ("inner_diameter_mm", "handle_length_mm", "tip_bevel_mm"):
        value = getattr(spec, name)
        if not (math.isfinite(value) and value >= 0):
            return name, f"expected a number of mm ≥ 0, got {value!r}"
    if spec.shape == "tube" and not 0 < spec.inner_diameter_mm < spec.diameter_mm:
        return "inner_diameter_mm", (
            f"a tube needs 0 < inner_diameter_mm < diameter_mm ({spec.diameter_mm}), "
            f"got {spec.inner_diameter_mm}"
        )
    if spec.inner_diameter_mm >= spec.diameter_mm:
        return "inner_diameter_mm", (
            f"must be smaller than diameter_mm ({spec.diameter_mm}), got {spec.inner_diameter_mm}"
        )
    if spec.tip_bevel_mm > 0 and spec.shape not in ("cylinder", "needle"):
        return "tip_bevel_mm", f"a conical tip needs shape cylinder or needle, not {spec.shape!r}"
    if spec.tip_bevel_mm > spec.length_mm:
        return "tip_bevel_mm", f"longer than the instrument ({spec.length_mm} mm)"
    return None


@dataclass(frozen=True, eq=False)
class InstrumentPose:
    """Where the renderer draws an instrument: the catalogue entry at a pose (:mod:`models.pose`).

    ``inserted=False`` means the instrument is off the field (on the tray): it is not projected.
    ``roll_deg`` turns a non-round cross-section about the axis (see :func:`cross_section_axes`).
    """

    spec_name: str
    tip_lps_mm: NDArray[np.float64]
    direction_lps: NDArray[np.float64]
    inserted: bool = True
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        tip = np.asarray(self.tip_lps_mm, dtype=np.float64).reshape(-1)
        if tip.shape != (3,) or not np.all(np.isfinite(tip)):
            raise frames.FrameError(
                f"InstrumentPose {self.spec_name!r}: tip_lps_mm must be 3 finite mm"
            )
        direction = frames.unit(self.direction_lps, f"InstrumentPose {self.spec_name!r} direction")
        object.__setattr__(self, "tip_lps_mm", tip)
        object.__setattr__(self, "direction_lps", direction)

    def _key(self) -> tuple[Any, ...]:
        return (
            self.spec_name,
            tuple(self.tip_lps_mm.tolist()),
            tuple(self.direction_lps.tolist()),
            self.inserted,
            float(self.roll_deg),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstrumentPose):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @classmethod
    def placed(cls, spec_name: str, pose: ToolPose, inserted: bool = True) -> InstrumentPose:
        """The instrument ``spec_name`` at ``pose`` (tip, direction and roll)."""
        return cls(spec_name, pose.tip_lps_mm, pose.direction_lps, inserted, pose.roll_deg)

    @property
    def pose(self) -> ToolPose:
        """Tip, direction and roll as the one pose type (models.pose)."""
        return ToolPose(self.tip_lps_mm, self.direction_lps, self.roll_deg)

    def axis_point_lps(self, distance_behind_tip_mm: float) -> NDArray[np.float64]:
        """The point on the axis ``distance_behind_tip_mm`` back from the tip toward the handle."""
        return self.tip_lps_mm - distance_behind_tip_mm * self.direction_lps

    def handle_points_lps(self, spec: InstrumentSpec) -> NDArray[np.float64]:
        """(3, 3) points where a hand holds it: shaft end, handle middle, handle end (LPS mm)."""
        end = spec.length_mm
        return np.stack(
            [
                self.axis_point_lps(end),
                self.axis_point_lps(end + spec.handle_length_mm / 2),
                self.axis_point_lps(end + spec.handle_length_mm),
            ]
        )


def cross_section_axes(
    direction_lps: ArrayLike, roll_deg: float = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two unit vectors (e1, e2) spanning the cross-section plane, right-handed with the axis.

    At ``roll_deg = 0`` e1 is the patient's superior direction (LPS +z) projected into the plane,
    or anterior (LPS −y) when the axis itself is within ≈18° of cranio-caudal.
    For the triangular implant one vertex points along e1.
    """
    axis = frames.unit(direction_lps, "instrument direction")
    reference = np.array([0.0, 0.0, 1.0])
    if abs(float(axis @ reference)) > 0.95:
        reference = np.array([0.0, -1.0, 0.0])
    e1 = reference - (reference @ axis) * axis
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    if roll_deg:
        angle = math.radians(roll_deg)
        e1, e2 = (
            math.cos(angle) * e1 + math.sin(angle) * e2,
            -math.sin(angle) * e1 + math.cos(angle) * e2,
        )
    return e1, e2


_FIELD_TYPES: dict[str, type] = {
    "kind": str,
    "shape": str,
    "material": str,
    "description": str,
    "diameter_mm": float,
    "length_mm": float,
    "inner_diameter_mm": float,
    "handle_length_mm": float,
    "tip_bevel_mm": float,
}
_REQUIRED_FIELDS = ("kind", "shape", "material", "diameter_mm", "length_mm")


def _parse_entry(name: str, table: Any, where: str) -> InstrumentSpec:
    prefix = f"{where}: instrument {name!r}"
    if not isinstance(table, dict):
        raise CatalogueError(f"{prefix}: expected a table of fields, got {type(table).__name__}")
    for field_name in table:
        if field_name not in _FIELD_TYPES:
            raise CatalogueError(
                f"{prefix}: field {field_name!r}: unknown field; expected some of "
                f"{', '.join(_FIELD_TYPES)}"
            )
    for field_name in _REQUIRED_FIELDS:
        if field_name not in table:
            raise CatalogueError(f"{prefix}: field {field_name!r}: missing (required)")
    values: dict[str, Any] = {}
    for field_name, value in table.items():
        expected = _FIELD_TYPES[field_name]
        if expected is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CatalogueError(
                    f"{prefix}: field {field_name!r}: expected a number of mm, got {value!r}"
                )
            value = float(value)
        elif not isinstance(value, str):
            raise CatalogueError(
                f"{prefix}: field {field_name!r}: expected a string, got {value!r}"
            )
        values[field_name] = value
    try:
        return InstrumentSpec(name=name, **values)
    except CatalogueError as error:
        raise CatalogueError(f"{where}: {error}") from None


def parse_catalogue(document: dict[str, Any], where: str) -> dict[str, InstrumentSpec]:
    """Validate a parsed TOML document; ``where`` names its source in error messages."""
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CatalogueError(
            f"{where}: field 'schema_version': expected {SCHEMA_VERSION}, got {version!r}"
        )
    entries = document.get("instruments")
    if not isinstance(entries, dict) or not entries:
        raise CatalogueError(f"{where}: field 'instruments': expected [instruments.<name>] tables")
    unknown = set(document) - {"schema_version", "instruments"}
    if unknown:
        raise CatalogueError(f"{where}: field {sorted(unknown)[0]!r}: unknown top-level field")
    return {name: _parse_entry(name, table, where) for name, table in entries.items()}


def load_catalogue(path: str | Path | None = None) -> dict[str, InstrumentSpec]:
    """Load and validate an instrument catalogue (default: the shipped assets/instruments.toml).

    Raises :class:`CatalogueError` naming the file, entry and field on any problem. The shipped
    catalogue must also contain every name in ``REQUIRED_ENTRIES``.
    """
    file_path = Path(path) if path is not None else DEFAULT_CATALOGUE_PATH
    try:
        raw = file_path.read_bytes()
    except OSError as error:
        raise CatalogueError(f"{file_path}: cannot read the catalogue: {error.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CatalogueError(f"{file_path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{file_path}: not valid TOML: {error}") from None
    catalogue = parse_catalogue(document, str(file_path))
    if path is None:
        missing = [name for name in REQUIRED_ENTRIES if name not in catalogue]
        if missing:
            raise CatalogueError(f"{file_path}: missing required entries: {', '.join(missing)}")
    return catalogue


def roll_toward_deg(direction_lps: ArrayLike, reference_lps: ArrayLike) -> float:
    """The roll (deg) at which :func:`cross_section_axes`' e1 points along ``reference_lps``
    projected into the cross-section plane (a tracked tool's own axis marks its roll this way)."""
    e1, e2 = cross_section_axes(direction_lps, 0.0)
    reference = np.asarray(reference_lps, dtype=np.float64).reshape(3)
    return math.degrees(math.atan2(float(reference @ e2), float(reference @ e1)))
