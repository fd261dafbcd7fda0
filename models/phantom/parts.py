"""The interface between anatomy part generators and the assembly that paints them.

An anatomy part (``lumbar.py``, ``pelvis.py``, ``soft_tissue.py``, …) is a function
``part(grid: Grid, params: PatientParameters, anchors: Anchors) -> PartResult``. It returns what it
paints as :class:`Painted` pieces, each confined to a sub-box of the volume so that no part ever
allocates a full-volume array per label, plus the landmarks it owns (LPS mm).

The assembly paints pieces in ascending ``priority`` (later pieces overwrite earlier ones where their
masks overlap): skin/fat/muscle first, organs and vessels next, bone, then discs, joint spaces and
neural structures last (a root inside a foramen wins over the bone around it).

Frame: LPS mm with the origin at the centre of the S1 superior endplate (see models/frames.py);
the patient lies prone. ``Anchors`` carries the poses that several parts share (the S1 endplate and
its normal, which the sacrum sets from the sacral slope and the lumbar spine stacks upon).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # lumbar.py imports this module
    from fluorosim.models.phantom.lumbar import LumbarLayout

Variant = Literal[
    "high_iliac_crest", "transitional_l5", "narrow_foramen", "dysmorphic_upper_sacrum"
]
VARIANTS: tuple[str, ...] = (
    "high_iliac_crest",
    "transitional_l5",
    "narrow_foramen",
    "dysmorphic_upper_sacrum",
)
Skeleton = Literal["real", "primitive"]
SKELETONS: tuple[str, ...] = ("real", "primitive")

#: Painting priorities (ascending order of painting; later wins).
PRIORITY_SKIN = 0
PRIORITY_FAT = 10
PRIORITY_MUSCLE = 20
PRIORITY_ORGAN = 30
PRIORITY_VESSEL = 40
PRIORITY_BONE = 50
PRIORITY_DISC = 60
PRIORITY_JOINT_SPACE = 70
PRIORITY_NEURAL = 80

#: Front-to-back depth of the trunk at BMI 25 (mm), from the back's skin to the belly's. The real
#: abdominal-pelvic CT shipped with the real-anatomy data (TotalSegmentator example CT) measures
#: 246–258 mm at L1–L5 and 225–246 mm over the pelvis, where the belly's skin lies 60–70 mm in
#: front of the hip bones' most anterior points.
TRUNK_DEPTH_BMI25_MM = 235.0


@dataclass(frozen=True)
class PatientParameters:
    """What a user may vary about the patient. Same parameters and seed → the identical patient.

    Defaults describe a typical adult (reference/anatomy.md). ``body_scale`` scales skeletal
    dimensions about the population mean (1.0 = mean; ≈0.9 small, ≈1.1 large);
    ``lordosis_scale`` scales the standing segmental lordosis (a prone patient is flatter, ≈0.74:
    36.8 recumbent vs 49.8 standing, anatomy.md).
    """

    seed: int = 0
    sex: Literal["female", "male"] = "male"
    body_scale: float = 1.0
    bmi: float = 25.0
    age_years: float = 50.0
    lordosis_scale: float = 0.74
    sacral_slope_deg: float = 38.0
    variant: Variant | None = None
    voxel_mm: float = 1.0
    #: "real" (the default since generator 5.0): L1–L5, sacrum and hip bones from the real-anatomy
    #: template (models/template); "primitive": the hand-built shapes of lumbar.py, sacrum.py and
    #: pelvis.py, kept as an option.
    skeleton: Skeleton = "real"

    def __post_init__(self) -> None:
        checks = [
            (self.sex in ("female", "male"), f"sex must be 'female' or 'male', got {self.sex!r}"),
            (0.8 <= self.body_scale <= 1.2, f"body_scale must be 0.8–1.2, got {self.body_scale}"),
            (16 <= self.bmi <= 45, f"bmi must be 16–45, got {self.bmi}"),
            (18 <= self.age_years <= 90, f"age_years must be 18–90, got {self.age_years}"),
            (
                0.3 <= self.lordosis_scale <= 1.5,
                f"lordosis_scale must be 0.3–1.5, got {self.lordosis_scale}",
            ),
            (
                24 <= self.sacral_slope_deg <= 55,
                f"sacral_slope_deg must be 24–55 (anatomy.md), got {self.sacral_slope_deg}",
            ),
            (
                self.variant is None or self.variant in VARIANTS,
                f"variant must be one of {VARIANTS} or None, got {self.variant!r}",
            ),
            (0.5 <= self.voxel_mm <= 3.0, f"voxel_mm must be 0.5–3.0, got {self.voxel_mm}"),
            (
                self.skeleton in SKELETONS,
                f"skeleton must be one of {SKELETONS}, got {self.skeleton!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"PatientParameters: {message}")

    def rng(self, stream: str) -> np.random.Generator:
        """A generator for one named random stream, fixed by the seed (parts stay independent)."""
        stream_key = int.from_bytes(stream.encode()[:8].ljust(8, b"\0"), "little")
        return np.random.default_rng([self.seed, stream_key])


@dataclass(frozen=True)
class Grid:
    """Voxel-centre coordinates of an axis-aligned LPS volume (i→x Left, j→y Posterior, k→z Superior)."""

    x_mm: NDArray[np.float64]
    y_mm: NDArray[np.float64]
    z_mm: NDArray[np.float64]

    @classmethod
    def covering(
        cls, low_mm: NDArray[np.float64], high_mm: NDArray[np.float64], voxel_mm: float
    ) -> Grid:
        """A grid of ``voxel_mm`` voxels covering the box [low, high]."""
        axes = [
            np.arange(lo + voxel_mm / 2, hi, voxel_mm)
            for lo, hi in zip(low_mm, high_mm, strict=True)
        ]
        return cls(*axes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.x_mm.size, self.y_mm.size, self.z_mm.size)

    @property
    def voxel_mm(self) -> float:
        return float(self.x_mm[1] - self.x_mm[0])

    @property
    def lps_from_voxel(self) -> NDArray[np.float64]:
        matrix = np.diag([self.voxel_mm, self.voxel_mm, self.voxel_mm, 1.0])
        matrix[:3, 3] = [self.x_mm[0], self.y_mm[0], self.z_mm[0]]
        return matrix

    def box(self, low_mm: Iterable[float], high_mm: Iterable[float]) -> tuple[slice, slice, slice]:
        """Index slices of the voxels whose centres lie inside [low, high] (clipped to the grid)."""
        slices = []
        for axis, lo, hi in zip((self.x_mm, self.y_mm, self.z_mm), low_mm, high_mm, strict=True):
            start = int(np.searchsorted(axis, lo, side="left"))
            stop = int(np.searchsorted(axis, hi, side="right"))
            slices.append(slice(start, max(start, stop)))
        return tuple(slices)  # type: ignore[return-value]

    def coordinates(
        self, box: tuple[slice, slice, slice]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Broadcastable x, y, z coordinate arrays (ni,1,1), (1,nj,1), (1,1,nk) of a sub-box."""
        x = self.x_mm[box[0]][:, None, None]
        y = self.y_mm[box[1]][None, :, None]
        z = self.z_mm[box[2]][None, None, :]
        return x, y, z


@dataclass
class Painted:
    """One labelled piece: a boolean mask over ``box`` and its HU (a scalar or an array of the box)."""

    label: str
    box: tuple[slice, slice, slice]
    mask: NDArray[np.bool_]
    hu: float | NDArray[np.float32]
    priority: int
    #: Partial-volume fraction (0…1, array of the box) of the voxel this piece fills: the painter
    #: mixes ``hu`` with what is already there in this proportion and labels the voxel only where
    #: the fraction is at least one half. ``None``: the piece fills its mask entirely.
    fraction: NDArray[np.float32] | None = None


@dataclass
class Anchors:
    """Poses shared between parts (LPS mm); filled by the assembly before the parts run."""

    s1_endplate_center_mm: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    #: Unit normal of the S1 superior endplate, pointing superiorly (tilted by the sacral slope).
    s1_endplate_normal: NDArray[np.float64] = field(
        default_factory=lambda: np.array([0.0, 0.0, 1.0])
    )
    extra: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    #: The lumbar layout the neural part routes the sac and roots by: None → the primitive
    #: ``lumbar_layout(params)``; the real skeleton sets one measured on its bones.
    lumbar_layout: LumbarLayout | None = None


@dataclass
class PartResult:
    """What a part paints and the landmarks it owns."""

    pieces: list[Painted] = field(default_factory=list)
    landmarks: dict[str, NDArray[np.float64]] = field(default_factory=dict)


def trunk_depth_mm(params: PatientParameters) -> float:
    """The trunk's front-to-back depth (mm), growing with BMI: 235·(BMI/25)^0.7·body_scale."""
    return float(TRUNK_DEPTH_BMI25_MM * (params.bmi / 25.0) ** 0.7 * params.body_scale)


def back_skin_y_mm(params: PatientParameters, spinous_y_mm: float | NDArray[Any]) -> Any:
    """LPS y of the back's skin behind a spinous tip (or the sacral crest): 12 mm + 2.5 mm per BMI
    point above 18 (subcutaneous fat and skin over the supraspinous ligament, approx.)."""
    return spinous_y_mm + 12.0 + 2.5 * (params.bmi - 18.0)
