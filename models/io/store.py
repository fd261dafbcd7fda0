"""Named imported patients kept in the user data folder, and ``--patient NAME|PATH`` resolution.

``fluorosim phantom import CT --name NAME`` imports a CT (with its label map or mask folder and
landmarks, :func:`models.io.ct_import.import_ct`) and keeps it as an exported patient folder
(:func:`models.io.export.export_patient`, no meshes) under :func:`patients_dir`::

    <user data dir>/fluorosim/patients/<NAME>/hu.nii.gz, labels.nii.gz, labels.json,
                                              landmarks.json, landmarks.mrk.json, patient.json

(``$FLUOROSIM_PATIENTS_DIR`` overrides the folder). :func:`load_patient` takes a stored NAME, or
a PATH to a CT file, a DICOM folder or an exported patient folder, and says plainly which it could
not find. A stored patient remembers its name (``parameters["patient_name"]``) so recordings name
it, and its volume digest (``parameters["ct_digest"]``) so a replay can tell it is the same CT.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from fluorosim.models.io import PatientFileError
from fluorosim.models.patient import Patient

PATIENTS_ENV = "FLUOROSIM_PATIENTS_DIR"
#: A stored patient's name: letters, digits, dot, dash, underscore; 1–64 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PatientStoreError(ValueError):
    """A stored patient that cannot be named, found or written (message says which and why)."""


def patients_dir() -> Path:
    """``$FLUOROSIM_PATIENTS_DIR``, else ``<platformdirs user data dir>/fluorosim/patients``."""
    override = os.environ.get(PATIENTS_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("fluorosim")) / "patients"


def check_name(name: str) -> str:
    """The name if it can name a stored patient, else PatientStoreError saying what is allowed."""
    if not NAME_PATTERN.match(name or ""):
        raise PatientStoreError(
            f"patient name {name!r}: use 1–64 letters, digits, '.', '-' or '_' "
            "(starting with a letter or digit)"
        )
    return name


def stored_names(root: Path | None = None) -> list[str]:
    """Names of the stored patients, sorted."""
    root = root or patients_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "patient.json").is_file())


def save_patient(
    patient: Patient, name: str, root: Path | None = None, overwrite: bool = False
) -> Path:
    """Write the patient as ``<root>/<name>/`` (atomically: a finished folder or none)."""
    from fluorosim.models.io.export import export_patient

    check_name(name)
    root = root or patients_dir()
    target = root / name
    if target.exists() and not overwrite:
        raise PatientStoreError(
            f"a patient named {name!r} is already stored in {root}; choose another --name "
            "or add --overwrite"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        patient.parameters["patient_name"] = name
        export_patient(patient, staging, meshes=False)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_patient(reference: str | Path, root: Path | None = None) -> Patient:
    """The patient a ``--patient`` value names: a stored NAME, or a CT / exported-folder PATH.

    A stored name wins over a relative path of the same spelling. Raises PatientStoreError when
    neither exists and PatientFileError (naming the file) when the files cannot be used.
    """
    from fluorosim.models.io.ct_import import import_ct

    text = str(reference)
    root = root or patients_dir()
    if NAME_PATTERN.match(text) and (root / text / "patient.json").is_file():
        patient = import_ct(root / text)
        patient.parameters["patient_name"] = text
        return patient
    path = Path(text).expanduser()
    if path.exists():
        return import_ct(path)
    stored = stored_names(root)
    known = f"stored patients: {', '.join(stored)}" if stored else "no patients are stored yet"
    raise PatientStoreError(
        f"--patient {text}: no stored patient of that name and no such file or folder "
        f"({known}; import one with: fluorosim phantom import CT --name NAME)"
    )


__all__ = [
    "PatientFileError",
    "PatientStoreError",
    "check_name",
    "load_patient",
    "patients_dir",
    "save_patient",
    "stored_names",
]
