"""Write a patient to a folder a lab can open elsewhere: NIfTI, DICOM, landmarks, meshes, metadata.

``export_patient(patient, out_dir, dicom=False)`` writes::

    hu.nii.gz, labels.nii.gz     volumes; affine = RAS_FROM_LPS @ lps_from_voxel (see nifti.py)
    labels.json                  {label name: value}
    landmarks.json               {"frame": "LPS", "units": "mm", "landmarks": {name: point(s)}}
    landmarks.mrk.json           the same landmarks as a 3D Slicer markups file (LPS)
    meshes/<structure>.stl       closed, smoothed surfaces in mm, LPS (3D-printable)
    meshes/landmarks.mrk.json    the registration landmarks beside the meshes
    dicom/CT_0001.dcm …          with dicom=True: one CT Image Storage file per axial slice
    patient.json                 parameters, generator version, geometry and the list of files

Reading the folder back with :func:`models.io.ct_import.import_ct` gives the same patient.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fluorosim.models.io import markups, nifti
from fluorosim.models.patient import BACKGROUND_LABEL, Patient
from fluorosim.models.tissue import BULK_LABELS

PATIENT_FORMAT = "fluorosim-patient"
PATIENT_FORMAT_VERSION = 1
#: Vertebral levels whose parts are merged into one printable bone.
VERTEBRA_PARTS = ("body", "pedicle_left", "pedicle_right", "posterior_elements")
#: Bulk soft tissue: not meshed one by one (the body envelope mesh stands for them): the tissue
#: table's bulk labels (air, skin, fat, muscle) and the bowel, which a finding does name as a
#: structure nearby but the export leaves inside the body envelope.
BULK_TISSUES = BULK_LABELS | {BACKGROUND_LABEL, "bowel"}
#: Patient parameter ``sex`` → DICOM PatientSex (PS3.3 C.7.1.1).
DICOM_SEX = {"female": "F", "f": "F", "male": "M", "m": "M"}
#: The body envelope is meshed at this voxel stride (it is large and needs no fine detail).
BODY_STRIDE = 2


def mesh_groups(label_table: Mapping[str, int]) -> dict[str, list[str]]:
    """Which labels make each exported mesh: one per vertebra (parts merged), one per other label.

    Bulk tissues (:data:`BULK_TISSUES`) are left out; ``export_patient`` adds a body envelope.
    """
    groups: dict[str, list[str]] = {}
    used: set[str] = set()
    for name in sorted(label_table):
        for part in VERTEBRA_PARTS:
            suffix = f"_{part}"
            if name.endswith(suffix) and not name.startswith(("disc_", "root_")):
                level = name[: -len(suffix)]
                groups.setdefault(f"{level}_vertebra", []).append(name)
                used.add(name)
    for name in sorted(label_table):
        if name not in used and name not in BULK_TISSUES:
            groups[name] = [name]
    return groups


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def generator_version(patient: Patient) -> str:
    """The generator version stated by the patient, else fluorosim's (models.phantom states none)."""
    stated = patient.parameters.get("generator_version")
    if stated:
        return str(stated)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fluorosim {version('fluorosim')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "fluorosim (unknown version)"


def export_meshes(
    patient: Patient,
    mesh_dir: str | Path,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write one STL per :func:`mesh_groups` entry plus ``body.stl`` and ``landmarks.mrk.json``."""
    from scipy import ndimage

    from fluorosim.models.io.meshes import mask_mesh, write_stl

    mesh_dir = Path(mesh_dir)
    mesh_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    boxes = ndimage.find_objects(patient.labels)
    for mesh_name, names in mesh_groups(patient.label_table).items():
        values = [patient.label_table[name] for name in names]
        found = [boxes[v - 1] for v in values if 0 < v <= len(boxes) and boxes[v - 1] is not None]
        if not found:
            continue
        low = np.min([[s.start for s in box] for box in found], axis=0)
        high = np.max([[s.stop for s in box] for box in found], axis=0)
        crop = patient.labels[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
        shift = np.eye(4)
        shift[:3, 3] = low
        mesh = mask_mesh(np.isin(crop, values), patient.lps_from_voxel @ shift)
        if mesh.n_points == 0:
            continue
        written.append(write_stl(mesh, mesh_dir / f"{mesh_name}.stl"))
        if progress:
            progress(mesh_name)
    body = ndimage.binary_fill_holes(
        patient.labels[::BODY_STRIDE, ::BODY_STRIDE, ::BODY_STRIDE] != 0
    )
    body_mesh = mask_mesh(
        body, patient.lps_from_voxel @ np.diag([BODY_STRIDE] * 3 + [1]), decimate=0.8
    )
    if body_mesh.n_points:
        written.append(write_stl(body_mesh, mesh_dir / "body.stl"))
    written.append(markups.write_markups(mesh_dir / "landmarks.mrk.json", patient.landmarks))
    return written


def export_patient(
    patient: Patient,
    out_dir: str | Path,
    dicom: bool = False,
    meshes: bool = True,
) -> list[Path]:
    """Write the patient files listed in the module docstring into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        nifti.write_nifti(
            out_dir / "hu.nii.gz", patient.hu.astype(np.int16), patient.lps_from_voxel
        ),
        nifti.write_nifti(
            out_dir / "labels.nii.gz", patient.labels.astype(np.uint8), patient.lps_from_voxel
        ),
    ]
    labels_json = out_dir / "labels.json"
    labels_json.write_text(
        json.dumps(
            {name: int(v) for name, v in sorted(patient.label_table.items(), key=lambda x: x[1])},
            indent=1,
        )
    )
    written.append(labels_json)
    written.append(markups.write_landmarks_json(out_dir / "landmarks.json", patient.landmarks))
    written.append(markups.write_markups(out_dir / "landmarks.mrk.json", patient.landmarks))
    if meshes:
        written.extend(export_meshes(patient, out_dir / "meshes"))
    if dicom:
        from fluorosim.models.io.dicom import write_ct_series

        seed = patient.parameters.get("seed", 0)
        written.extend(
            write_ct_series(
                out_dir / "dicom",
                patient.hu,
                patient.lps_from_voxel,
                patient_id=f"FLUOROSIM-{seed}",
                patient_sex=DICOM_SEX.get(str(patient.parameters.get("sex", "")).lower(), ""),
                patient_age_years=patient.parameters.get("age_years"),
                uid_seed=f"fluorosim:{generator_version(patient)}:{seed}:{patient.source}",
            )
        )
    patient_json = out_dir / "patient.json"
    record = {
        "format": PATIENT_FORMAT,
        "version": PATIENT_FORMAT_VERSION,
        "generator_version": generator_version(patient),
        "source": patient.source,
        "frame": "LPS",
        "units": "mm",
        "shape": list(patient.shape),
        "spacing_mm": [float(v) for v in patient.spacing_mm],
        "lps_from_voxel": patient.lps_from_voxel.tolist(),
        "parameters": patient.parameters,
        "files": sorted(str(p.relative_to(out_dir)) for p in written),
    }
    patient_json.write_text(json.dumps(record, indent=1, default=_json_default))
    written.append(patient_json)
    return written
