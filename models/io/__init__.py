"""Patient files: NIfTI, DICOM and NRRD volumes, landmark files, structure meshes, export and import.

Everything here reads or writes a :class:`models.patient.Patient`; the submodules import their
heavy dependencies (nibabel, pydicom, pynrrd, pyvista) themselves, so importing this package is
cheap. A file a user hands us that cannot be read raises :class:`PatientFileError` whose message
names the file and the problem (never a bare traceback from a parser).
"""

from __future__ import annotations

from pathlib import Path


class PatientFileError(ValueError):
    """A patient file (volume, label map, landmarks, DICOM slice) that cannot be used.

    The message names the file and what is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


__all__ = ["PatientFileError"]
