"""The body-width measure the warp fits and its tests read (``coronal_mean_width_mm``), against
analytic answers on surfaces of revolution."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.template.warp_geometry import coronal_mean_width_mm, coronal_widths_mm


def revolved(radius_at, height_mm: float, rings: int = 120, sectors: int = 180):
    """A closed surface of revolution about the w axis (local u, v, w), radius ``radius_at(w)``,
    from w = −height/2 to +height/2, capped: (vertices, faces)."""
    heights = np.linspace(-height_mm / 2, height_mm / 2, rings)
    angles = np.linspace(0.0, 2 * np.pi, sectors, endpoint=False)
    r = radius_at(heights)[:, None]
    ring = np.stack(
        [
            r * np.cos(angles)[None, :],
            r * np.sin(angles)[None, :],
            np.repeat(heights[:, None], sectors, 1),
        ],
        axis=-1,
    ).reshape(-1, 3)
    vertices = np.vstack([ring, [[0, 0, heights[0]], [0, 0, heights[-1]]]])
    bottom, top = len(ring), len(ring) + 1
    faces = []
    for i in range(rings - 1):
        for j in range(sectors):
            a, b = i * sectors + j, i * sectors + (j + 1) % sectors
            faces += [[a, b, b + sectors], [a, b + sectors, a + sectors]]
    for j in range(sectors):
        faces += [[bottom, (j + 1) % sectors, j]]
        last = (rings - 1) * sectors
        faces += [[top, last + j, last + (j + 1) % sectors]]
    return vertices, np.asarray(faces)


def test_a_cylinder_reads_its_diameter():
    vertices, faces = revolved(lambda w: np.full_like(w, 20.0), 28.0)
    assert coronal_mean_width_mm(vertices, faces, 0.0) == pytest.approx(40.0, abs=0.05)


def test_a_waisted_body_reads_its_mean_width_not_its_rims_or_its_waist():
    """r(w) = 20 + 6 (w / 14)²: the rims are 52 mm wide, the waist 40, the mean 2 (20 + 6/3) = 44;
    a plane off the middle (v = 5) cuts the chords 2 √(r² − 25)."""
    radius = lambda w: 20.0 + 6.0 * (w / 14.0) ** 2  # noqa: E731
    vertices, faces = revolved(radius, 28.0)
    widths = coronal_widths_mm(vertices, faces, 0.0)
    assert widths.max() == pytest.approx(52.0, abs=0.2)
    assert widths.min() == pytest.approx(40.0, abs=0.1)
    assert coronal_mean_width_mm(vertices, faces, 0.0) == pytest.approx(44.0, abs=0.15)
    w = np.linspace(-14.0, 14.0, 20001)
    off_middle = float(np.mean(2.0 * np.sqrt(radius(w) ** 2 - 25.0)))
    assert coronal_mean_width_mm(vertices, faces, 5.0) == pytest.approx(off_middle, abs=0.15)


def test_a_plane_that_misses_the_body_is_an_error():
    vertices, faces = revolved(lambda w: np.full_like(w, 20.0), 28.0)
    with pytest.raises(ValueError, match="does not cut"):
        coronal_mean_width_mm(vertices, faces, 25.0)
