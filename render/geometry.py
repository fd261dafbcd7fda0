"""Projection geometry of one C-arm pose: the focal spot, the detector plane and the pixel rays.

A cone-beam pinhole model. Pixel (row, col) has its centre at
``detector_origin_lps_mm + col * pixel_mm * detector_u_lps + row * pixel_mm * detector_v_lps``;
its ray runs from ``source_lps_mm`` to that centre. ``pixel_from_lps`` is the equivalent 3x4
matrix: ``[c·w, r·w, w] = pixel_from_lps @ [x, y, z, 1]``. All in the LPS patient frame, mm.
``detector_u_lps``/``detector_v_lps`` are the directions of increasing column/row as the raw detector
reads out; the monitor's flip/rotate is a display setting applied later.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from fluorosim.models import frames


@dataclass(frozen=True)
class ProjectionGeometry:
    """Focal spot, detector pixel grid and the 3x4 world-mm → pixel projection for one pose."""

    source_lps_mm: NDArray[np.float64]
    detector_origin_lps_mm: NDArray[np.float64]  # centre of pixel (row 0, col 0)
    detector_u_lps: NDArray[np.float64]  # unit vector of increasing column
    detector_v_lps: NDArray[np.float64]  # unit vector of increasing row
    pixel_mm: float
    width_px: int
    height_px: int

    # The derived quantities below are computed once per geometry (a frame asks for them a dozen
    # times) and returned read-only: the geometry is frozen, so they never go stale.

    @cached_property
    def detector_normal_lps(self) -> NDArray[np.float64]:
        """Unit normal of the detector pointing from the source toward the detector."""
        normal = np.cross(self.detector_u_lps, self.detector_v_lps)
        if np.dot(normal, self.detector_center_lps_mm - self.source_lps_mm) < 0:
            normal = -normal
        return _read_only(normal)

    @cached_property
    def detector_center_lps_mm(self) -> NDArray[np.float64]:
        """Centre of the detector pixel grid."""
        return _read_only(
            self.detector_origin_lps_mm
            + (self.width_px - 1) / 2 * self.pixel_mm * self.detector_u_lps
            + (self.height_px - 1) / 2 * self.pixel_mm * self.detector_v_lps
        )

    @cached_property
    def sid_mm(self) -> float:
        """Source-to-image distance (focal spot to the detector plane, perpendicular)."""
        return float(
            np.dot(self.detector_center_lps_mm - self.source_lps_mm, self.detector_normal_lps)
        )

    @cached_property
    def pixel_from_lps(self) -> NDArray[np.float64]:
        """3x4 projection matrix from LPS mm to (col, row) pixel coordinates (homogeneous)."""
        u, v, n = self.detector_u_lps, self.detector_v_lps, self.detector_normal_lps
        s = self.source_lps_mm
        # pixel coordinates of a point p: intersect the ray s→p with the detector plane.
        # With d = p − s: col = (a·d)/(n·d), row = (b·d)/(n·d) for suitable a, b below.
        o = self.detector_origin_lps_mm - s
        dist = float(np.dot(o, n))  # distance source → detector plane along n
        # point on plane for direction d: s + d * dist/(n·d); its offset from origin o:
        # dist*d/(n·d) − o ; col = u·(that)/pixel, row = v·(that)/pixel
        a = (dist * u - np.dot(u, o) * n) / self.pixel_mm
        b = (dist * v - np.dot(v, o) * n) / self.pixel_mm
        rows = np.stack([a, b, n])
        return _read_only(np.hstack([rows, (-rows @ s)[:, None]]))

    def project(self, points_lps: NDArray[np.float64]) -> NDArray[np.float64]:
        """(…, 2) pixel coordinates (col, row) of LPS points."""
        pts = np.asarray(points_lps, dtype=np.float64)
        homogeneous = pts @ self.pixel_from_lps[:, :3].T + self.pixel_from_lps[:, 3]
        return homogeneous[..., :2] / homogeneous[..., 2:3]

    def pixel_centers_lps(self) -> NDArray[np.float64]:
        """(H, W, 3) LPS positions of all pixel centres on the detector."""
        cols = np.arange(self.width_px) * self.pixel_mm
        rows = np.arange(self.height_px) * self.pixel_mm
        return (
            self.detector_origin_lps_mm
            + rows[:, None, None] * self.detector_v_lps
            + cols[None, :, None] * self.detector_u_lps
        )

    def ray_directions(self) -> NDArray[np.float64]:
        """(H, W, 3) unit ray directions from the source to each pixel centre."""
        rays = self.pixel_centers_lps() - self.source_lps_mm
        directions: NDArray[np.float64] = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
        return directions

    def magnification_at(self, point_lps: NDArray[np.float64]) -> float:
        """Geometric magnification SID / (source-to-point distance along the normal)."""
        depth = float(np.dot(np.asarray(point_lps) - self.source_lps_mm, self.detector_normal_lps))
        return self.sid_mm / depth

    def resized(self, width_px: int, height_px: int) -> ProjectionGeometry:
        """The same detector area sampled with another pixel count (square pixels kept)."""
        extent_mm = self.pixel_mm * self.width_px
        pixel_mm = extent_mm / width_px
        center = self.detector_center_lps_mm
        origin = (
            center
            - (width_px - 1) / 2 * pixel_mm * self.detector_u_lps
            - (height_px - 1) / 2 * pixel_mm * self.detector_v_lps
        )
        return ProjectionGeometry(
            self.source_lps_mm,
            origin,
            self.detector_u_lps,
            self.detector_v_lps,
            pixel_mm,
            width_px,
            height_px,
        )

    def validate(self) -> ProjectionGeometry:
        """Check unit, orthogonal detector axes and finite values; returns self."""
        frames.unit(self.detector_u_lps, "detector_u_lps")
        if (
            abs(np.linalg.norm(self.detector_u_lps) - 1) > 1e-6
            or abs(np.linalg.norm(self.detector_v_lps) - 1) > 1e-6
        ):
            raise frames.FrameError("ProjectionGeometry: detector axes must be unit vectors")
        if abs(np.dot(self.detector_u_lps, self.detector_v_lps)) > 1e-6:
            raise frames.FrameError("ProjectionGeometry: detector axes must be orthogonal")
        return self


def _read_only(array: NDArray[np.float64]) -> NDArray[np.float64]:
    array.setflags(write=False)
    return array
