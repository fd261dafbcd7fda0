"""Landmark files: 3D Slicer markups (``.mrk.json``) and fluorosim's ``landmarks.json``.

``landmarks.json`` (written by fluorosim, read back exactly)::

    {"format": "fluorosim-landmarks", "version": 1, "frame": "LPS", "units": "mm",
     "landmarks": {"L4_body_center": [x, y, z], "sij_surface_left": [[x, y, z], ...], ...}}

``.mrk.json`` follows the Slicer markups schema v1.0.3 (Modules/Loadable/Markups/Resources/
Schema/markups-schema-v1.0.3.json): one ``Fiducial`` markup with ``coordinateSystem`` "LPS" and one
control point per landmark. A point set (N, 3) becomes N control points labelled ``name:0`` …
``name:N-1`` so that reading the file rebuilds the set. On reading, every point-list markup in the
file is taken, RAS files are converted to LPS, and points whose ``positionStatus`` is not
"defined" are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models.io import PatientFileError

MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)
LANDMARKS_FORMAT = "fluorosim-landmarks"
#: Slicer stores the orientation of each control point; identity in LPS written as Slicer does.
_IDENTITY_ORIENTATION = [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0]
_POINT_SET_LABEL = re.compile(r"^(?P<name>.+):(?P<index>\d+)$")
#: Markup types whose control points are landmarks ("Fiducial" before Slicer 5, "PointList" is
#: not a type name but some writers use it).
_POINT_TYPES = {"Fiducial", "PointList"}


def _as_points(name: str, value: ArrayLike) -> NDArray[np.float64]:
    points = np.asarray(value, dtype=np.float64)
    if points.shape != (3,) and (points.ndim != 2 or points.shape[1] != 3):
        raise ValueError(f"landmark '{name}' must be (3,) or (N, 3), got shape {points.shape}")
    return points


def write_landmarks_json(path: str | Path, landmarks: Mapping[str, ArrayLike]) -> Path:
    """Write landmarks (LPS mm) as ``landmarks.json`` with the frame and units stated."""
    path = Path(path)
    payload = {
        "format": LANDMARKS_FORMAT,
        "version": 1,
        "frame": "LPS",
        "units": "mm",
        "landmarks": {
            name: _as_points(name, value).tolist() for name, value in sorted(landmarks.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    return path


def write_markups(path: str | Path, landmarks: Mapping[str, ArrayLike]) -> Path:
    """Write landmarks (LPS mm) as one Slicer ``Fiducial`` markup in an ``.mrk.json`` file."""
    path = Path(path)
    control_points: list[dict[str, object]] = []
    for name, value in sorted(landmarks.items()):
        points = _as_points(name, value)
        if points.ndim == 1:
            labelled = [(name, points)]
        else:
            labelled = [(f"{name}:{index}", point) for index, point in enumerate(points)]
        for label, point in labelled:
            control_points.append(
                {
                    "id": str(len(control_points) + 1),
                    "label": label,
                    "description": "",
                    "associatedNodeID": "",
                    "position": [float(c) for c in point],
                    "orientation": list(_IDENTITY_ORIENTATION),
                    "selected": True,
                    "locked": True,
                    "visibility": True,
                    "positionStatus": "defined",
                }
            )
    payload = {
        "@schema": MARKUPS_SCHEMA,
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": "LPS",
                "coordinateUnits": "mm",
                "locked": True,
                "fixedNumberOfControlPoints": False,
                "labelFormat": "%N-%d",
                "lastUsedControlPointNumber": len(control_points),
                "controlPoints": control_points,
                "measurements": [],
            }
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    return path


def _load_json(path: Path) -> object:
    if not path.is_file():
        raise PatientFileError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PatientFileError(
            path, "not a text file (binary bytes where JSON was expected)"
        ) from None
    except json.JSONDecodeError as error:
        raise PatientFileError(
            path, f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None


def _lps_flips(path: Path, system: object, where: str) -> NDArray[np.float64]:
    system_name = str(system).upper()
    if system_name == "LPS":
        return np.array([1.0, 1.0, 1.0])
    if system_name == "RAS":
        return np.array([-1.0, -1.0, 1.0])
    raise PatientFileError(path, f"{where}: coordinate system '{system}' is neither LPS nor RAS")


def _position(path: Path, raw: object, where: str) -> NDArray[np.float64]:
    try:
        point = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise PatientFileError(path, f"{where}: position {raw!r} is not 3 numbers") from None
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise PatientFileError(path, f"{where}: position {raw!r} is not 3 finite numbers")
    return point


def read_markups(path: str | Path) -> dict[str, NDArray[np.float64]]:
    """Landmarks (LPS mm) from a Slicer ``.mrk.json``; point sets rebuilt from ``name:i`` labels."""
    path = Path(path)
    payload = _load_json(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("markups"), list):
        raise PatientFileError(path, "not a Slicer markups file (no 'markups' list)")
    singles: dict[str, NDArray[np.float64]] = {}
    sets: dict[str, dict[int, NDArray[np.float64]]] = {}
    for m_index, markup in enumerate(payload["markups"]):
        where = f"markups[{m_index}]"
        if not isinstance(markup, dict):
            raise PatientFileError(path, f"{where} is not an object")
        if markup.get("type") not in _POINT_TYPES:
            continue
        units = markup.get("coordinateUnits", "mm")
        if units != "mm":
            raise PatientFileError(path, f"{where}: coordinateUnits '{units}', expected 'mm'")
        flips = _lps_flips(path, markup.get("coordinateSystem", "LPS"), where)
        points = markup.get("controlPoints", [])
        if not isinstance(points, list):
            raise PatientFileError(path, f"{where}.controlPoints is not a list")
        for p_index, control in enumerate(points):
            p_where = f"{where}.controlPoints[{p_index}]"
            if not isinstance(control, dict) or "position" not in control:
                raise PatientFileError(path, f"{p_where} has no 'position'")
            if control.get("positionStatus", "defined") != "defined":
                continue
            label = str(control.get("label") or f"point_{m_index}_{p_index}")
            point = _position(path, control["position"], p_where) * flips
            match = _POINT_SET_LABEL.match(label)
            if match:
                sets.setdefault(match["name"], {})[int(match["index"])] = point
            else:
                singles[label] = point
    landmarks = dict(singles)
    for name, indexed in sets.items():
        landmarks[name] = np.array([indexed[i] for i in sorted(indexed)])
    return landmarks


def read_landmarks_json(path: str | Path) -> dict[str, NDArray[np.float64]]:
    """Landmarks (LPS mm) from a ``landmarks.json`` (RAS files are converted)."""
    path = Path(path)
    payload = _load_json(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("landmarks"), dict):
        raise PatientFileError(path, "not a landmarks file (no 'landmarks' object)")
    units = payload.get("units", "mm")
    if units != "mm":
        raise PatientFileError(path, f"field 'units' is '{units}', expected 'mm'")
    flips = _lps_flips(path, payload.get("frame", "LPS"), "field 'frame'")
    landmarks = {}
    for name, raw in payload["landmarks"].items():
        try:
            points = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise PatientFileError(path, f"landmark '{name}' is not a list of numbers") from None
        valid_shape = points.shape == (3,) or (points.ndim == 2 and points.shape[1] == 3)
        if not valid_shape or not np.all(np.isfinite(points)):
            raise PatientFileError(
                path, f"landmark '{name}' must be 3 finite numbers or a list of such points"
            )
        landmarks[str(name)] = points * flips
    return landmarks


def read_landmarks(path: str | Path) -> dict[str, NDArray[np.float64]]:
    """Landmarks from either format, chosen by content (``markups`` list or ``landmarks`` object)."""
    path = Path(path)
    payload = _load_json(path)
    if isinstance(payload, dict) and "markups" in payload:
        return read_markups(path)
    if isinstance(payload, dict) and "landmarks" in payload:
        return read_landmarks_json(path)
    raise PatientFileError(
        path, "neither a Slicer markups file ('markups') nor a landmarks file ('landmarks')"
    )
