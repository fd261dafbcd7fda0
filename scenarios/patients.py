"""The patient of a scenario or an attempt: generated from parameters (cached) or an imported CT.

``patient_for(spec, overrides)`` merges the scenario's ``[patient]`` table with the overrides of a
scripted attempt or a recording header, then builds (or loads from the cache) the generated phantom
with ``models.phantom.load_or_build_patient`` or imports the CT named by ``ct`` (with its label map
and landmarks, ``models.io.ct_import.import_ct``). Bad parameters end in :class:`PatientSpecError`
naming the parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.patient import Patient
from scenarios.spec import PatientSpec


class PatientSpecError(ValueError):
    """Patient parameters that cannot build a patient (message names the parameter)."""


def patient_parameters(
    spec: PatientSpec, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The merged parameter dict (scenario defaults, then overrides)."""
    merged = dict(spec.parameters)
    if spec.ct:
        merged["ct"] = spec.ct
    merged.update(overrides or {})
    return merged


def patient_for(
    spec: PatientSpec, overrides: dict[str, Any] | None = None, cache_dir: str | Path | None = None
) -> Patient:
    """Build, load or import the patient."""
    params = patient_parameters(spec, overrides)
    ct = params.pop("ct", None)
    if ct:
        from models.io.ct_import import import_ct

        return import_ct(ct)
    from models.phantom import PatientParameters, load_or_build_patient

    known = set(PatientParameters.__dataclass_fields__)
    unknown = sorted(set(params) - known)
    if unknown:
        raise PatientSpecError(
            f"patient: unknown parameter(s) {unknown}; expected some of {sorted(known)}"
        )
    try:
        parameters = PatientParameters(**params)
    except (TypeError, ValueError) as exc:
        raise PatientSpecError(f"patient: {exc}") from None
    return load_or_build_patient(parameters, cache_dir)
