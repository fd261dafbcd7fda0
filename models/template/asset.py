"""Load the shipped real-anatomy bone template (``assets/anatomy/vhm_lumbosacral.npz``).

The asset is a compressed numpy archive written by :mod:`models.template.convert`. Its layout
(format ``fluorosim-bone-template``, version 1):

    format                      str   "fluorosim-bone-template"
    format_version              int   1
    source                      str   one-line provenance (see assets/anatomy/README.md)
    bone/<name>/vertices_mm     float32 (N,3)  LPS mm, template frame
    bone/<name>/faces           int32   (M,3)  vertex indices, outward-facing triangles
    body/<name>/vertices_mm     float32 (N,3)  vertebral body alone ("L1".."L5", "S1")
    body/<name>/faces           int32   (M,3)
    landmark/<name>             float32 (3,) or (N,3)  template landmarks, LPS mm

Template frame: LPS millimetres with the origin at the centre of the S1 superior endplate and the
orientation of the scanned cadaver (models/template/__init__.py).

Any problem with the file (missing, not a zip, truncated, foreign, a missing bone, bad shapes,
indices out of range, non-finite coordinates) raises :class:`TemplateAssetError` with a one-line
message naming the file and the problem.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

#: The shipped asset (found like assets/instruments.toml: beside the packages, in the repository).
DEFAULT_TEMPLATE_PATH = (
    Path(__file__).resolve().parent.parent.parent / "assets" / "anatomy" / "vhm_lumbosacral.npz"
)

FORMAT_NAME = "fluorosim-bone-template"
_ZIP_MAGIC = b"PK\x03\x04"
FORMAT_VERSION = 1

#: Bones every template holds.
BONE_NAMES: tuple[str, ...] = (
    "L1",
    "L2",
    "L3",
    "L4",
    "L5",
    "sacrum",
    "coccyx",
    "hip_left",
    "hip_right",
)
#: Vertebral bodies alone (to tell the body from the posterior elements).
BODY_NAMES: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")


class TemplateAssetError(ValueError):
    """The template asset cannot be used; the one-line message names the file and the problem."""


@dataclass(frozen=True)
class TriangleMesh:
    """A closed triangle surface in the template frame (LPS mm). Arrays are read-only."""

    vertices_mm: NDArray[np.float64]  # (N,3) LPS mm, template frame
    faces: NDArray[np.int32]  # (M,3) vertex indices


@dataclass(frozen=True)
class BoneTemplate:
    """The real-anatomy template: bone surfaces, vertebral bodies alone, and landmarks (LPS mm)."""

    bones: dict[str, TriangleMesh]  # "L1".."L5", "sacrum", "coccyx", "hip_left", "hip_right"
    body_meshes: dict[str, TriangleMesh]  # "L1".."L5", "S1": vertebral bodies alone
    landmarks: dict[str, NDArray[np.float64]]  # names of models/landmarks.py plus extras
    source: str


def load_template(path: Path | None = None) -> BoneTemplate:
    """Load the bone template (default: the shipped asset, loaded once and cached).

    Raises :class:`TemplateAssetError` naming the file and the problem.
    """
    if path is None:
        return _load_default()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _load_default() -> BoneTemplate:
    return _load(DEFAULT_TEMPLATE_PATH)


def _load(path: Path) -> BoneTemplate:
    try:
        with path.open("rb") as stream:
            magic = stream.read(len(_ZIP_MAGIC))
        if magic != _ZIP_MAGIC:
            what = "empty file" if not magic else "not a zip archive"
            raise TemplateAssetError(f"{path}: not an npz template asset ({what})")
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except TemplateAssetError:
        raise
    except FileNotFoundError:
        raise TemplateAssetError(f"{path}: template asset not found") from None
    except IsADirectoryError:
        raise TemplateAssetError(f"{path}: is a directory, not a template asset") from None
    except PermissionError:
        raise TemplateAssetError(f"{path}: cannot read the template asset (permission)") from None
    except zipfile.BadZipFile as error:
        raise TemplateAssetError(f"{path}: not a valid npz archive ({error})") from None
    except (EOFError, zlib.error) as error:
        raise TemplateAssetError(f"{path}: truncated or corrupt npz archive ({error})") from None
    except ValueError as error:  # pickled objects, a bad .npy header, a non-npy file
        raise TemplateAssetError(f"{path}: unreadable array in the archive ({error})") from None
    except OSError as error:
        raise TemplateAssetError(f"{path}: cannot read the template asset ({error})") from None
    return _parse(arrays, path)


def _scalar_text(arrays: dict[str, np.ndarray], key: str, path: Path) -> str:
    if key not in arrays:
        raise TemplateAssetError(f"{path}: not a fluorosim bone template (no '{key}' entry)")
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in "US":
        raise TemplateAssetError(f"{path}: entry '{key}' must be a text scalar")
    return str(value[()])


def _parse(arrays: dict[str, np.ndarray], path: Path) -> BoneTemplate:
    format_name = _scalar_text(arrays, "format", path)
    if format_name != FORMAT_NAME:
        raise TemplateAssetError(
            f"{path}: not a fluorosim bone template (format '{format_name}', "
            f"expected '{FORMAT_NAME}')"
        )
    version = arrays.get("format_version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise TemplateAssetError(f"{path}: entry 'format_version' missing or not an integer")
    if int(version) != FORMAT_VERSION:
        raise TemplateAssetError(
            f"{path}: template format version {int(version)} is not supported "
            f"(this program reads version {FORMAT_VERSION})"
        )
    source = _scalar_text(arrays, "source", path)
    bones = {name: _mesh(arrays, f"bone/{name}", path) for name in BONE_NAMES}
    bodies = {name: _mesh(arrays, f"body/{name}", path) for name in BODY_NAMES}
    landmarks: dict[str, NDArray[np.float64]] = {}
    for key, value in arrays.items():
        if not key.startswith("landmark/"):
            continue
        name = key.removeprefix("landmark/")
        points = _finite_float(value, key, path)
        if not (points.shape == (3,) or (points.ndim == 2 and points.shape[1] == 3)):
            raise TemplateAssetError(
                f"{path}: landmark '{name}' must have shape (3,) or (N,3), got {points.shape}"
            )
        landmarks[name] = _readonly(points)
    return BoneTemplate(bones=bones, body_meshes=bodies, landmarks=landmarks, source=source)


def _finite_float(value: np.ndarray, key: str, path: Path) -> NDArray[np.float64]:
    if value.dtype.kind != "f":
        raise TemplateAssetError(f"{path}: entry '{key}' must be floating point, got {value.dtype}")
    result = value.astype(np.float64)
    if not np.all(np.isfinite(result)):
        raise TemplateAssetError(f"{path}: entry '{key}' contains NaN or infinite values")
    return result


def _mesh(arrays: dict[str, np.ndarray], prefix: str, path: Path) -> TriangleMesh:
    vertex_key, face_key = f"{prefix}/vertices_mm", f"{prefix}/faces"
    for key in (vertex_key, face_key):
        if key not in arrays:
            raise TemplateAssetError(f"{path}: missing entry '{key}'")
    vertices = _finite_float(arrays[vertex_key], vertex_key, path)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 4:
        raise TemplateAssetError(
            f"{path}: entry '{vertex_key}' must have shape (N>=4, 3), got {vertices.shape}"
        )
    faces_raw = arrays[face_key]
    if faces_raw.dtype.kind not in "iu" or faces_raw.ndim != 2 or faces_raw.shape[1] != 3:
        raise TemplateAssetError(
            f"{path}: entry '{face_key}' must be integer (M,3), "
            f"got {faces_raw.dtype} {faces_raw.shape}"
        )
    if len(faces_raw) == 0 or faces_raw.min() < 0 or faces_raw.max() >= len(vertices):
        raise TemplateAssetError(
            f"{path}: entry '{face_key}' has vertex indices outside 0..{len(vertices) - 1}"
        )
    return TriangleMesh(
        vertices_mm=_readonly(vertices), faces=_readonly(faces_raw.astype(np.int32))
    )


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array
