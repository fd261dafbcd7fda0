"""DICOM CT series: tags a viewer relies on, round trip, and every broken-folder case named."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from fluorosim.models.io import PatientFileError
from fluorosim.models.io.dicom import CT_IMAGE_STORAGE, read_ct_series, write_ct_series


@pytest.fixture
def series_dir(tmp_path, patient):
    write_ct_series(tmp_path / "series", patient.hu, patient.lps_from_voxel, uid_seed="test")
    return tmp_path / "series"


def test_each_slice_is_a_ct_image_with_correct_geometry(series_dir, patient):
    files = sorted(series_dir.glob("*.dcm"))
    assert len(files) == patient.shape[2]
    uids = set()
    for k, path in enumerate(files):
        ds = pydicom.dcmread(str(path))
        assert ds.SOPClassUID == CT_IMAGE_STORAGE and ds.Modality == "CT"
        assert ds.file_meta.MediaStorageSOPClassUID == CT_IMAGE_STORAGE
        uids.add(ds.SeriesInstanceUID)
        # voxel (0, 0, k) centre: origin + k · 2 mm along Superior
        assert np.allclose(ds.ImagePositionPatient, [-30.0, -25.0, 10.0 + 2.0 * k])
        assert np.allclose(ds.ImageOrientationPatient, [1, 0, 0, 0, 1, 0])
        # PixelSpacing = [between rows (j: 1.25), between columns (i: 1.5)]
        assert np.allclose(ds.PixelSpacing, [1.25, 1.5])
        assert float(ds.SliceThickness) == pytest.approx(2.0)
        assert (ds.Rows, ds.Columns) == (36, 40)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        # row r, column c is voxel (i=c, j=r)
        np.testing.assert_array_equal(hu, patient.hu[:, :, k].T)
    assert len(uids) == 1
    assert ds.PatientPosition == "HFP" and ds.RescaleType == "HU" and ds.PatientSex == ""


def test_patient_sex_and_age_are_written(tmp_path, patient):
    (path, *_) = write_ct_series(
        tmp_path,
        patient.hu[:, :, :2],
        patient.lps_from_voxel,
        patient_sex="F",
        patient_age_years=47.6,
    )
    ds = pydicom.dcmread(str(path))
    assert ds.PatientSex == "F" and ds.PatientAge == "047Y"


def test_series_round_trip(series_dir, patient):
    series = read_ct_series(series_dir)
    np.testing.assert_array_equal(series.hu, patient.hu)
    np.testing.assert_allclose(series.lps_from_voxel, patient.lps_from_voxel, atol=1e-6)
    assert len(series.files) == patient.shape[2]


def test_file_names_do_not_decide_the_order(series_dir, patient):
    files = sorted(series_dir.glob("*.dcm"))
    for index, path in enumerate(files):  # reverse the names
        path.rename(series_dir / f"tmp_{len(files) - index:04d}.dcm")
    series = read_ct_series(series_dir)
    np.testing.assert_array_equal(series.hu, patient.hu)


def test_mr_modality_is_refused_naming_the_file(series_dir):
    path = sorted(series_dir.glob("*.dcm"))[4]
    ds = pydicom.dcmread(str(path))
    ds.Modality = "MR"
    ds.save_as(str(path))
    with pytest.raises(PatientFileError, match=rf"{path.name}.*modality is MR"):
        read_ct_series(series_dir)


def test_missing_slice_is_reported_with_its_neighbours(series_dir):
    files = sorted(series_dir.glob("*.dcm"))
    files[10].unlink()
    with pytest.raises(
        PatientFileError, match=rf"{files[11].name}.*missing slice.*{files[9].name}"
    ):
        read_ct_series(series_dir)


def test_uneven_slice_spacing_is_reported(series_dir):
    path = sorted(series_dir.glob("*.dcm"))[12]
    ds = pydicom.dcmread(str(path))
    ds.ImagePositionPatient = [
        ds.ImagePositionPatient[0],
        ds.ImagePositionPatient[1],
        float(ds.ImagePositionPatient[2]) + 0.7,
    ]
    ds.save_as(str(path))
    with pytest.raises(PatientFileError, match="inconsistent slice spacing"):
        read_ct_series(series_dir)


def test_inconsistent_pixel_spacing_is_reported(series_dir):
    path = sorted(series_dir.glob("*.dcm"))[3]
    ds = pydicom.dcmread(str(path))
    ds.PixelSpacing = [1.0, 1.0]
    ds.save_as(str(path))
    with pytest.raises(PatientFileError, match=rf"{path.name}.*PixelSpacing.*inconsistent"):
        read_ct_series(series_dir)


def test_garbage_and_truncated_files_are_named(series_dir):
    files = sorted(series_dir.glob("*.dcm"))
    truncated = files[5]
    truncated.write_bytes(truncated.read_bytes()[:-1500])
    with pytest.raises(PatientFileError, match=rf"{truncated.name}.*(truncated|corrupt)"):
        read_ct_series(series_dir)
    truncated.write_bytes(truncated.read_bytes()[:300])  # cut inside the header
    with pytest.raises(PatientFileError, match=rf"{truncated.name}.*(truncated|corrupt)"):
        read_ct_series(series_dir)
    truncated.unlink()
    (series_dir / "notes.dcm").write_bytes(b"hello, this is not DICOM")
    with pytest.raises(PatientFileError, match=r"notes.dcm.*not a DICOM"):
        read_ct_series(series_dir)


def test_two_series_in_one_folder_are_refused(tmp_path, patient, series_dir):
    write_ct_series(tmp_path / "other", patient.hu, patient.lps_from_voxel, uid_seed="other")
    shutil.copytree(tmp_path / "other", series_dir / "other")
    with pytest.raises(PatientFileError, match="2 series"):
        read_ct_series(series_dir)


def test_empty_folder_and_single_slice(tmp_path, series_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PatientFileError, match="no files"):
        read_ct_series(tmp_path / "empty")
    for path in sorted(series_dir.glob("*.dcm"))[1:]:
        path.unlink()
    with pytest.raises(PatientFileError, match="single slice"):
        read_ct_series(series_dir)


def _shift_slice(path, shift_lps):
    ds = pydicom.dcmread(str(path))
    ds.ImagePositionPatient = [
        float(v) + d for v, d in zip(ds.ImagePositionPatient, shift_lps, strict=True)
    ]
    ds.save_as(str(path))


def test_gantry_tilt_gives_a_sheared_volume(series_dir, patient):
    for k, path in enumerate(sorted(series_dir.glob("*.dcm"))):
        _shift_slice(path, [0.0, 0.3 * k, 0.0])  # 0.3 mm posterior per 2 mm slice: ~8.5° tilt
    series = read_ct_series(series_dir)
    np.testing.assert_allclose(series.lps_from_voxel[:3, 2], [0.0, 0.3, 2.0], atol=1e-6)
    np.testing.assert_array_equal(series.hu, patient.hu)


def test_a_single_shifted_slice_is_named(series_dir):
    path = sorted(series_dir.glob("*.dcm"))[7]
    _shift_slice(path, [3.0, 0.0, 0.0])
    with pytest.raises(PatientFileError, match=rf"{path.name}.*off the line"):
        read_ct_series(series_dir)
