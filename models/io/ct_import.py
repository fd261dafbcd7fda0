"""Import a real CT (DICOM series folder, NIfTI or NRRD) into a :class:`Patient`, or re-import an export.

``import_ct(path, labels_path=None, landmarks_path=None)`` accepts:

- a folder of DICOM files holding one CT series (or any ``.dcm`` file inside it),
- a ``.nii`` / ``.nii.gz`` or ``.nrrd`` / ``.nhdr`` volume in Hounsfield units,
- a folder written by :func:`models.io.export.export_patient` (``hu.nii.gz`` with its labels,
  label names, landmarks and parameters, all picked up automatically).

An optional label map (NIfTI or NRRD, integer values 0–255, same grid as the CT) gives the labels;
their names come from a JSON ``{name: value}`` beside it (``<stem>.json`` or ``labels.json``) or
from a 3D Slicer ``.seg.nrrd`` header (``SegmentN_Name`` / ``SegmentN_LabelValue``), else
``label_<value>``. The label map may instead be a FOLDER of binary masks, one structure per file
(``vertebrae_L4.nii.gz``, ``hip_left.nii.gz``…, as TotalSegmentator writes them;
:func:`read_mask_folder`): TotalSegmentator names become fluorosim label names through
:data:`TOTALSEGMENTATOR_LABELS` (what each mapping approximates is recorded in
``parameters["label_notes"]``), other names are kept as they are. Without a label map every voxel
is ``background`` (0). Landmarks come from a Slicer ``.mrk.json`` or a fluorosim
``landmarks.json``; with ``compute_landmarks`` the landmarks the bone labels allow are
computed as well (:mod:`models.io.ct_landmarks`; a landmark file's points win). Every problem
raises :class:`PatientFileError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.io import PatientFileError, markups
from fluorosim.models.patient import BACKGROUND_LABEL, Patient

__all__ = ["PatientFileError", "import_ct", "read_mask_folder", "read_volume", "volume_digest"]

#: A CT in HU always holds fat (−100 HU) or air (−1000 HU) somewhere; a volume whose lowest value
#: is above this is not a CT in Hounsfield units (an MR, a mask, or raw unscaled CT numbers).
MIN_PLAUSIBLE_LOWEST_HU = -50.0
#: Direction cosines this close to ±1 count as exactly along an LPS axis (no resampling needed).
AXIS_ALIGNED_TOLERANCE = 1e-4
#: Largest distance (mm) between the CT and label-map grids' voxel centres still taken as "same".
GRID_TOLERANCE_MM = 0.01
#: Suffixes of the per-structure mask files read from a mask folder.
MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")

#: TotalSegmentator structure name → (fluorosim label, what the mapping means). TotalSegmentator
#: segments each vertebra and each hip bone whole; fluorosim splits a vertebra into body, pedicles
#: and posterior elements and calls the hip bone "ilium", so those mappings are approximations.
TOTALSEGMENTATOR_LABELS: dict[str, tuple[str, str]] = {
    **{
        f"vertebrae_{level}": (
            f"{level}_body",
            f"whole {level} vertebra (body, pedicles and posterior elements in one label)",
        )
        for level in ("L1", "L2", "L3", "L4", "L5")
    },
    "sacrum": ("sacrum", "sacrum"),
    "vertebrae_S1": ("sacrum", "S1 vertebra, counted as sacrum"),
    "hip_left": ("ilium_left", "whole left hip bone (ilium, ischium and pubis)"),
    "hip_right": ("ilium_right", "whole right hip bone (ilium, ischium and pubis)"),
    "femur_left": ("femur_left", "left femur (the part inside the scan)"),
    "femur_right": ("femur_right", "right femur (the part inside the scan)"),
    "aorta": ("aorta", "aorta"),
    "inferior_vena_cava": ("vena_cava", "inferior vena cava"),
    "iliac_artery_left": ("common_iliac_artery_left", "left iliac artery (common and external)"),
    "iliac_artery_right": (
        "common_iliac_artery_right",
        "right iliac artery (common and external)",
    ),
    "iliac_vena_left": ("common_iliac_vein_left", "left iliac vein"),
    "iliac_vena_right": ("common_iliac_vein_right", "right iliac vein"),
    "iliopsoas_left": ("psoas_left", "left iliopsoas (psoas and iliacus)"),
    "iliopsoas_right": ("psoas_right", "right iliopsoas (psoas and iliacus)"),
    "autochthon_left": ("paraspinal_left", "left autochthonous back muscles"),
    "autochthon_right": ("paraspinal_right", "right autochthonous back muscles"),
    "small_bowel": ("bowel", "small bowel"),
    "duodenum": ("bowel", "duodenum, counted as bowel"),
    "colon": ("bowel", "colon, counted as bowel"),
}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_volume(path: str | Path) -> tuple[NDArray[Any], NDArray[np.float64], str]:
    """``(array[i, j, k], lps_from_voxel, format)`` of a NIfTI, NRRD or DICOM-series volume."""
    from fluorosim.models.io import dicom, nifti, nrrd

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


def _as_hu(path: Path, data: NDArray[Any]) -> NDArray[np.int16]:
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


def _label_names(labels_path: Path, values: NDArray[Any]) -> dict[str, int]:
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
        from fluorosim.models.io.nrrd import segment_names

        table.update(segment_names(labels_path))
    known = set(table.values())
    for value in np.unique(values):
        if int(value) not in known:
            table[f"label_{int(value)}"] = int(value)
    return table


def _check_grid(
    path: Path,
    data: NDArray[Any],
    affine: NDArray[np.float64],
    shape: tuple[int, ...],
    lps_from_voxel: NDArray[np.float64],
    what: str = "label map",
) -> None:
    if data.shape != shape:
        raise PatientFileError(path, f"{what} shape {data.shape} differs from the CT's {shape}")
    corners = np.array([[0, 0, 0, 1], [shape[0] - 1, shape[1] - 1, shape[2] - 1, 1]], float).T
    offset = np.abs(affine @ corners - lps_from_voxel @ corners).max()
    if offset > GRID_TOLERANCE_MM:
        raise PatientFileError(
            path, f"{what} grid is {offset:.3f} mm away from the CT's; resample it first"
        )


def _mask_name(path: Path) -> str | None:
    lower = path.name.lower()
    for suffix in MASK_SUFFIXES:
        if lower.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def read_mask_folder(
    folder: str | Path, shape: tuple[int, ...], lps_from_voxel: NDArray[np.float64]
) -> tuple[NDArray[np.uint8], dict[str, int], list[str]]:
    """``(labels, label table, notes)`` from a folder of binary masks on the CT's grid.

    Each ``<name>.nii.gz`` (or .nii/.nrrd) holds one structure (non-zero inside, 0 outside). A
    TotalSegmentator name is mapped through :data:`TOTALSEGMENTATOR_LABELS` (a fluorosim label
    keeps its value from :data:`models.labels.LABEL_TABLE`); another name is kept as its own
    label. Bone is painted over soft tissue where masks overlap. ``notes`` says, per mask, what
    the label stands for (and which masks were empty).
    """
    from fluorosim.models.labels import LABEL_TABLE

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and _mask_name(p))
    if not files:
        raise PatientFileError(folder, "no mask files (.nii.gz, .nii, .nrrd) in this label folder")
    masks: list[tuple[str, NDArray[np.bool_]]] = []
    notes: list[str] = []
    for path in files:
        data, affine, _ = read_volume(path)
        _check_grid(path, data, affine, shape, lps_from_voxel, what="mask")
        values = np.asarray(data)
        if values.dtype.kind not in "iufb" or (
            values.dtype.kind == "f" and not np.all(np.isfinite(values))
        ):
            raise PatientFileError(path, "mask values must be finite numbers (0 outside)")
        stem = _mask_name(path) or path.name
        label, meaning = TOTALSEGMENTATOR_LABELS.get(stem, (stem, stem))
        inside = values != 0
        if not inside.any():
            notes.append(f"{stem}: empty mask, skipped")
            continue
        masks.append((label, inside))
        notes.append(f"{stem} → {label}: {meaning}")
    table = {BACKGROUND_LABEL: 0}
    next_free = max(LABEL_TABLE.values()) + 1
    for label, _ in masks:
        if label in table:
            continue
        if label in LABEL_TABLE:
            table[label] = LABEL_TABLE[label]
        else:
            while next_free in table.values():
                next_free += 1
            if next_free > 255:
                raise PatientFileError(folder, "more than 255 structures: they do not fit uint8")
            table[label] = next_free
    from fluorosim.models.tissue import BONE_LABELS

    labels = np.zeros(shape, np.uint8)
    for label, inside in sorted(masks, key=lambda m: m[0] in BONE_LABELS):
        labels[inside] = table[label]
    return labels, table, notes


def _read_labels(
    labels_path: Path, shape: tuple[int, ...], lps_from_voxel: NDArray[np.float64]
) -> tuple[NDArray[np.uint8], dict[str, int]]:
    data, label_affine, _ = read_volume(labels_path)
    _check_grid(labels_path, data, label_affine, shape, lps_from_voxel)
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
            hu, labels = np.flip(hu, tuple(flips)), np.flip(labels, tuple(flips))
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


def _exported_folder(path: Path) -> dict[str, Any]:
    """Defaults when ``path`` is a folder written by ``export_patient``."""
    defaults: dict[str, Any] = {"volume": path / "hu.nii.gz", "parameters": {}}
    for name, key in (("labels.nii.gz", "labels"), ("landmarks.json", "landmarks")):
        if (path / name).is_file():
            defaults[key] = path / name
    record_path = path / "patient.json"
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PatientFileError(record_path, f"not valid JSON ({error})") from None
        if not isinstance(record, dict) or record.get("format", "fluorosim-patient") != (
            "fluorosim-patient"
        ):
            found = record.get("format") if isinstance(record, dict) else type(record).__name__
            raise PatientFileError(
                record_path, f"format is {found!r}, expected 'fluorosim-patient'"
            )
        defaults["parameters"] = dict(record.get("parameters") or {})
        defaults["parameters"]["exported_source"] = str(record.get("source", ""))
    return defaults


def _check_landmarks_inside(
    path: Path,
    landmarks: dict[str, NDArray[np.float64]],
    shape: tuple[int, ...],
    lps_from_voxel: NDArray[np.float64],
) -> None:
    """Refuse a landmark file most of whose points lie outside the CT (another patient's file,
    or RAS coordinates read as LPS): the views would aim at empty space."""
    points = np.concatenate([np.reshape(v, (-1, 3)) for v in landmarks.values()])
    ijk = (np.linalg.inv(lps_from_voxel) @ np.column_stack([points, np.ones(len(points))]).T)[:3]
    margin = 0.5 + 10.0 / np.linalg.norm(lps_from_voxel[:3, :3], axis=0)[:, None]  # 10 mm
    inside = np.all((ijk >= -margin) & (ijk <= np.array(shape)[:, None] - 1 + margin), axis=0)
    outside = int(np.count_nonzero(~inside))
    if outside > len(points) / 2:
        raise PatientFileError(
            path,
            f"{outside} of {len(points)} landmark points lie outside the CT volume; is it another "
            "patient's file, or RAS coordinates in a file that says LPS?",
        )


def volume_digest(
    hu: NDArray[Any], labels: NDArray[Any], lps_from_voxel: NDArray[np.float64]
) -> str:
    """Content digest of an imported volume: SHA-256 of its HU, labels and grid (16 hex digits).

    Two imports of the same CT with the same label map give the same digest wherever the files
    live; any change to a voxel, a label or the voxel → LPS transform gives another.
    """
    import hashlib

    digest = hashlib.sha256()
    for array in (
        np.ascontiguousarray(hu, dtype="<i2"),
        np.ascontiguousarray(labels, dtype=np.uint8),
        np.ascontiguousarray(np.round(np.asarray(lps_from_voxel, float), 6), dtype="<f8"),
    ):
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return f"ct-sha256:{digest.hexdigest()[:16]}"


def import_ct(
    path: str | Path,
    labels_path: str | Path | None = None,
    landmarks_path: str | Path | None = None,
    lps_axes: bool = True,
    compute_landmarks: bool = False,
) -> Patient:
    """A :class:`Patient` from a CT (see the module docstring); PatientFileError on bad input.

    With ``lps_axes`` (default) the volume is brought to i → L, j → P, k → S with
    :func:`to_lps_axes`, as the renderer needs; ``parameters["lps_axes"]`` says what was done.
    ``parameters["ct_digest"]`` is :func:`volume_digest` of the result (the patient's version in
    recordings). With ``compute_landmarks`` the landmarks the labels allow are added
    (:func:`models.io.ct_landmarks.landmarks_from_labels`; names in
    ``parameters["computed_landmarks"]``, approximations in ``parameters["landmark_notes"]``);
    points read from a landmark file or an exported folder are kept as they are.
    """
    path = Path(path)
    parameters: dict[str, Any] = {}
    source = f"imported:{path}"
    volume_path = path
    exported = False
    if path.is_dir() and (path / "hu.nii.gz").is_file():
        defaults = _exported_folder(path)
        volume_path = defaults["volume"]
        labels_path = labels_path or defaults.get("labels")
        landmarks_path = landmarks_path or defaults.get("landmarks")
        parameters = defaults["parameters"]
        exported = True
    data, lps_from_voxel, file_format = read_volume(volume_path)
    hu = _as_hu(volume_path, data)
    label_notes: list[str] = []
    if labels_path is not None and Path(labels_path).is_dir():
        labels, label_table, label_notes = read_mask_folder(
            Path(labels_path), hu.shape, lps_from_voxel
        )
    elif labels_path is not None:
        labels, label_table = _read_labels(Path(labels_path), hu.shape, lps_from_voxel)
    else:
        labels, label_table = np.zeros(hu.shape, np.uint8), {BACKGROUND_LABEL: 0}
    landmarks = markups.read_landmarks(landmarks_path) if landmarks_path is not None else {}
    if landmarks:
        _check_landmarks_inside(
            Path(cast("str | Path", landmarks_path)), landmarks, hu.shape, lps_from_voxel
        )
    parameters = {
        **parameters,
        "imported_from": str(path),
        "import_format": file_format,
    }
    if label_notes:
        parameters["label_notes"] = label_notes
    if lps_axes:
        hu, labels, lps_from_voxel, how = to_lps_axes(hu, labels, lps_from_voxel)
        parameters["lps_axes"] = how
    parameters["ct_digest"] = volume_digest(hu, labels, lps_from_voxel)
    patient = Patient(
        hu=hu,
        labels=labels,
        lps_from_voxel=lps_from_voxel,
        label_table=label_table,
        landmarks=landmarks,
        parameters=parameters,
        source=source,
    )
    if compute_landmarks and not exported and lps_axes:
        from fluorosim.models.io.ct_landmarks import landmarks_from_labels

        computed, notes = landmarks_from_labels(patient)
        added = sorted(name for name in computed if name not in patient.landmarks)
        patient.landmarks.update({name: computed[name] for name in added})
        parameters["computed_landmarks"] = added
        parameters["landmark_notes"] = notes
    return patient
