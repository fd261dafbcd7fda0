"""On-disk cache of generated patients, keyed by the parameters and the generator version.

Location: ``$FLUOROSIM_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("fluorosim")``, in a
``patients/`` sub-folder. One patient = ``<key>.npz`` (uncompressed ``hu``, ``labels``,
``lps_from_voxel`` — uncompressed so a load is a plain read) + ``<key>.json`` (label table,
landmarks, parameters). Both are written to temporary names and renamed (atomic on one file
system), the JSON last, so a half-written entry is never taken for a complete one. A corrupt or
unreadable entry is rebuilt with a warning in the log, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO

import numpy as np
import platformdirs

from fluorosim.models.patient import Patient
from fluorosim.models.phantom.assembly import Progress, build_patient, generator_version
from fluorosim.models.phantom.parts import PatientParameters

log = logging.getLogger(__name__)

CACHE_ENV = "FLUOROSIM_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$FLUOROSIM_CACHE_DIR`` or the per-user cache directory, plus ``patients``."""
    root = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("fluorosim")
    return Path(root) / "patients"


def cache_key(params: PatientParameters) -> str:
    """Hash of the parameters and the generator version (hex, 20 characters)."""
    text = json.dumps({"params": asdict(params), "generator": generator_version()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def save_patient(patient: Patient, npz_path: Path, json_path: Path) -> None:
    """Write one cache entry atomically (volumes first, metadata last)."""
    _write_atomic(
        npz_path,
        lambda handle: np.savez(
            handle, hu=patient.hu, labels=patient.labels, lps_from_voxel=patient.lps_from_voxel
        ),
    )
    meta = {
        "label_table": patient.label_table,
        "landmarks": {name: value.tolist() for name, value in patient.landmarks.items()},
        "parameters": patient.parameters,
        "source": patient.source,
        "npz_size": npz_path.stat().st_size,
    }
    _write_atomic(json_path, lambda handle: handle.write(json.dumps(meta).encode()))


def load_patient(npz_path: Path, json_path: Path) -> Patient:
    """Read one cache entry; raises ValueError naming the file and problem when it is damaged."""
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{json_path}: unreadable cache metadata ({error})") from None
    if not isinstance(meta, dict) or "label_table" not in meta or "landmarks" not in meta:
        raise ValueError(f"{json_path}: cache metadata lacks label_table/landmarks")
    try:
        if npz_path.stat().st_size != meta.get("npz_size"):
            raise ValueError("size differs from the one recorded")
        with np.load(npz_path, allow_pickle=False) as data:
            hu = np.asarray(data["hu"])
            labels = np.asarray(data["labels"])
            lps_from_voxel = np.asarray(data["lps_from_voxel"])
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise ValueError(f"{npz_path}: damaged cache volume ({error})") from None
    if hu.dtype != np.int16 or labels.dtype != np.uint8:
        raise ValueError(f"{npz_path}: wrong volume types {hu.dtype}/{labels.dtype}")
    return Patient(
        hu=hu,
        labels=labels,
        lps_from_voxel=lps_from_voxel,
        label_table={str(k): int(v) for k, v in meta["label_table"].items()},
        landmarks={k: np.asarray(v, dtype=np.float64) for k, v in meta["landmarks"].items()},
        parameters=meta.get("parameters", {}),
        source=meta.get("source", "generated"),
    )


def load_or_build_patient(
    params: PatientParameters | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Patient:
    """The patient for ``params`` from the cache, building and caching it when absent or damaged
    (``progress`` hears each stage of a build, models.phantom.assembly.build_patient)."""
    params = params or PatientParameters()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(params)
    npz_path, json_path = folder / f"patient-{key}.npz", folder / f"patient-{key}.json"
    if json_path.exists() and npz_path.exists():
        try:
            return load_patient(npz_path, json_path)
        except ValueError as error:
            log.warning("rebuilding the patient: %s", error)
    patient = build_patient(params, progress=progress)
    try:
        save_patient(patient, npz_path, json_path)
    except OSError as error:
        log.warning("could not write the patient cache in %s: %s", folder, error)
    return patient
