"""DICOM CT series: write one CT Image Storage file per axial slice, read a series folder back.

Geometry (DICOM PS3.3 C.7.6.2 Image Plane Module): the pixel in row r, column c of a slice lies at
``ImagePositionPatient + c·PixelSpacing[1]·row_direction + r·PixelSpacing[0]·column_direction``
where ``ImageOrientationPatient`` = (row_direction, column_direction), all in LPS mm. A slice is
``hu[:, :, k]`` of the patient volume with columns along i and rows along j, so
``pixel_array = hu[:, :, k].T``. Stored values are ``(HU − RescaleIntercept) / RescaleSlope``
(C.11.1.1.2 Modality LUT) as signed 16-bit.

Reading checks what a wrong folder looks like in practice and names the offending file: files that
are not DICOM or are truncated, a modality other than CT, more than one series, slices whose
orientation, size or pixel spacing differ, a gap in slice positions (a missing slice), uneven
slice spacing and a slice shifted off the line of the others. A gantry-tilted series (positions
drifting in-plane at a constant rate) is read with a sheared ``lps_from_voxel``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.io import PatientFileError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset, FileDataset
    from pydicom.uid import UID

#: CT Image Storage SOP class (DICOM PS3.4 Annex B.5).
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Relative tolerance on slice spacing before a series is called uneven.
SPACING_TOLERANCE = 0.01
#: Absolute tolerance (mm) on slice spacing and geometry comparisons.
POSITION_TOLERANCE_MM = 0.01


@dataclass
class DicomSeries:
    """A CT series read from a folder: HU volume, voxel→LPS transform and the files used."""

    hu: NDArray[np.int16]
    lps_from_voxel: NDArray[np.float64]
    files: list[Path]
    series_uid: str
    description: str


def _slice_geometry(
    lps_from_voxel: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    """Row/column unit directions and spacings; refuses a volume with non-orthogonal slices."""
    matrix = np.asarray(lps_from_voxel, dtype=np.float64)
    axes = matrix[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    directions = axes / spacing
    normal = np.cross(directions[:, 0], directions[:, 1])
    if (
        abs(float(directions[:, 0] @ directions[:, 1])) > 1e-6
        or abs(abs(float(normal @ directions[:, 2])) - 1.0) > 1e-6
    ):
        raise ValueError("a DICOM series needs orthogonal i, j, k axes (no shear or gantry tilt)")
    return directions[:, 0], directions[:, 1], float(spacing[0]), float(spacing[1])


def write_ct_series(
    out_dir: str | Path,
    hu: NDArray[np.int16],
    lps_from_voxel: NDArray[np.float64],
    patient_name: str = "Fluorosim^Phantom",
    patient_id: str = "FLUOROSIM-0",
    series_description: str = "fluorosim synthetic CT",
    uid_seed: str = "fluorosim",
    rescale_intercept: float = -1024.0,
    now: _dt.datetime | None = None,
    patient_sex: str = "",
    patient_age_years: float | None = None,
) -> list[Path]:
    """Write ``hu[i, j, k]`` as one CT Image Storage file per k slice; returns the file paths.

    UIDs derive from ``uid_seed`` so the same patient gives the same UIDs; all slices share one
    Study, Series and Frame of Reference UID. ``now`` (injected for exact tests) sets the dates.
    ``patient_sex`` is "M", "F", "O" or "" (unknown); type 2 attributes without a value are written
    empty, as PS3.3 requires.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(hu)
    row_dir, col_dir, spacing_i, spacing_j = _slice_geometry(lps_from_voxel)
    matrix = np.asarray(lps_from_voxel, dtype=np.float64)
    step_k = matrix[:3, 2]
    thickness = float(np.linalg.norm(step_k))
    normal = np.cross(row_dir, col_dir)
    stored = np.rint(volume.astype(np.float64) - rescale_intercept)
    if stored.min() < -32768 or stored.max() > 32767:
        raise ValueError("HU values do not fit signed 16-bit storage with this intercept")
    stored = stored.astype(np.int16)
    stamp = now or _dt.datetime(2000, 1, 1, 0, 0, 0)
    study_uid = generate_uid(entropy_srcs=[uid_seed, "study"])
    series_uid = generate_uid(entropy_srcs=[uid_seed, "series"])
    frame_uid = generate_uid(entropy_srcs=[uid_seed, "frame"])
    paths = []
    for k in range(volume.shape[2]):
        sop_uid = generate_uid(entropy_srcs=[uid_seed, "slice", str(k)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = cast("UID", CT_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        path = out_dir / f"CT_{k + 1:04d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "CT"
        ds.Manufacturer = "fluorosim"
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = patient_sex
        if patient_age_years is not None:
            ds.PatientAge = f"{int(patient_age_years):03d}Y"
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ReferringPhysicianName = ""
        ds.AccessionNumber = ""
        ds.PositionReferenceIndicator = ""
        ds.AcquisitionNumber = 1
        ds.PatientPosition = "HFP"  # head first prone, as on the procedure table
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = stamp.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = stamp.strftime("%H%M%S")
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = series_description
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in matrix[:3] @ np.array([0.0, 0.0, k, 1.0])]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [spacing_j, spacing_i]
        ds.SliceThickness = thickness
        ds.SpacingBetweenSlices = thickness
        ds.SliceLocation = float(np.dot(ds.ImagePositionPatient, normal))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = int(volume.shape[1])
        ds.Columns = int(volume.shape[0])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = float(rescale_intercept)
        ds.RescaleSlope = 1.0
        ds.RescaleType = "HU"
        ds.WindowCenter = 400.0
        ds.WindowWidth = 1800.0
        ds.KVP = 120.0
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    return paths


def _read_header(path: Path) -> FileDataset:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=False)
    except InvalidDicomError:
        raise PatientFileError(path, "not a DICOM file (no DICM preamble)") from None
    except Exception as error:  # truncated element, bad length …
        raise PatientFileError(path, f"corrupt or truncated DICOM file ({error})") from None


def _require(path: Path, ds: Dataset, keyword: str) -> Any:
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        raise PatientFileError(path, f"DICOM attribute {keyword} is missing")
    return value


def _candidate_files(folder: Path) -> list[Path]:
    skip = {"DICOMDIR"}
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name not in skip and not p.name.startswith(".")
    )


def read_ct_series(folder: str | Path) -> DicomSeries:
    """Read the single CT series in ``folder`` (recursively) into an HU volume in LPS.

    Raises :class:`PatientFileError` naming the file and the problem (see the module docstring).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PatientFileError(folder, "not a folder of DICOM files")
    files = _candidate_files(folder)
    if not files:
        raise PatientFileError(folder, "the folder holds no files")
    slices = []
    for path in files:
        ds = _read_header(path)
        if "PixelData" not in ds:
            raise PatientFileError(
                path, "holds no pixel data (truncated file, or not an image slice)"
            )
        modality = str(getattr(ds, "Modality", "")) or "(missing)"
        if modality != "CT":
            raise PatientFileError(
                path, f"modality is {modality}, not CT: only CT series give Hounsfield units"
            )
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise PatientFileError(
                path, "multi-frame (enhanced) CT is not supported; export as slices"
            )
        slices.append((path, ds))
    series: dict[str, list[tuple[Path, Dataset]]] = {}
    for path, ds in slices:
        series.setdefault(str(_require(path, ds, "SeriesInstanceUID")), []).append((path, ds))
    if len(series) > 1:
        described = ", ".join(
            f"{uid} ({len(items)} files, e.g. {items[0][0].name})" for uid, items in series.items()
        )
        raise PatientFileError(folder, f"the folder holds {len(series)} series: {described}")
    ((series_uid, items),) = series.items()
    return _assemble(folder, series_uid, items)


def _assemble(folder: Path, series_uid: str, items: Sequence[tuple[Path, Dataset]]) -> DicomSeries:
    first_path, first = items[0]
    orientation = np.asarray(_require(first_path, first, "ImageOrientationPatient"), float)
    spacing = np.asarray(_require(first_path, first, "PixelSpacing"), float)
    rows, columns = (
        int(_require(first_path, first, "Rows")),
        int(_require(first_path, first, "Columns")),
    )
    if orientation.shape != (6,) or spacing.shape != (2,) or np.any(spacing <= 0):
        raise PatientFileError(first_path, "ImageOrientationPatient or PixelSpacing is malformed")
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positioned = []
    for path, ds in items:
        if not np.allclose(
            np.asarray(ds.get("ImageOrientationPatient", []), float), orientation, atol=1e-4
        ):
            raise PatientFileError(
                path,
                f"ImageOrientationPatient differs from {first_path.name}'s (tilted or mixed series)",
            )
        if not np.allclose(np.asarray(ds.get("PixelSpacing", []), float), spacing, atol=1e-4):
            raise PatientFileError(
                path,
                f"PixelSpacing {list(ds.get('PixelSpacing', []))} differs from "
                f"{first_path.name}'s {spacing.tolist()} (inconsistent spacing)",
            )
        if int(ds.get("Rows", 0)) != rows or int(ds.get("Columns", 0)) != columns:
            raise PatientFileError(
                path, f"slice size differs from {first_path.name}'s {rows}x{columns}"
            )
        position = np.asarray(_require(path, ds, "ImagePositionPatient"), float)
        positioned.append((float(position @ normal), position, path, ds))
    positioned.sort(key=lambda item: item[0])
    if len(positioned) < 2:
        raise PatientFileError(
            first_path, "a single slice is not a volume; the series needs ≥ 2 slices"
        )
    distances = np.diff([item[0] for item in positioned])
    for index, gap in enumerate(distances):
        if gap < POSITION_TOLERANCE_MM:
            raise PatientFileError(
                positioned[index + 1][2],
                f"has the same slice position as {positioned[index][2].name} (duplicate slice)",
            )
    step = float(np.median(distances))
    tolerance = max(POSITION_TOLERANCE_MM, SPACING_TOLERANCE * step)
    for index, gap in enumerate(distances):
        if abs(gap - step) <= tolerance:
            continue
        before, after = positioned[index][2], positioned[index + 1][2]
        missing = gap / step - 1.0
        if abs(missing - round(missing)) * step <= tolerance and round(missing) >= 1:
            raise PatientFileError(
                after,
                f"missing slice: gap of {gap:.2f} mm after {before.name} where slices are "
                f"{step:.2f} mm apart ({int(round(missing))} slice(s) absent)",
            )
        raise PatientFileError(
            after,
            f"inconsistent slice spacing: {gap:.2f} mm after {before.name}, "
            f"{step:.2f} mm elsewhere",
        )
    first_position, last_position = positioned[0][1], positioned[-1][1]
    step_vector = (last_position - first_position) / (len(positioned) - 1)
    for k, (_, position, path, _) in enumerate(positioned):
        # a gantry-tilted series drifts in-plane at a constant rate; a single shifted slice does not
        drift = np.linalg.norm(position - (first_position + k * step_vector))
        if drift > max(0.5 * spacing.min(), POSITION_TOLERANCE_MM * 10):
            raise PatientFileError(
                path,
                f"ImagePositionPatient is {drift:.2f} mm off the line through the other slices "
                "(a shifted slice or a mixed series)",
            )
    volume = np.empty((columns, rows, len(positioned)), dtype=np.int16)
    for k, (_, _, path, ds) in enumerate(positioned):
        try:
            pixels = ds.pixel_array
        except Exception as error:
            raise PatientFileError(
                path, f"pixel data is truncated or unreadable ({error})"
            ) from None
        if pixels.shape != (rows, columns):
            raise PatientFileError(
                path, f"pixel data has shape {pixels.shape}, expected {(rows, columns)}"
            )
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        hu = np.rint(pixels.astype(np.float64) * slope + intercept)
        volume[:, :, k] = np.clip(hu, -32768, 32767).astype(np.int16).T
    lps_from_voxel = np.eye(4)
    lps_from_voxel[:3, 0] = row_dir * spacing[1]
    lps_from_voxel[:3, 1] = col_dir * spacing[0]
    lps_from_voxel[:3, 2] = step_vector
    lps_from_voxel[:3, 3] = positioned[0][1]
    return DicomSeries(
        hu=volume,
        lps_from_voxel=lps_from_voxel,
        files=[item[2] for item in positioned],
        series_uid=series_uid,
        description=str(first.get("SeriesDescription", "")),
    )
