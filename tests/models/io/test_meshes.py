"""Structure meshes: watertight, outward, in LPS mm at the right place and size; STL round trip."""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv

from fluorosim.models.io.meshes import enclosed_volume_mm3, is_watertight, structure_mesh, write_stl
from fluorosim.models.patient import Patient


def ball_patient(radius_vox=10.0) -> Patient:
    """A ball of known centre and radius on an anisotropic grid with a rotated, offset affine."""
    n = 40
    i, j, k = np.indices((n, n, n))
    lab = (((i - 20) ** 2 + (j - 18) ** 2 + (k - 22) ** 2) <= radius_vox**2).astype(np.uint8)
    # 1 mm voxels rotated 90° about S (i → Posterior, j → Right) and shifted: a non-diagonal affine
    lps_from_voxel = np.array(
        [[0.0, -1.0, 0.0, 12.0], [1.0, 0.0, 0.0, -40.0], [0.0, 0.0, 1.0, 5.0], [0, 0, 0, 1.0]]
    )
    hu = np.where(lab, 700, -1000).astype(np.int16)
    return Patient(hu, lab, lps_from_voxel, {"background": 0, "ball": 1}, {})


def test_ball_mesh_is_closed_outward_and_in_place():
    patient = ball_patient()
    mesh = structure_mesh(patient, ["ball"])
    assert is_watertight(mesh) and mesh.is_manifold and mesh.n_open_edges == 0
    centre_lps = patient.lps_from_voxel @ [20, 18, 22, 1]
    np.testing.assert_allclose(mesh.center_of_mass(), centre_lps[:3], atol=0.1)
    radii = np.linalg.norm(mesh.points - centre_lps[:3], axis=1)
    # the voxelised ball of radius 10 voxels (1 mm): surface within half a voxel of r = 10 mm
    assert abs(radii.mean() - 10.0) < 0.5 and radii.max() - radii.min() < 1.5
    volume = enclosed_volume_mm3(mesh)
    assert volume == pytest.approx(4 / 3 * np.pi * 10.0**3, rel=0.04)
    # outward normals: the normal at each point agrees with the radial direction
    normals = mesh.point_normals
    radial = (mesh.points - centre_lps[:3]) / radii[:, None]
    assert np.mean(np.einsum("ij,ij->i", normals, radial)) > 0.95


def test_union_of_vertebra_parts_on_the_synthetic_patient(patient):
    parts = ["L4_body", "L4_pedicle_left", "L4_pedicle_right", "L4_posterior_elements"]
    mesh = structure_mesh(patient, parts)
    assert mesh.n_points > 0 and is_watertight(mesh)
    low, high = np.array(mesh.bounds).reshape(3, 2).T
    voxel_lps = np.argwhere(np.isin(patient.labels, [2, 3, 4, 5])) * patient.spacing_mm
    voxel_lps += patient.lps_from_voxel[:3, 3]
    assert np.all(low > voxel_lps.min(axis=0) - patient.spacing_mm)
    assert np.all(high < voxel_lps.max(axis=0) + patient.spacing_mm)


def test_unsmoothed_mesh_has_the_voxel_volume():
    patient = ball_patient()
    mesh = structure_mesh(patient, ["ball"], smooth=False)
    assert is_watertight(mesh)
    voxels = int(patient.labels.sum())
    # marching cubes at 0.5 on a binary ball cuts corners: within 5 % of the voxel count
    assert enclosed_volume_mm3(mesh) == pytest.approx(voxels, rel=0.05)


def test_unknown_label_and_empty_structure():
    patient = ball_patient()
    with pytest.raises(KeyError, match="unknown label 'skull'"):
        structure_mesh(patient, ["skull"])
    patient.label_table["absent"] = 9
    assert structure_mesh(patient, ["absent"]).n_points == 0


def test_stl_round_trip_keeps_a_watertight_mesh_in_mm(tmp_path):
    mesh = structure_mesh(ball_patient(), ["ball"])
    path = write_stl(mesh, tmp_path / "ball.stl")
    assert path.read_bytes()[:5] != b"solid"  # binary STL
    back = pv.read(str(path)).clean()
    assert back.n_cells == mesh.n_cells and is_watertight(back)
    np.testing.assert_allclose(back.bounds, mesh.bounds, atol=1e-3)


def test_a_single_voxel_structure_still_gets_a_closed_mesh():
    patient = ball_patient(radius_vox=0.5)  # one voxel
    assert int(patient.labels.sum()) == 1
    mesh = structure_mesh(patient, ["ball"])
    assert mesh.n_points > 0 and is_watertight(mesh)
