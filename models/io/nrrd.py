"""NRRD volumes (``.nrrd`` / ``.nhdr``), 3D Slicer's default volume format, in the LPS frame.

A NRRD header states its world frame in ``space`` ("left-posterior-superior" is DICOM LPS,
"right-anterior-superior" is RAS, …), the world vector of one step along each array axis in
``space directions`` and the world position of voxel (0, 0, 0) in ``space origin`` (NRRD0004
format definition, teem.sourceforge.net/nrrd/format.html). Arrays are read in Fortran index order so
``array[i, j, k]`` matches the order of ``space directions``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.io import PatientFileError

#: Sign flips that take each NRRD world ``space`` to LPS.
LPS_FLIPS_BY_SPACE = {
    "left-posterior-superior": np.array([1.0, 1.0, 1.0]),
    "lps": np.array([1.0, 1.0, 1.0]),
    "right-anterior-superior": np.array([-1.0, -1.0, 1.0]),
    "ras": np.array([-1.0, -1.0, 1.0]),
    "left-anterior-superior": np.array([1.0, -1.0, 1.0]),
    "las": np.array([1.0, -1.0, 1.0]),
}


def segment_names(path: str | Path) -> dict[str, int]:
    """Label names of a 3D Slicer segmentation (``.seg.nrrd``): ``SegmentN_Name`` → ``_LabelValue``.

    Empty for a plain NRRD. Slicer writes one ``SegmentN_*`` key group per segment; segments on a
    layer other than 0 would need a 4-D file, which :func:`read_nrrd` refuses.
    """
    import nrrd

    path = Path(path)
    try:
        header = nrrd.read_header(str(path))
    except Exception as error:
        raise PatientFileError(path, f"not a readable NRRD header ({error})") from None
    names: dict[str, int] = {}
    index = 0
    while f"Segment{index}_Name" in header:
        raw_value = header.get(f"Segment{index}_LabelValue", str(index + 1))
        try:
            value = int(str(raw_value).strip())
        except ValueError:
            raise PatientFileError(
                path, f"Segment{index}_LabelValue '{raw_value}' is not a whole number"
            ) from None
        names[str(header[f"Segment{index}_Name"])] = value
        index += 1
    return names


def write_nrrd(path: str | Path, volume: NDArray[Any], lps_from_voxel: NDArray[np.float64]) -> Path:
    """Write ``volume[i, j, k]`` gzip-compressed with an LPS ``space`` header."""
    import nrrd

    path = Path(path)
    matrix = np.asarray(lps_from_voxel, dtype=np.float64)
    header = {
        "space": "left-posterior-superior",
        "space directions": matrix[:3, :3].T,
        "space origin": matrix[:3, 3],
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nrrd.write(str(path), np.asarray(volume), header, index_order="F")
    return path


def read_nrrd(path: str | Path) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Read a 3-D NRRD volume: ``(array[i, j, k], lps_from_voxel)``.

    Raises :class:`PatientFileError` naming the file for garbage or truncated data, a missing or
    unknown ``space``, missing ``space directions`` / ``space origin`` or a volume that is not 3-D.
    """
    import nrrd

    path = Path(path)
    if not path.is_file():
        raise PatientFileError(path, "file not found")
    try:
        data, header = nrrd.read(str(path), index_order="F")
    except Exception as error:  # pynrrd raises NRRDError, ValueError, zlib/EOF errors
        raise PatientFileError(path, f"not a readable NRRD file ({error})") from None
    if data.ndim != 3:
        raise PatientFileError(path, f"expected a 3-D volume, found shape {data.shape}")
    space = str(header.get("space", "")).lower()
    if space not in LPS_FLIPS_BY_SPACE:
        raise PatientFileError(
            path,
            f"header field 'space' is '{header.get('space', '(missing)')}'; expected an anatomical "
            "space such as left-posterior-superior or right-anterior-superior",
        )
    for field in ("space directions", "space origin"):
        if field not in header:
            raise PatientFileError(path, f"header field '{field}' is missing")
    directions = np.asarray(header["space directions"], dtype=np.float64)
    origin = np.asarray(header["space origin"], dtype=np.float64).reshape(-1)
    if directions.shape != (3, 3) or origin.shape != (3,):
        raise PatientFileError(
            path, f"'space directions' {directions.shape} / 'space origin' {origin.shape} not 3-D"
        )
    if not (np.all(np.isfinite(directions)) and np.all(np.isfinite(origin))):
        raise PatientFileError(path, "'space directions' or 'space origin' is not finite")
    if abs(np.linalg.det(directions)) < 1e-9:
        raise PatientFileError(path, "'space directions' are degenerate (zero voxel size)")
    flips = LPS_FLIPS_BY_SPACE[space]
    lps_from_voxel = np.eye(4)
    lps_from_voxel[:3, :3] = (directions * flips).T
    lps_from_voxel[:3, 3] = origin * flips
    return data, lps_from_voxel
