"""NIfTI and NRRD volumes: LPS↔RAS affines checked against nibabel/pynrrd, round trips, bad files."""

from __future__ import annotations

import gzip

import nibabel as nib
import nrrd as pynrrd
import numpy as np
import pytest

from fluorosim.models.frames import RAS_FROM_LPS
from fluorosim.models.io import PatientFileError
from fluorosim.models.io.nifti import read_nifti, write_nifti
from fluorosim.models.io.nrrd import read_nrrd, write_nrrd


def test_nifti_affine_is_ras_and_nibabel_agrees(tmp_path, patient):
    path = write_nifti(tmp_path / "hu.nii.gz", patient.hu, patient.lps_from_voxel)
    image = nib.load(str(path))
    # i → Left, j → Posterior, k → Superior in LPS is L, P, S in nibabel's RAS-based axis codes.
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S")
    assert int(image.header["qform_code"]) == 1 and int(image.header["sform_code"]) == 1
    assert image.header.get_xyzt_units()[0] == "mm"
    # A voxel centre in LPS must appear at (−x, −y, z) in nibabel's RAS world, via both forms.
    ijk = np.array([7, 11, 13])
    lps = patient.lps_from_voxel[:3] @ np.append(ijk, 1.0)
    for affine in (image.get_qform(), image.get_sform()):
        ras = nib.affines.apply_affine(affine, ijk)
        assert np.allclose(ras, [-lps[0], -lps[1], lps[2]])
    np.testing.assert_array_equal(np.asarray(image.dataobj), patient.hu)


def test_nifti_round_trip_keeps_values_dtype_and_affine(tmp_path, patient):
    write_nifti(tmp_path / "labels.nii.gz", patient.labels, patient.lps_from_voxel)
    labels, lps_from_voxel = read_nifti(tmp_path / "labels.nii.gz")
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, patient.labels)
    np.testing.assert_allclose(lps_from_voxel, patient.lps_from_voxel, atol=1e-5)


def test_nifti_written_by_nibabel_in_ras_orientation_reads_as_lps(tmp_path):
    """A file from another tool with i → Right (RAS-oriented) gives the flipped LPS axis."""
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 1000
    ras_affine = np.diag([0.8, 0.8, 3.0, 1.0])
    ras_affine[:3, 3] = [-100.0, 50.0, 20.0]
    nib.save(nib.Nifti1Image(data, ras_affine), str(tmp_path / "ct.nii"))
    volume, lps_from_voxel = read_nifti(tmp_path / "ct.nii")
    np.testing.assert_array_equal(volume, data)
    np.testing.assert_allclose(lps_from_voxel, RAS_FROM_LPS @ ras_affine)
    assert lps_from_voxel[0, 0] == pytest.approx(-0.8)  # i runs to the patient's right


def test_nifti_garbage_and_truncated_files_name_the_file(tmp_path, patient):
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"this is not a nifti file at all" * 10)
    with pytest.raises(PatientFileError, match="garbage.nii.gz"):
        read_nifti(garbage)
    good = write_nifti(tmp_path / "good.nii.gz", patient.hu, patient.lps_from_voxel)
    raw = gzip.decompress(good.read_bytes())
    truncated = tmp_path / "truncated.nii"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(PatientFileError, match="truncated.nii"):
        read_nifti(truncated)
    with pytest.raises(PatientFileError, match="missing.nii"):
        read_nifti(tmp_path / "missing.nii")


def test_nifti_four_d_volume_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.int16), np.eye(4)), str(tmp_path / "t.nii"))
    with pytest.raises(PatientFileError, match=r"t.nii.*3-D"):
        read_nifti(tmp_path / "t.nii")


def test_nrrd_round_trip(tmp_path, patient):
    write_nrrd(tmp_path / "ct.nrrd", patient.hu, patient.lps_from_voxel)
    hu, lps_from_voxel = read_nrrd(tmp_path / "ct.nrrd")
    np.testing.assert_array_equal(hu, patient.hu)
    np.testing.assert_allclose(lps_from_voxel, patient.lps_from_voxel)
    header = pynrrd.read_header(str(tmp_path / "ct.nrrd"))
    assert header["space"] == "left-posterior-superior"


def test_nrrd_in_ras_space_is_converted(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 500
    header = {
        "space": "right-anterior-superior",
        "space directions": np.diag([0.5, 0.7, 2.0]),
        "space origin": np.array([10.0, 20.0, 30.0]),
    }
    pynrrd.write(str(tmp_path / "ras.nrrd"), data, header, index_order="F")
    volume, lps_from_voxel = read_nrrd(tmp_path / "ras.nrrd")
    np.testing.assert_array_equal(volume, data)
    # voxel (1, 2, 3) is at RAS (10.5, 21.4, 36) = LPS (−10.5, −21.4, 36)
    assert np.allclose(lps_from_voxel @ [1, 2, 3, 1], [-10.5, -21.4, 36.0, 1.0])


def test_nrrd_without_space_or_garbage_names_the_file(tmp_path):
    pynrrd.write(str(tmp_path / "nospace.nrrd"), np.zeros((2, 2, 2), np.int16))
    with pytest.raises(PatientFileError, match="nospace.nrrd.*'space'"):
        read_nrrd(tmp_path / "nospace.nrrd")
    (tmp_path / "junk.nrrd").write_bytes(b"\x00\x01garbage")
    with pytest.raises(PatientFileError, match="junk.nrrd"):
        read_nrrd(tmp_path / "junk.nrrd")
