"""The ``Patient``: an HU volume, its label volume, the voxel→LPS transform, labels and landmarks.

Every consumer (renderer, scoring, export, GUI) reads the patient through this one container, so a
generated phantom and an imported CT look the same to them.

Volume layout: ``hu[i, j, k]`` and ``labels[i, j, k]``, with ``lps_from_voxel @ [i, j, k, 1]``
giving the voxel centre in the LPS patient frame in mm (NIfTI-style indexing; see
:mod:`models.frames`). For the generated patient ``lps_from_voxel`` is diagonal (i → Left,
j → Posterior, k → Superior).

Landmarks are named points (3,) or point sets (N, 3) in LPS mm; their names are documented in
:mod:`models.landmarks` (``L4_pedicle_center_left``, ``sij_center_right``, …). Labels are stable
strings (``L4_body``, ``root_L5_left``, ``sij_space_left``, …) mapped to uint8 values; 0 is
always ``background`` (air outside the body).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models import frames

BACKGROUND_LABEL = "background"


class PatientLandmarks(Protocol):
    """The part of a patient that view geometry reads: its named landmarks (LPS mm).

    :class:`Patient` is one; scenarios.patients' probe, which records the landmarks a scenario's
    views ask for and the patient lacks, is another.
    """

    @property
    def landmarks(self) -> Mapping[str, NDArray[np.float64]]: ...

    def landmark(self, name: str) -> NDArray[np.float64]: ...


@dataclass
class Patient:
    """A patient volume with labels and landmarks in the LPS frame (mm)."""

    hu: NDArray[np.int16]
    labels: NDArray[np.uint8]
    lps_from_voxel: NDArray[np.float64]
    label_table: dict[str, int]
    landmarks: dict[str, NDArray[np.float64]]
    parameters: dict[str, Any] = field(default_factory=dict)
    source: str = "generated"

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise ValueError(f"Patient.hu must be 3-D, got shape {self.hu.shape}")
        if self.labels.shape != self.hu.shape:
            raise ValueError(
                f"Patient.labels shape {self.labels.shape} differs from hu shape {self.hu.shape}"
            )
        self.lps_from_voxel = np.asarray(self.lps_from_voxel, dtype=np.float64)
        if self.lps_from_voxel.shape != (4, 4) or not np.all(np.isfinite(self.lps_from_voxel)):
            raise ValueError("Patient.lps_from_voxel must be a finite 4x4 matrix")
        self.landmarks = {
            name: np.asarray(value, dtype=np.float64) for name, value in self.landmarks.items()
        }

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel counts along i, j, k."""
        return tuple(int(n) for n in self.hu.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> NDArray[np.float64]:
        """Voxel size along i, j, k in mm."""
        spacing: NDArray[np.float64] = np.linalg.norm(self.lps_from_voxel[:3, :3], axis=0)
        return spacing

    @property
    def voxel_from_lps(self) -> NDArray[np.float64]:
        """Inverse of ``lps_from_voxel`` (general affine inverse: spacing is not 1)."""
        return np.asarray(np.linalg.inv(self.lps_from_voxel), dtype=np.float64)

    def bounds_lps_mm(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Min and max LPS corners of the volume (outer voxel faces)."""
        corners = np.array(
            [
                [i, j, k]
                for i in (-0.5, self.shape[0] - 0.5)
                for j in (-0.5, self.shape[1] - 0.5)
                for k in (-0.5, self.shape[2] - 0.5)
            ]
        )
        lps = frames.apply_to_points(self.lps_from_voxel, corners)
        return lps.min(axis=0), lps.max(axis=0)

    def label_value(self, name: str) -> int:
        """The uint8 value of a label name; KeyError naming the known labels when absent."""
        try:
            return self.label_table[name]
        except KeyError:
            known = ", ".join(sorted(self.label_table))
            raise KeyError(f"unknown label '{name}'; this patient has: {known}") from None

    def label_name(self, value: int) -> str:
        """The label name of a uint8 value (``background`` for 0 or an unknown value)."""
        for name, label in self.label_table.items():
            if label == value:
                return name
        return BACKGROUND_LABEL

    def landmark(self, name: str) -> NDArray[np.float64]:
        """A landmark by name; KeyError listing close names when absent."""
        try:
            return self.landmarks[name]
        except KeyError:
            stem = name.split("_")[0]
            close = sorted(n for n in self.landmarks if n.startswith(stem))[:12]
            raise KeyError(f"unknown landmark '{name}'; similar: {close}") from None

    def voxel_indices(self, points_lps: ArrayLike) -> NDArray[np.int64]:
        """Nearest voxel indices (…, 3) of LPS points, clipped into the volume."""
        ijk = frames.apply_to_points(self.voxel_from_lps, points_lps)
        idx = np.rint(ijk).astype(np.int64)
        return np.clip(idx, 0, np.array(self.shape) - 1)

    def inside(self, points_lps: ArrayLike) -> NDArray[np.bool_]:
        """Whether LPS points fall inside the volume."""
        ijk = frames.apply_to_points(self.voxel_from_lps, points_lps)
        inside: NDArray[np.bool_] = np.all(
            (ijk >= -0.5) & (ijk <= np.array(self.shape) - 0.5), axis=-1
        )
        return inside

    def labels_at(self, points_lps: ArrayLike) -> NDArray[np.uint8]:
        """Label values at LPS points (nearest voxel; 0 outside the volume)."""
        pts = np.asarray(points_lps, dtype=np.float64)
        idx = self.voxel_indices(pts)
        values = self.labels[idx[..., 0], idx[..., 1], idx[..., 2]]
        return np.where(self.inside(pts), values, 0).astype(np.uint8)

    def hu_at(self, points_lps: ArrayLike) -> NDArray[np.int16]:
        """HU at LPS points (nearest voxel; −1000 outside the volume)."""
        pts = np.asarray(points_lps, dtype=np.float64)
        idx = self.voxel_indices(pts)
        values = self.hu[idx[..., 0], idx[..., 1], idx[..., 2]]
        return np.where(self.inside(pts), values, -1000).astype(np.int16)
