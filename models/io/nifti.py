"""NIfTI-1 volumes (``.nii`` / ``.nii.gz``) with the LPS ↔ RAS affine done right.

NIfTI world coordinates are RAS (+x toward the patient's Right, +y Anterior, +z Superior; NIfTI-1
header documentation, "qform/sform"). Our patient frame is DICOM LPS,
so the affine stored in the file is ``RAS_FROM_LPS @ lps_from_voxel`` and reading inverts it
(:data:`models.frames.RAS_FROM_LPS` is its own inverse). Both the qform and the sform are written
with code 1 (``NIFTI_XFORM_SCANNER_ANAT``) and the spatial unit is mm, so nibabel, ITK-SNAP and
3D Slicer all place the volume where we do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.frames import RAS_FROM_LPS
from fluorosim.models.io import PatientFileError

#: NIFTI_XFORM_SCANNER_ANAT: coordinates are scanner-based anatomical (NIfTI-1 header, xform codes).
XFORM_SCANNER_ANAT = 1


def ras_affine(lps_from_voxel: NDArray[np.float64]) -> NDArray[np.float64]:
    """The NIfTI affine (voxel → RAS mm) of a volume whose voxel → LPS transform is given."""
    return RAS_FROM_LPS @ np.asarray(lps_from_voxel, dtype=np.float64)


def lps_from_ras_affine(ras_from_voxel: NDArray[np.float64]) -> NDArray[np.float64]:
    """Voxel → LPS from a NIfTI voxel → RAS affine."""
    return RAS_FROM_LPS @ np.asarray(ras_from_voxel, dtype=np.float64)


def write_nifti(
    path: str | Path, volume: NDArray[Any], lps_from_voxel: NDArray[np.float64]
) -> Path:
    """Write ``volume[i, j, k]`` (dtype kept) with qform/sform = RAS_FROM_LPS @ lps_from_voxel."""
    import nibabel as nib

    path = Path(path)
    affine = ras_affine(lps_from_voxel)
    # nibabel's image methods are unannotated: handle the image as Any
    image: Any = cast(Any, nib).Nifti1Image(np.asarray(volume), affine)
    image.set_qform(affine, code=XFORM_SCANNER_ANAT)
    image.set_sform(affine, code=XFORM_SCANNER_ANAT)
    image.header.set_xyzt_units(xyz="mm", t="sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


def read_nifti(path: str | Path) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Read a 3-D NIfTI volume: ``(array[i, j, k] with scaling applied, lps_from_voxel)``.

    Raises :class:`PatientFileError` naming the file when it is missing, not NIfTI, truncated,
    not 3-D, or has no usable affine.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise PatientFileError(path, "file not found")
    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises many types for garbage bytes
        raise PatientFileError(path, f"not a readable NIfTI file ({error})") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise PatientFileError(
            path, f"not a NIfTI image (nibabel read it as {type(image).__name__})"
        )
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise PatientFileError(path, f"expected a 3-D volume, found shape {image.shape}")
    try:
        raw = np.asanyarray(image.dataobj)
    except Exception as error:  # truncated gzip / short data
        raise PatientFileError(path, f"voxel data is truncated or corrupt ({error})") from None
    data = np.asarray(raw).reshape(shape)
    header_forms: Any = image  # get_sform/get_qform are unannotated in nibabel
    _, sform_code = header_forms.get_sform(coded=True)
    _, qform_code = header_forms.get_qform(coded=True)
    if int(sform_code) == 0 and int(qform_code) == 0:
        raise PatientFileError(
            path, "neither qform nor sform is set, so the volume has no position in the patient"
        )
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise PatientFileError(path, "the voxel-to-world affine is singular or not finite")
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise PatientFileError(path, "voxel data contains NaN or infinite values")
    return data, lps_from_ras_affine(affine)
