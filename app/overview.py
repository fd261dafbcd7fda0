"""Coarse surfaces of the patient for the learning mode's 3D overview (pyvista, no Qt)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fluorosim.models.patient import Patient
from fluorosim.models.tissue import label_tissue

#: Label-name tests → 3D style for the learning-mode surfaces.
SURFACE_GROUPS: dict[str, Callable[[str], bool]] = {
    "bone": lambda n: label_tissue(n).bone,
    "neural": lambda n: n.startswith("root_") or n == "thecal_sac",
    "vessel": lambda n: "artery" in n or "vein" in n or n in ("aorta", "vena_cava"),
}


def overview_surface(
    patient: Patient, label_names: list[str], step_vox: int = 3, max_cells: int = 30_000
) -> Any:
    """A coarse surface of some labels for the 3D overview (every ``step_vox``-th voxel, < 1 s).

    The printable, full-resolution meshes are :func:`models.io.meshes.structure_mesh`; the 3D view
    only has to show where things are, and must not hold the session's thread for seconds.
    """
    import pyvista as pv

    values = [patient.label_table[name] for name in label_names if name in patient.label_table]
    if not values:
        return None
    mask = np.isin(patient.labels[::step_vox, ::step_vox, ::step_vox], values).astype(np.float32)
    if not mask.any():
        return None
    grid = pv.ImageData(dimensions=mask.shape, spacing=tuple(patient.spacing_mm * step_vox))
    grid.point_data["mask"] = mask.ravel(order="F")
    surface = grid.contour([0.5], scalars="mask").smooth(n_iter=15)
    if surface.n_cells > max_cells:  # a software renderer draws 30k triangles in tens of ms
        surface = surface.decimate(1.0 - max_cells / surface.n_cells)
    lps_from_grid = patient.lps_from_voxel.copy()
    lps_from_grid[:3, :3] = lps_from_grid[:3, :3] / patient.spacing_mm  # the grid is already in mm
    return surface.transform(lps_from_grid, inplace=False)


def overview_surfaces(patient: Patient) -> dict[str, tuple[Any, str]]:
    """Style → (surface, style) of every group that the patient has labels for."""
    surfaces = {}
    for style, test in SURFACE_GROUPS.items():
        names = [n for n in patient.label_table if test(n)]
        mesh = overview_surface(patient, names)
        if mesh is not None:
            surfaces[style] = (mesh, style)
    return surfaces
