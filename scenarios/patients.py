"""The patient of a scenario or an attempt: generated from parameters (cached) or an imported CT.

``patient_for(spec, overrides)`` merges the scenario's ``[patient]`` table with the overrides of a
scripted attempt or a recording header, then builds (or loads from the cache) the generated phantom
with ``models.phantom.load_or_build_patient`` or loads the CT named by ``ct`` — a stored patient's
name or a CT / exported-folder path (``models.io.store.load_patient``). Bad parameters end in
:class:`PatientSpecError` naming the parameter.

``patient_version(patient)`` is what a recording stores to recognise the patient again: the
generator version for a generated patient, the volume's content digest for an imported CT.
``missing_structures(scenario, patient)`` lists the labels and landmarks a scenario needs that the
patient lacks (an imported CT has no nerve roots, thecal sac or Kambin landmarks), so that a
session can refuse up front instead of failing or scoring nothing later.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.patient import Patient
from fluorosim.render import views
from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.spec import PatientSpec, PointSpec, Scenario

#: Structures each procedure's own checks look up besides those its file names (the label
#: patterns and landmarks read by scenarios/scoring/procedure_*.py), ``{side}``/``{level}`` filled.
PROCEDURE_LABELS: dict[str, tuple[str, ...]] = {
    "sij_lateral": ("sij_space_{side}", "root_S1_{side}", "root_S2_{side}", "root_L5_{side}"),
    "sij_posterior": ("sij_space_{side}",),
    "teld": ("root_{upper}_{side}", "thecal_sac"),
    "ield": ("thecal_sac",),
}
PROCEDURE_LANDMARKS: dict[str, tuple[str, ...]] = {
    "sij_lateral": ("S1_body_center", "sij_surface_{side}"),
    "sij_posterior": ("S1_body_center", "sij_surface_{side}"),
    "teld": tuple(
        f"kambin_{{level}}_{{side}}_{corner}" for corner in ("apex", "base_medial", "base_lateral")
    ),
    "ield": ("interlaminar_L5_S1_center",),
}


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
        from fluorosim.models.io import PatientFileError
        from fluorosim.models.io.store import PatientStoreError, load_patient

        try:
            return load_patient(ct)
        except (PatientFileError, PatientStoreError) as exc:
            raise PatientSpecError(f"patient: {exc}") from None
    from fluorosim.models.phantom import PatientParameters, load_or_build_patient

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


def patient_version(patient: Patient) -> str:
    """The generator version of a generated patient, else the imported volume's digest."""
    parameters = patient.parameters
    if patient.source.startswith("imported:"):
        digest = parameters.get("ct_digest")
        if not digest:
            from fluorosim.models.io.ct_import import volume_digest

            digest = volume_digest(patient.hu, patient.labels, patient.lps_from_voxel)
        return str(digest)
    return str(parameters.get("generator_version") or "unknown")


class _LandmarkProbe:
    """Stands in for a patient while a view is computed: records the landmarks it lacks."""

    def __init__(self, patient: Patient) -> None:
        self.patient = patient
        self.landmarks = patient.landmarks  # presence checks (fallbacks) see the real patient
        self.missing: list[str] = []
        self._rng = np.random.default_rng(0)

    def landmark(self, name: str) -> NDArray[np.float64]:
        if name in self.patient.landmarks:
            return self.patient.landmarks[name]
        self.missing.append(name)
        count = 8 if "surface" in name else 1
        points = self._rng.normal(0.0, 30.0, (count, 3))
        return points if count > 1 else points[0]


def _view_landmarks(patient: Patient, view: str, side: str | None, level: str | None) -> list[str]:
    probe = _LandmarkProbe(patient)
    with contextlib.suppress(views.ViewSpecError, ValueError, FloatingPointError):
        views.view_spec(probe, view, side, level)
    return probe.missing


def _point_names(point: PointSpec | None, side: str | None) -> list[str]:
    return [vocabulary.expand(n, side) for n in point.names()] if point is not None else []


def missing_structures(scenario: Scenario, patient: Patient) -> dict[str, list[str]]:
    """``{"labels": [...], "landmarks": [...]}`` the scenario needs and the patient lacks."""
    side = scenario.side
    level = scenario.level or views.DEFAULT_LEVEL
    upper = level.split("_")[0]
    fill = lambda name: vocabulary.expand(name, side).format(  # noqa: E731
        side=side or "left", level=level, upper=upper
    )
    labels: list[str] = [r.label for r in scenario.risks]
    landmarks: list[str] = []
    for step in scenario.steps:
        labels += list(step.end_labels) + list(step.must_cross)
        landmarks += _point_names(step.entry, side) + _point_names(step.target, side)
    labels += [fill(n) for n in PROCEDURE_LABELS.get(scenario.procedure, ())]
    landmarks += [fill(n) for n in PROCEDURE_LANDMARKS.get(scenario.procedure, ())]
    wanted_views: list[tuple[str, str | None]] = [(v, level) for v in scenario.views]
    for step in scenario.steps:
        if step.kind == "view" and step.view:
            wanted_views.append((step.view, step.view_level or level))
        wanted_views += [(v, level) for v in step.confirm_views]
    for view, view_level in dict.fromkeys(wanted_views):
        view_side = side or ("left" if view in ("oblique", "contralateral_oblique") else None)
        if view == "ferguson" and view_level not in views.DISC_LEVELS:
            view_level = views.DEFAULT_LEVEL
        landmarks += _view_landmarks(patient, view, view_side, view_level)
    present = set(patient.label_table)
    missing_labels = [
        n
        for n in dict.fromkeys(vocabulary.expand(n, side) for n in labels)
        if not vocabulary.matching_labels(n, present)
    ]
    missing_landmarks = [n for n in dict.fromkeys(landmarks) if n not in patient.landmarks]
    return {"labels": missing_labels, "landmarks": missing_landmarks}


def describe_missing(scenario: Scenario, patient: Patient) -> str | None:
    """One plain sentence naming what the patient lacks for this scenario, or None."""
    missing = missing_structures(scenario, patient)
    parts = []
    if missing["labels"]:
        parts.append(f"structures {', '.join(missing['labels'])}")
    if missing["landmarks"]:
        parts.append(f"landmarks {', '.join(missing['landmarks'])}")
    if not parts:
        return None
    name = patient.parameters.get("patient_name") or patient.source
    return f"scenario {scenario.id} needs {' and '.join(parts)}, which patient {name} does not have"
