"""Import a real CT (DICOM series folder, NIfTI or NRRD) into a :class:`Patient`, or re-import an export.

``import_ct(path, labels_path=None, landmarks_path=None)`` accepts:

- a folder of DICOM files holding one CT series (or any ``.dcm`` file inside it),
- a ``.nii`` / ``.nii.gz`` or ``.nrrd`` / ``.nhdr`` volume in Hounsfield units,
- a folder written by :func:`models.io.export.export_patient` (``hu.nii.gz`` with its labels,
  label names, landmarks and parameters, all picked up automatically).

An optional label map (NIfTI or NRRD, integer values 0–255, same grid as the CT) gives the labels;
their names come from a JSON ``{name: value}`` beside it (``<stem>.json`` or ``labels.json``) or
from a 3D Slicer ``.seg.nrrd`` header (``SegmentN_Name`` / ``SegmentN_LabelValue``), else
``label_<value>``. Without a label map every voxel is ``background`` (0). Landmarks come from a
Slicer ``.mrk.json`` or a fluorosim ``landmarks.json``. Every problem raises
:class:`PatientFileError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.io import PatientFileError, markups
from models.patient import BACKGROUND_LABEL, Patient

__all__ = ["PatientFileError", "import_ct", "read_volume"]

#: A CT in HU always holds fat (−100 HU) or air (−1000 HU) somewhere; a volume whose lowest value
#: is above this is not a CT in Hounsfield units (an MR, a mask, or raw unscaled CT numbers).
MIN_PLAUSIBLE_LOWEST_HU = -50.0
#: Direction cosines this close to ±1 count as exactly along an LPS axis (no resampling needed).
AXIS_ALIGNED_TOLERANCE = 1e-4
#: Largest distance (mm) between the CT and label-map grids' voxel centres still taken as "same".
GRID_TOLERANCE_MM = 0.01


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_volume(path: str | Path) -> tuple[NDArray, NDArray[np.float64], str]:
    """``(array[i, j, k], lps_from_voxel, format)`` of a NIfTI, NRRD or DICOM-series volume."""
    from models.io import dicom, nifti, nrrd

    path = Path(path)
    if not path.exists():
        raise PatientFileError(path, "file or folder not found")
    if path.is_dir():
        series = dicom.read_ct_series(path)
        return series.hu, series.lps_from_voxel, "dicom"
    suffix = _suffix(path)
    if suffix in (".nii", ".nii.gz"):
        data, lps_from_voxel = nifti.read_nifti(path)
        return data, lps_from_voxel, "nifti"
    if suffix in (".nrrd", ".nhdr"):
        data, lps_from_voxel = nrrd.read_nrrd(path)
        return data, lps_from_voxel, "nrrd"
    if suffix == ".dcm":
        series = dicom.read_ct_series(path.parent)
        return series.hu, series.lps_from_voxel, "dicom"
    raise PatientFileError(
        path, "unknown volume format; expected a DICOM folder, .nii, .nii.gz, .nrrd or .nhdr"
    )


def _as_hu(path: Path, data: NDArray) -> NDArray[np.int16]:
    if data.dtype.kind not in "iuf":
        raise PatientFileError(path, f"voxel type {data.dtype} is not numeric")
    values = np.asarray(data, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise PatientFileError(path, "voxel data contains NaN or infinite values")
    lowest = float(values.min())
    if lowest > MIN_PLAUSIBLE_LOWEST_HU:
        raise PatientFileError(
            path,
            f"does not look like a CT in Hounsfield units: the lowest value is {lowest:g} "
            "(air is −1000 HU, fat about −100 HU); is it an MR, a mask, or unscaled CT numbers?",
        )
    if values.max() > 32767 or lowest < -32768:
        raise PatientFileError(path, "values outside the 16-bit HU range")
    return np.rint(values).astype(np.int16)


def _label_names(labels_path: Path, values: NDArray) -> dict[str, int]:
    table = {BACKGROUND_LABEL: 0}
    stem = labels_path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    for candidate in (labels_path.parent / f"{stem}.json", labels_path.parent / "labels.json"):
        if candidate.is_file():
            try:
                named = json.loads(candidate.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise PatientFileError(
                    candidate, f"label names are not valid JSON ({error})"
                ) from None
            if not isinstance(named, dict) or not all(
                isinstance(v, int) and 0 <= v <= 255 for v in named.values()
            ):
                raise PatientFileError(candidate, "label names must map each name to a value 0–255")
            table.update({str(name): int(v) for name, v in named.items()})
            break
    if _suffix(labels_path) in (".nrrd", ".nhdr"):
        from models.io.nrrd import segment_names

        table.update(segment_names(labels_path))
    known = set(table.values())
    for value in np.unique(values):
        if int(value) not in known:
            table[f"label_{int(value)}"] = int(value)
    return table


def _read_labels(
    labels_path: Path, shape: tuple[int, ...], lps_from_voxel: NDArray[np.float64]
) -> tuple[NDArray[np.uint8], dict[str, int]]:
    data, label_affine, _ = read_volume(labels_path)
    if data.shape != shape:
        raise PatientFileError(
            labels_path, f"label map shape {data.shape} differs from the CT's {shape}"
        )
    corners = np.array([[0, 0, 0, 1], [shape[0] - 1, shape[1] - 1, shape[2] - 1, 1]], float).T
    offset = np.abs(label_affine @ corners - lps_from_voxel @ corners).max()
    if offset > GRID_TOLERANCE_MM:
        raise PatientFileError(
            labels_path, f"label map grid is {offset:.3f} mm away from the CT's; resample it first"
        )
    values = np.asarray(data)
    if values.dtype.kind == "f" and (
        not np.all(np.isfinite(values)) or np.any(values != np.rint(values))
    ):
        raise PatientFileError(labels_path, "label values must be whole numbers")
    if values.min() < 0 or values.max() > 255:
        raise PatientFileError(
            labels_path, f"label values {values.min()}…{values.max()} are outside 0–255"
        )
    labels = values.astype(np.uint8)
    return labels, _label_names(labels_path, labels)


def to_lps_axes(
    hu: NDArray[np.int16], labels: NDArray[np.uint8], lps_from_voxel: NDArray[np.float64]
) -> tuple[NDArray[np.int16], NDArray[np.uint8], NDArray[np.float64], str]:
    """The volume with i → Left, j → Posterior, k → Superior and a positive diagonal affine.

    The DRR kernels need voxel axes along the LPS axes (as the generated patient has). A volume
    whose axes are a permutation/flip of them (a RAS-oriented NIfTI, a sagittal series) is
    transposed and flipped exactly; an oblique one (tilted acquisition) is resampled onto an
    axis-aligned grid of the same voxel sizes (trilinear for HU, nearest for labels; outside
    the scan is −1000 HU / background). Returns ``(hu, labels, lps_from_voxel, how)`` with
    ``how`` in {"unchanged", "permuted", "resampled"}.
    """
    matrix = np.asarray(lps_from_voxel, dtype=np.float64)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    cosines = matrix[:3, :3] / spacing
    target_axis = np.argmax(np.abs(cosines), axis=0)  # LPS axis each voxel axis runs along
    aligned = sorted(target_axis.tolist()) == [0, 1, 2] and np.all(
        np.abs(cosines[target_axis, [0, 1, 2]]) > 1.0 - AXIS_ALIGNED_TOLERANCE
    )
    if aligned:
        order = [int(np.flatnonzero(target_axis == lps_axis)[0]) for lps_axis in range(3)]
        hu, labels = np.transpose(hu, order), np.transpose(labels, order)
        new = np.eye(4)
        new[:3, :3] = np.diag(spacing[order])
        new[:3, 3] = matrix[:3, 3]
        flips = []
        for axis in range(3):
            column = matrix[:3, order[axis]]
            if column[axis] < 0:
                flips.append(axis)
                new[:3, 3] += column * (hu.shape[axis] - 1)
        if flips:
            hu, labels = np.flip(hu, flips), np.flip(labels, flips)
        how = "unchanged" if order == [0, 1, 2] and not flips else "permuted"
        return np.ascontiguousarray(hu), np.ascontiguousarray(labels), new, how
    from scipy import ndimage

    shape = np.array(hu.shape)
    corners = np.array(
        [
            [i, j, k, 1.0]
            for i in (0, shape[0] - 1)
            for j in (0, shape[1] - 1)
            for k in (0, shape[2] - 1)
        ]
    )
    corners_lps = corners @ matrix[:3].T
    new_spacing = np.array([spacing[int(np.argmax(np.abs(cosines[axis])))] for axis in range(3)])
    low, high = corners_lps.min(axis=0), corners_lps.max(axis=0)
    new_shape = tuple(int(n) for n in np.floor((high - low) / new_spacing + 1e-6) + 1)
    new = np.eye(4)
    new[:3, :3] = np.diag(new_spacing)
    new[:3, 3] = low
    old_from_new = np.linalg.inv(matrix) @ new
    resampled_hu = ndimage.affine_transform(
        hu.astype(np.float32),
        old_from_new[:3, :3],
        old_from_new[:3, 3],
        new_shape,
        order=1,
        cval=-1000.0,
    )
    resampled_labels = ndimage.affine_transform(
        labels, old_from_new[:3, :3], old_from_new[:3, 3], new_shape, order=0, cval=0
    )
    return (
        np.rint(resampled_hu).astype(np.int16),
        resampled_labels.astype(np.uint8),
        new,
        "resampled",
    )


def _exported_folder(path: Path) -> dict:
    """Defaults when ``path`` is a folder written by ``export_patient``."""
    defaults: dict = {"volume": path / "hu.nii.gz", "parameters": {}}
    for name, key in (("labels.nii.gz", "labels"), ("landmarks.json", "landmarks")):
        if (path / name).is_file():
            defaults[key] = path / name
    record_path = path / "patient.json"
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PatientFileError(record_path, f"not valid JSON ({error})") from None
        defaults["parameters"] = dict(record.get("parameters") or {})
        defaults["parameters"]["exported_source"] = str(record.get("source", ""))
    return defaults


def import_ct(
    path: str | Path,
    labels_path: str | Path | None = None,
    landmarks_path: str | Path | None = None,
    lps_axes: bool = True,
) -> Patient:
    """A :class:`Patient` from a CT (see the module docstring); PatientFileError on bad input.

    With ``lps_axes`` (default) the volume is brought to i → L, j → P, k → S with
    :func:`to_lps_axes`, as the renderer needs; ``parameters["lps_axes"]`` says what was done.
    """
    path = Path(path)
    parameters: dict = {}
    source = f"imported:{path}"
    volume_path = path
    if path.is_dir() and (path / "hu.nii.gz").is_file():
        defaults = _exported_folder(path)
        volume_path = defaults["volume"]
        labels_path = labels_path or defaults.get("labels")
        landmarks_path = landmarks_path or defaults.get("landmarks")
        parameters = defaults["parameters"]
    data, lps_from_voxel, file_format = read_volume(volume_path)
    hu = _as_hu(volume_path, data)
    if labels_path is not None:
        labels, label_table = _read_labels(Path(labels_path), hu.shape, lps_from_voxel)
    else:
        labels, label_table = np.zeros(hu.shape, np.uint8), {BACKGROUND_LABEL: 0}
    landmarks = markups.read_landmarks(landmarks_path) if landmarks_path is not None else {}
    parameters = {
        **parameters,
        "imported_from": str(path),
        "import_format": file_format,
    }
    if lps_axes:
        hu, labels, lps_from_voxel, how = to_lps_axes(hu, labels, lps_from_voxel)
        parameters["lps_axes"] = how
    return Patient(
        hu=hu,
        labels=labels,
        lps_from_voxel=lps_from_voxel,
        label_table=label_table,
        landmarks=landmarks,
        parameters=parameters,
        source=source,
    )
