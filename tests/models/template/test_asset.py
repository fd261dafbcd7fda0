"""The shipped real-anatomy template asset: loads, watertight smooth bones, chirality, frame, errors.

Numbers are checked against what users rely on: closed surfaces (voxelised by parity), open
foramina (genus), the patient's left at +x (LPS), the S1 endplate centre at the origin, and a
one-line TemplateAssetError naming the file for any broken asset.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from fluorosim.models.template.asset import (
    BODY_NAMES,
    BONE_NAMES,
    DEFAULT_TEMPLATE_PATH,
    TemplateAssetError,
    load_template,
)
from fluorosim.models.template.convert import edge_lengths, signed_volume_mm3, topology


def _dihedral_deg(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Angle between the normals of the two triangles at every interior edge."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    normals /= np.linalg.norm(normals, axis=1)[:, None]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    key = np.sort(edges, axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, owner = key[order], owner[order]
    pair = np.all(key[1:] == key[:-1], axis=1)
    cosine = np.einsum("ij,ij->i", normals[owner[:-1][pair]], normals[owner[1:][pair]])
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def test_shipped_asset_loads_every_bone_and_body():
    template = load_template()
    assert set(template.bones) == set(BONE_NAMES)
    assert set(template.body_meshes) == set(BODY_NAMES)
    assert "Visible Human" in template.source
    assert load_template() is template  # cached
    mesh = template.bones["L4"]
    assert mesh.vertices_mm.dtype == np.float64 and mesh.faces.dtype == np.int32
    with pytest.raises(ValueError):
        mesh.vertices_mm[0, 0] = 1.0  # shared, read-only
    assert DEFAULT_TEMPLATE_PATH.stat().st_size <= 6_000_000


@pytest.mark.parametrize("name", BONE_NAMES)
def test_bones_are_closed_outward_and_in_one_piece(name):
    mesh = load_template().bones[name]
    bad_edges, components, genus = topology(mesh.vertices_mm, mesh.faces)
    assert bad_edges == 0 and components == 1
    assert signed_volume_mm3(mesh.vertices_mm, mesh.faces) > 0
    # The through-holes: a vertebra's foramen, the hip's obturator foramen, the coccyx none,
    # the sacrum its canal plus the open sacral foramina.
    expected = {"sacrum": None, "coccyx": 0}.get(name, 1)
    if expected is None:
        assert genus >= 9
    else:
        assert genus == expected


@pytest.mark.parametrize("name", BONE_NAMES)
def test_bones_are_smooth_with_moderate_edges(name):
    mesh = load_template().bones[name]
    angles = _dihedral_deg(mesh.vertices_mm, mesh.faces)
    assert np.median(angles) < 8.0
    assert np.percentile(angles, 99) < 35.0
    edge = float(np.median(edge_lengths(mesh.vertices_mm, mesh.faces)))
    low, high = (2.0, 3.0) if name.startswith("hip") else (1.0, 2.0)
    assert low <= edge <= high


def test_chirality_left_is_plus_x_and_spines_are_posterior():
    template = load_template()
    left = template.bones["hip_left"].vertices_mm
    right = template.bones["hip_right"].vertices_mm
    assert left[:, 0].min() > -3.0 and right[:, 0].max() < 3.0
    assert left[:, 0].mean() > 50.0 > -50.0 > right[:, 0].mean()
    for level in ("L1", "L2", "L3", "L4", "L5"):
        body = template.body_meshes[level].vertices_mm.mean(axis=0)
        tip = template.landmarks[f"{level}_spinous_tip"]
        assert tip[1] > body[1] + 30.0  # +y is posterior
    # the pubic symphysis lies anterior to the sacrum, the iliac crest above the acetabulum
    assert template.landmarks["pubic_symphysis_superior"][1] < -30.0


def test_s1_superior_endplate_centre_is_the_origin_on_the_sacrum():
    from fluorosim.models.template.landmarks import signed_distance

    template = load_template()
    centre = template.landmarks["S1_superior_endplate_center"]
    np.testing.assert_allclose(centre, 0.0, atol=1e-3)
    assert abs(signed_distance(centre[None], template.bones["sacrum"])[0]) < 0.5
    # L5 sits above, the coccyx below
    assert template.bones["L5"].vertices_mm[:, 2].mean() > 0.0
    assert template.bones["coccyx"].vertices_mm[:, 2].max() < -60.0


# ---------------------------------------------------------------------------------------------
# A broken or foreign asset: one clear message naming the file
# ---------------------------------------------------------------------------------------------


def _shipped_arrays() -> dict[str, np.ndarray]:
    with np.load(DEFAULT_TEMPLATE_PATH) as archive:
        return {name: archive[name] for name in archive.files}


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return path


def _expect_error(path: Path, fragment: str) -> None:
    with pytest.raises(TemplateAssetError) as caught:
        load_template(path)
    message = str(caught.value)
    assert str(path) in message and fragment in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "absent.npz", "not found")


def test_not_an_archive(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("vertices 1 2 3\n")
    _expect_error(path, "not a zip archive")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _expect_error(empty, "empty file")


def test_truncated_archive(tmp_path):
    whole = DEFAULT_TEMPLATE_PATH.read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(TemplateAssetError) as caught:
        load_template(path)
    assert str(path) in str(caught.value)


def test_corrupt_member(tmp_path):
    path = tmp_path / "corrupt.npz"
    data = bytearray(DEFAULT_TEMPLATE_PATH.read_bytes())
    with zipfile.ZipFile(DEFAULT_TEMPLATE_PATH) as archive:
        info = archive.getinfo("bone/L1/vertices_mm.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start : start + 400] = bytes(400)
    path.write_bytes(bytes(data))
    with pytest.raises(TemplateAssetError) as caught:
        load_template(path)
    assert str(path) in str(caught.value)


def test_foreign_npz(tmp_path):
    _expect_error(_write(tmp_path / "foreign.npz", {"a": np.zeros(3)}), "no 'format' entry")
    arrays = _shipped_arrays()
    arrays["format"] = np.array("someone-elses-meshes")
    _expect_error(_write(tmp_path / "other.npz", arrays), "not a fluorosim bone template")


def test_newer_format_version(tmp_path):
    arrays = _shipped_arrays()
    arrays["format_version"] = np.array(99, dtype=np.int32)
    _expect_error(_write(tmp_path / "v99.npz", arrays), "version 99")


def test_missing_bone_and_bad_arrays(tmp_path):
    arrays = _shipped_arrays()
    del arrays["bone/hip_left/faces"]
    _expect_error(_write(tmp_path / "nohip.npz", arrays), "bone/hip_left/faces")
    arrays = _shipped_arrays()
    faces = arrays["bone/L3/faces"].copy()
    faces[0, 0] = 10**7
    arrays["bone/L3/faces"] = faces
    _expect_error(_write(tmp_path / "index.npz", arrays), "outside")
    arrays = _shipped_arrays()
    vertices = arrays["bone/sacrum/vertices_mm"].copy()
    vertices[5, 1] = np.nan
    arrays["bone/sacrum/vertices_mm"] = vertices
    _expect_error(_write(tmp_path / "nan.npz", arrays), "NaN")
    arrays = _shipped_arrays()
    arrays["landmark/L4_body_center"] = np.zeros((2, 2), dtype=np.float32)
    _expect_error(_write(tmp_path / "landmark.npz", arrays), "L4_body_center")


@pytest.mark.slow
@pytest.mark.shared_data
def test_convert_reproduces_the_shipped_meshes(shared_data):
    from fluorosim.models.template.convert import build_meshes

    result = build_meshes(shared_data / "real-anatomy")
    shipped = load_template()
    for name, mesh in result.bones.items():
        assert len(mesh.vertices_mm) == len(shipped.bones[name].vertices_mm), name
        assert len(mesh.faces) == len(shipped.bones[name].faces), name
    np.testing.assert_allclose(
        result.bones["L4"].vertices_mm, shipped.bones["L4"].vertices_mm, atol=0.01
    )
    assert result.registration_rms_mm < 2.5
