"""A watertight triangle mesh → signed distance and partial-volume occupancy on a grid sub-box.

Route (measured on the Visible Human hip bones, 1.2·10⁵ mm² of surface, 1 mm voxels, one core):

1. inside/outside of every voxel centre by scan-line parity (VTK's ``vtkPolyDataToImageStencil``,
   exact for a watertight surface, ≈0.15 s for both hip bones);
2. the exact distance to the surface (VTK's ``vtkImplicitPolyDataDistance``, ≈10 µs a point) only
   in a narrow band around the surface — the voxels that the surface cuts and those a cortical
   shell can reach;
3. deeper inside (and farther outside) only the sign is kept (``±clip_mm``): the band is grown
   from the boundary by voxel layers (``scipy.ndimage`` binary dilation/erosion, 18-connected),
   deep enough for the thickest cortical shell.

The signed distance ``d`` (mm, negative inside) gives the voxel's partial-volume occupancy: the
surface's step blurred by a Gaussian of σ = ``EDGE_SIGMA_VOXELS`` voxels across the surface,
``½·erfc(d / (σ√2))`` — what a CT reconstructed at this voxel size holds (its point-spread
function is of the order of the voxel), volume-preserving for a plane at any sub-voxel offset and
for any smooth surface, so the edge voxels of an oblique surface carry fractional values instead of
a staircase. A layer between depths ``a`` and ``b`` below the surface (a cortical shell) fills the
fraction ``occ(d + a) − occ(d + b)`` of the voxel, so a 0.4 mm wall still adds 0.4 mm of bone.

Why blurred and not the plain box fraction ``clip(0.5 − d/h, 0, 1)``: a cortex thinner than a
voxel is a line far finer than the grid, and the box profile keeps most of its contrast up to the
grid's Nyquist frequency and beyond. Seen edge-on (a ray along the shell, as the inlet view sees
the vertebral endplates and the iliac wings), the trilinear interpolant the renderer integrates
then darkens and lightens with the shell's sub-voxel offset, which drifts along a gently tilted
plate: a moiré of fine stripes one voxel apart. σ = 0.6 voxel leaves 17 % of the contrast at the
Nyquist frequency (the box leaves 64 %); measured on the default patient's inlet view (fast
renderer), the row-to-row stripe over the lumbar spine fell from 0.0053 to 0.0029 (median
second difference of ∫μ dl).

Frame: the mesh vertices and the grid share the patient's LPS mm frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import vtk
from numpy.typing import NDArray
from scipy import ndimage, special
from vtk.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy

if TYPE_CHECKING:  # the phantom package imports this module: no import cycle at run time
    from fluorosim.models.phantom.parts import Grid

#: The surface's step in the volume is blurred by a Gaussian of this σ (voxels) across it.
EDGE_SIGMA_VOXELS = 0.6
#: Beyond this distance from the surface (voxels: 3 σ) the blurred step is 0 or 1 within 0.14 %.
EDGE_REACH_VOXELS = 3.0 * EDGE_SIGMA_VOXELS
#: Exact distances are computed for voxels whose coarse distance is within this many voxels of
#: the surface outside, and within ``inner_band_mm`` plus the edge's reach (plus one voxel) inside.
OUTER_BAND_VOXELS = EDGE_REACH_VOXELS

#: A depth below the surface: one for every voxel, or one per voxel.
Depth = float | NDArray[np.float32]


@dataclass
class MeshVolume:
    """Signed distance of one closed surface sampled on a sub-box of a :class:`Grid`.

    ``distance_mm`` is negative inside; exact within the band around the surface, ``±clip_mm``
    beyond it. ``box`` indexes the grid.
    """

    box: tuple[slice, slice, slice]
    distance_mm: NDArray[np.float32]
    voxel_mm: float

    @property
    def occupancy(self) -> NDArray[np.float32]:
        """Partial-volume fraction of each voxel inside the surface (0…1)."""
        return occupancy(self.distance_mm, self.voxel_mm)

    def layer_fraction(self, outer_depth_mm: Depth, inner_depth_mm: Depth) -> NDArray[np.float32]:
        """Fraction of each voxel lying between two depths below the surface (0 ≤ outer < inner)."""
        return layer_fraction(self.distance_mm, self.voxel_mm, outer_depth_mm, inner_depth_mm)


def occupancy(distance_mm: NDArray[np.float32], voxel_mm: float) -> NDArray[np.float32]:
    """Fraction of a voxel inside a surface at signed distance ``distance_mm`` (negative inside):
    the step blurred by a Gaussian of ``EDGE_SIGMA_VOXELS`` voxels (module docstring)."""
    scale = np.float32(1.0 / (EDGE_SIGMA_VOXELS * voxel_mm * np.sqrt(2.0)))
    fraction: NDArray[np.float32] = np.float32(0.5) * special.erfc(
        np.asarray(distance_mm, dtype=np.float32) * scale
    )
    return fraction.astype(np.float32, copy=False)


def layer_fraction(
    distance_mm: NDArray[np.float32],
    voxel_mm: float,
    outer_depth_mm: Depth,
    inner_depth_mm: Depth,
) -> NDArray[np.float32]:
    """Fraction of a voxel between depths ``outer`` and ``inner`` (mm) below the surface."""
    outer = occupancy(distance_mm + np.asarray(outer_depth_mm, dtype=np.float32), voxel_mm)
    inner = occupancy(distance_mm + np.asarray(inner_depth_mm, dtype=np.float32), voxel_mm)
    between: NDArray[np.float32] = np.clip(outer - inner, 0.0, 1.0)
    return between.astype(np.float32)


def _polydata(vertices_mm: NDArray[np.float64], faces: NDArray[np.integer[Any]]) -> vtk.vtkPolyData:
    points = vtk.vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(vertices_mm, dtype=np.float64), deep=True))
    faces = np.asarray(faces, dtype=np.int64)
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cell_array = vtk.vtkCellArray()
    cell_array.SetData(
        numpy_to_vtkIdTypeArray(offsets, deep=True),
        numpy_to_vtkIdTypeArray(np.ascontiguousarray(faces.ravel()), deep=True),
    )
    poly = vtk.vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cell_array)
    return poly


def mesh_box(
    grid: Grid, vertices_mm: NDArray[np.float64], margin_mm: float
) -> tuple[slice, slice, slice] | None:
    """The grid sub-box covering the mesh plus ``margin_mm``, or None when it misses the grid."""
    low = vertices_mm.min(axis=0) - margin_mm
    high = vertices_mm.max(axis=0) + margin_mm
    box = grid.box(low, high)
    if any(s.stop <= s.start for s in box):
        return None
    return box


def inside_mask(
    poly: vtk.vtkPolyData,
    origin_mm: NDArray[np.float64],
    voxel_mm: float,
    shape: tuple[int, int, int],
) -> NDArray[np.bool_]:
    """Voxel centres inside the closed surface (scan-line parity), array indexed (i, j, k)."""
    stencil = vtk.vtkPolyDataToImageStencil()
    stencil.SetInputData(poly)
    stencil.SetOutputOrigin(*map(float, origin_mm))
    stencil.SetOutputSpacing(voxel_mm, voxel_mm, voxel_mm)
    stencil.SetOutputWholeExtent(0, shape[0] - 1, 0, shape[1] - 1, 0, shape[2] - 1)
    to_image = vtk.vtkImageStencilToImage()
    to_image.SetInputConnection(stencil.GetOutputPort())
    to_image.SetInsideValue(1)
    to_image.SetOutsideValue(0)
    to_image.SetOutputScalarType(vtk.VTK_UNSIGNED_CHAR)
    to_image.Update()
    flat: NDArray[np.uint8] = vtk_to_numpy(to_image.GetOutput().GetPointData().GetScalars())
    return flat.reshape(shape[::-1]).transpose(2, 1, 0).astype(bool)


def voxelise_mesh(
    grid: Grid,
    vertices_mm: NDArray[np.float64],
    faces: NDArray[np.integer[Any]],
    *,
    inner_band_mm: float = 0.0,
    clip_mm: float = 10.0,
    box: tuple[slice, slice, slice] | None = None,
) -> MeshVolume | None:
    """Signed distance of a watertight mesh on the grid sub-box around it (None if it misses).

    Exact within ``OUTER_BAND_VOXELS`` voxels outside and ``inner_band_mm`` plus the edge's reach
    (+ one voxel) inside the surface, ``±clip_mm`` beyond: ``inner_band_mm`` is the deepest layer
    the caller will ask for (its thickest cortex), 0 when only the surface matters.
    """
    vertices_mm = np.asarray(vertices_mm, dtype=np.float64)
    h = grid.voxel_mm
    if box is None:
        box = mesh_box(grid, vertices_mm, 2.0 * h + 1.0)
        if box is None:
            return None
    shape = tuple(s.stop - s.start for s in box)
    origin = np.array([grid.x_mm[box[0].start], grid.y_mm[box[1].start], grid.z_mm[box[2].start]])
    poly = _polydata(vertices_mm, faces)
    inside = inside_mask(poly, origin, h, shape)
    # the band: voxel layers grown from the boundary (18-connected steps, so every voxel within
    # the reach in Euclidean distance is reached); outside it only the sign matters
    structure = ndimage.generate_binary_structure(3, 2)
    outer_layers = int(np.ceil(OUTER_BAND_VOXELS))
    inner_layers = int(np.ceil(inner_band_mm / h + EDGE_REACH_VOXELS)) + 1
    grown = ndimage.binary_dilation(inside, structure, iterations=outer_layers)
    core = ndimage.binary_erosion(inside, structure, iterations=inner_layers, border_value=0)
    band = grown & ~core
    distance = np.where(inside, np.float32(-clip_mm), np.float32(clip_mm)).astype(np.float32)
    idx = np.nonzero(band)
    points = np.column_stack(
        [grid.x_mm[box[0]][idx[0]], grid.y_mm[box[1]][idx[1]], grid.z_mm[box[2]][idx[2]]]
    )
    if len(points):
        implicit = vtk.vtkImplicitPolyDataDistance()
        implicit.SetInput(poly)
        values = vtk.vtkDoubleArray()
        implicit.FunctionValue(numpy_to_vtk(np.ascontiguousarray(points), deep=True), values)
        exact = np.abs(vtk_to_numpy(values)).astype(np.float32)
        # the sign comes from the parity test (robust at creases where normals disagree)
        distance[idx] = np.where(inside[idx], -exact, exact)
    np.clip(distance, -clip_mm, clip_mm, out=distance)
    return MeshVolume(box=box, distance_mm=distance, voxel_mm=h)


def nearest_vertex_values(
    volume: MeshVolume,
    grid: Grid,
    vertices_mm: NDArray[np.float64],
    values: NDArray[np.float64],
    where: NDArray[np.bool_],
) -> NDArray[np.float32]:
    """A per-vertex quantity carried to the voxels ``where`` (value of the nearest vertex), else 0."""
    from scipy.spatial import cKDTree

    out = np.zeros(where.shape, dtype=np.float32)
    idx = np.nonzero(where)
    if not len(idx[0]):
        return out
    box = volume.box
    points = np.column_stack(
        [grid.x_mm[box[0]][idx[0]], grid.y_mm[box[1]][idx[1]], grid.z_mm[box[2]][idx[2]]]
    )
    _, nearest = cKDTree(np.asarray(vertices_mm)).query(points, k=1)
    out[idx] = np.asarray(values, dtype=np.float32)[nearest]
    return out
